"""`vla data import-bag`: a rosbag2 written here (sqlite3 and MCAP) becomes a dataset."""

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from vla_stack import cli
from vla_stack.datasets import DatasetError, DatasetReader, layout
from vla_stack.datasets.bag_import import ImportBagConfig, import_bag
from vla_stack.datasets.validate import validate_dataset

TS = get_typestore(Stores.LATEST)
T = TS.types
FPS = 10
MS = 1_000_000
N_POINTS = 24


def header(t_ns, frame="base"):
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=t_ns // 10**9, nanosec=t_ns % 10**9),
                                    frame_id=frame)


def image(t_ns, k):
    img = np.full((12, 16, 3), 10 * k % 250, np.uint8)
    img[:, k % 16] = (255, 0, 0)
    return T["sensor_msgs/msg/Image"](header=header(t_ns), height=12, width=16, encoding="rgb8", is_bigendian=0,
                                      step=48, data=img.reshape(-1))


def cloud(t_ns, k):
    xyz = (np.arange(N_POINTS * 3, dtype=np.float32).reshape(N_POINTS, 3) + k) / 100
    rgb = np.zeros(N_POINTS, np.uint32) | (200 << 16) | (100 << 8) | 50
    rec = np.zeros(N_POINTS, np.dtype({"names": ["x", "y", "z", "rgb"], "formats": ["<f4"] * 3 + ["<u4"],
                                       "offsets": [0, 4, 8, 16], "itemsize": 32}))
    rec["x"], rec["y"], rec["z"], rec["rgb"] = xyz[:, 0], xyz[:, 1], xyz[:, 2], rgb
    pf = T["sensor_msgs/msg/PointField"]
    fields = [pf(name=n, offset=o, datatype=7, count=1) for n, o in (("x", 0), ("y", 4), ("z", 8), ("rgb", 16))]
    return T["sensor_msgs/msg/PointCloud2"](header=header(t_ns), height=1, width=N_POINTS, fields=fields,
                                            is_bigendian=False, point_step=32, row_step=32 * N_POINTS,
                                            data=np.frombuffer(rec.tobytes(), np.uint8), is_dense=True)


def joints(t_ns, k):
    names = [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1", "panda_finger_joint2"]
    pos = np.array([0.1 * i + 0.001 * k for i in range(7)] + [0.02, 0.02])
    return T["sensor_msgs/msg/JointState"](header=header(t_ns), name=names, position=pos, velocity=np.zeros(0),
                                           effort=np.zeros(0))


def twist(t_ns, k):
    v = T["geometry_msgs/msg/Vector3"]
    tw = T["geometry_msgs/msg/Twist"](linear=v(x=0.01 * k, y=-0.02, z=0.0), angular=v(x=0.0, y=0.0, z=0.1))
    return T["geometry_msgs/msg/TwistStamped"](header=header(t_ns), twist=tw)


def string(text):
    return T["std_msgs/msg/String"](data=text)


def write_bag(path, storage):
    """Two instructions (two episodes) of 1 s each; streams at different rates and phases."""
    with Writer(path, version=9, storage_plugin=storage) as w:
        conns = {name: w.add_connection(topic, typ, typestore=TS) for name, topic, typ in [
            ("rgb", "/rgb", "sensor_msgs/msg/Image"), ("points", "/points", "sensor_msgs/msg/PointCloud2"),
            ("joints", "/joint_states", "sensor_msgs/msg/JointState"),
            ("act", "/cmd_twist", "geometry_msgs/msg/TwistStamped"), ("grip", "/gripper_cmd", "std_msgs/msg/Float64"),
            ("instr", "/instruction", "std_msgs/msg/String"), ("sub", "/subtask", "std_msgs/msg/String")]}
        msgs = []
        t0 = 1_000_000_000_000
        for ep, text in enumerate(["open the drawer", "close the drawer"]):
            base = t0 + ep * 1000 * MS
            msgs.append((base, "instr", string(text)))
            msgs.append((base + 1 * MS, "sub", string(f"{text}: reach")))
            msgs.append((base + 500 * MS, "sub", string(f"{text}: pull")))
            msgs.append((base + 1 * MS, "grip", T["std_msgs/msg/Float64"](data=1.0)))
            msgs.append((base + 600 * MS, "grip", T["std_msgs/msg/Float64"](data=-1.0)))
            for k in range(10):  # camera, cloud and commands at 10 Hz, joints at 50 Hz
                msgs += [(base + k * 100 * MS + 5 * MS, "rgb", image(0, k)), (base + k * 100 * MS + 7 * MS, "points", cloud(0, k)),
                         (base + k * 100 * MS + 9 * MS, "act", twist(0, k))]
            for j in range(50):
                msgs.append((base + j * 20 * MS + 3 * MS, "joints", joints(0, j)))
        for t, name, msg in sorted(msgs, key=lambda m: m[0]):
            w.write(conns[name], t, TS.serialize_cdr(msg, conns[name].msgtype))


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP], ids=["sqlite3", "mcap"])
def test_bag_becomes_a_synchronised_dataset(tmp_path, storage):
    bag = tmp_path / "bag"
    write_bag(bag, storage)
    out = tmp_path / "ds"
    assert import_bag(ImportBagConfig(bag=bag, out=out, fps=FPS, n_points=N_POINTS)) == 0
    r = DatasetReader(out)
    assert r.task_texts == ["open the drawer", "close the drawer"] and r.num_episodes == 2
    # ticks at base + 9 ms + k * 100 ms (first tick with every required stream present): 10 per episode
    assert [e["length"] for e in r.episodes] == [10, 10]
    cols = r.episode_columns(1)
    k = np.arange(10)
    np.testing.assert_allclose(cols[layout.ACTION][:, 0], 0.01 * k / FPS, atol=1e-7)  # twist * dt
    np.testing.assert_allclose(cols[layout.ACTION][:, 5], 0.1 / FPS, atol=1e-7)
    assert cols[layout.ACTION][:, 6].tolist() == [1.0] * 6 + [-1.0] * 4  # gripper command held
    np.testing.assert_allclose(cols[layout.STATE][:, 8], 0.001 * (5 * k), atol=1e-6)  # joint at the tick: j = 5k
    np.testing.assert_allclose(cols[layout.STATE][:, 7], 0.04, atol=1e-6)  # two fingers summed
    np.testing.assert_allclose(cols[layout.POINTS][3], (np.arange(N_POINTS * 3).reshape(-1, 3) + 3) / 100, atol=1e-6)
    np.testing.assert_allclose(cols[layout.COLORS][0, 0], [200 / 255, 100 / 255, 50 / 255], atol=1e-6)
    subtasks = [r.subtask_texts[i] for i in cols[layout.SUBTASK_INDEX]]
    assert subtasks == ["close the drawer: reach"] * 5 + ["close the drawer: pull"] * 5
    assert np.flatnonzero(cols[layout.SUBTASK_DONE]).tolist() == [4, 9]
    frames = r.episode_frames(1, "rgb")
    assert frames.shape == (10, 12, 16, 3) and np.argmax(frames[7, 6, :, 0]) == 7  # the red column moves
    assert validate_dataset(out).ok


def test_import_bag_cli_names_a_missing_topic(tmp_path, capsys):
    bag = tmp_path / "bag"
    write_bag(bag, StoragePlugin.MCAP)
    rc = cli.main(["data", "import-bag", "--bag", str(bag), "--out", str(tmp_path / "ds"),
                   "--action-topic", "/no_such_topic"])
    assert rc == 1
    assert "required topic '/no_such_topic' has no messages" in capsys.readouterr().err


def test_not_a_bag_is_a_clear_error(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("this: is not a bag\n")
    with pytest.raises(DatasetError, match="not a readable rosbag2"):
        import_bag(ImportBagConfig(bag=tmp_path / "junk", out=tmp_path / "ds"))
