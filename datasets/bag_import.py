"""`vla data import-bag`: a rosbag2 (sqlite3 or MCAP) of robot topics -> a dataset.

Synchronisation: a clock ticks at `fps`; at each tick every stream contributes its latest
message at or before the tick (zero-order hold: exactly what a controller running at that
rate would have seen). A tick where a required stream is older than `max_age_s` is dropped
and counted. Each `std_msgs/String` on the instruction topic starts a new episode.

The action is the 7-D schema action: a `geometry_msgs/TwistStamped` (velocities, base frame)
becomes the per-tick delta v / fps, with the gripper command from a `std_msgs/Float64`
topic; a `Float32/64MultiArray` of 7 values is taken as the action itself.
Defaults match the topic names of `ros2_nodes/recorder_node.py`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_stack import schema
from vla_stack.datasets import bag_messages as msgs, layout
from vla_stack.datasets.errors import DatasetError
from vla_stack.datasets.layout import DatasetSpec
from vla_stack.datasets.writer import DatasetWriter


@dataclass
class ImportBagConfig:
    """Convert a rosbag2 directory (or .mcap / .db3 file) into a LeRobot-v3-compatible dataset."""

    bag: Path
    out: Path
    fps: int = 20
    rgb_topic: str = "/rgb"
    depth_topic: str = "/depth"
    points_topic: str = "/points"
    joint_topic: str = "/joint_states"
    ee_pose_topic: str = "/ee_pose"
    action_topic: str = "/cmd_twist"
    gripper_topic: str = "/gripper_cmd"
    instruction_topic: str = "/instruction"
    subtask_topic: str = "/subtask"
    n_points: int = 1024
    """points per frame (random subset without replacement, or repeated when fewer)"""
    depth: bool = False
    max_age_s: float = 0.25
    """a tick is dropped when a required stream's latest message is older than this"""
    header_stamps: bool = False
    """time messages by header.stamp where they have one (default: bag receive time, one clock)"""
    gripper_joints: list[str] = field(default_factory=lambda: ["finger", "gripper"])
    """joint-name substrings whose positions sum to the gripper opening (not arm joints)"""
    robot_type: str = "unknown"
    seed: int = 0
    overwrite: bool = False
    resume: bool = False


@dataclass
class Stream:
    times: list[int]
    values: list

    def at(self, t: int, max_age_ns: int):
        """Latest value at or before t, or None if none / too old."""
        i = bisect.bisect_right(self.times, t) - 1
        if i < 0 or t - self.times[i] > max_age_ns:
            return None
        return self.values[i]


def _open_reader(bag: Path):
    from rosbags.highlevel import AnyReader

    if not bag.exists():
        raise DatasetError("bag does not exist", path=bag)
    paths = [bag.parent] if bag.is_file() else [bag]
    try:
        reader = AnyReader(paths)
        reader.open()
        return reader
    except Exception as e:  # rosbags raises several unrelated types for unreadable bags
        raise DatasetError(f"not a readable rosbag2 ({type(e).__name__}: {e})", path=bag) from None


def read_streams(cfg: ImportBagConfig) -> tuple[dict[str, Stream], dict[str, str]]:
    decoders = {
        cfg.rgb_topic: msgs.image_rgb, cfg.points_topic: msgs.pointcloud_xyz_rgb, cfg.joint_topic: msgs.joint_state,
        cfg.ee_pose_topic: msgs.pose, cfg.gripper_topic: lambda m: float(m.data),
        cfg.instruction_topic: lambda m: str(m.data), cfg.subtask_topic: lambda m: str(m.data),
    }
    if cfg.depth:
        decoders[cfg.depth_topic] = msgs.image_depth_m
    streams: dict[str, Stream] = {}
    reader = _open_reader(Path(cfg.bag))
    try:
        types = {c.topic: c.msgtype for c in reader.connections}
        if cfg.action_topic in types:
            decoders[cfg.action_topic] = (msgs.float_array if "MultiArray" in types[cfg.action_topic] else msgs.twist)
        conns = [c for c in reader.connections if c.topic in decoders]
        for conn, bag_time, raw in reader.messages(connections=conns):
            try:
                msg = reader.deserialize(raw, conn.msgtype)
                value = decoders[conn.topic](msg)
            except DatasetError as e:
                raise DatasetError(f"topic {conn.topic} at t={bag_time} ns: {e}", path=cfg.bag) from None
            except Exception as e:
                raise DatasetError(f"topic {conn.topic} at t={bag_time} ns: cannot decode {conn.msgtype} "
                                   f"({type(e).__name__}: {e})", path=cfg.bag) from None
            t = (msgs.stamp_ns(msg) if cfg.header_stamps else None) or bag_time
            s = streams.setdefault(conn.topic, Stream([], []))
            s.times.append(t)
            s.values.append(value)
    finally:
        reader.close()
    for s in streams.values():  # header stamps may arrive out of order
        order = np.argsort(s.times, kind="stable")
        s.times, s.values = [s.times[i] for i in order], [s.values[i] for i in order]
    for topic in (cfg.action_topic, cfg.joint_topic, cfg.instruction_topic):
        if topic not in streams:
            raise DatasetError(f"required topic {topic!r} has no messages; topics in the bag: "
                               f"{ {k: v for k, v in sorted(types.items())} }", path=cfg.bag)
    return streams, types


def _state(joints, ee, gripper_keys) -> np.ndarray:
    names, pos = joints
    grip = [p for n, p in zip(names, pos) if any(g in n for g in gripper_keys)]
    arm = [p for n, p in zip(names, pos) if not any(g in n for g in gripper_keys)][: schema.MAX_JOINTS]
    v = np.zeros(schema.STATE_DIM, np.float32)
    if ee is not None:
        v[schema.STATE_EE_POS] = ee[:3]
        v[schema.STATE_EE_QUAT] = ee[3:]
    else:
        v[schema.STATE_EE_QUAT] = (1, 0, 0, 0)
    v[schema.STATE_GRIPPER] = float(np.sum(grip)) if grip else 0.0
    v[schema.STATE_JOINTS.start: schema.STATE_JOINTS.start + len(arm)] = arm
    return v


def _resample(xyz, rgb, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    if len(xyz) == 0:
        raise DatasetError("point cloud has no finite points")
    if rgb is None:
        rgb = np.full_like(xyz, 0.5)
    if len(xyz) != n:
        idx = rng.choice(len(xyz), n, replace=len(xyz) < n)
        xyz, rgb = xyz[idx], rgb[idx]
    return xyz.astype(np.float32), rgb.astype(np.float32)


def import_bag(cfg: ImportBagConfig) -> int:
    if cfg.resume and cfg.overwrite:
        raise DatasetError("--resume and --overwrite contradict each other: pick one")
    streams, _ = read_streams(cfg)
    rgb, pts, dep = streams.get(cfg.rgb_topic), streams.get(cfg.points_topic), streams.get(cfg.depth_topic)
    cams = {}
    if rgb is not None:
        h, w = rgb.values[0].shape[:2]
        cams["rgb"] = (h - h % 2, w - w % 2)  # yuv420p needs even sizes
    spec = DatasetSpec(fps=cfg.fps, robot_type=cfg.robot_type, n_points=cfg.n_points if pts else 0, cameras=cams,
                       depth_shape=tuple(dep.values[0].shape) if (cfg.depth and dep) else None)
    writer = DatasetWriter.resume(cfg.out, spec) if cfg.resume else DatasetWriter.create(cfg.out, spec, overwrite=cfg.overwrite)
    max_age = int(cfg.max_age_s * 1e9)
    tick = int(1e9 / cfg.fps)
    rng = np.random.default_rng(cfg.seed)
    instr = streams[cfg.instruction_topic]
    last_t = max(s.times[-1] for s in streams.values())
    required = [s for s in (streams[cfg.action_topic], streams[cfg.joint_topic], rgb, pts) if s is not None]
    if spec.depth_shape:
        required.append(dep)
    dropped, saved = 0, 0
    for k, (t0, text) in enumerate(zip(instr.times, instr.values)):
        t_end = instr.times[k + 1] if k + 1 < len(instr.times) else last_t + 1
        # first tick once every required stream has a message from this episode (none from the last one)
        firsts = [s.times[i] for s in required if (i := bisect.bisect_left(s.times, t0)) < len(s.times)]
        if len(firsts) < len(required):
            print(f"instruction {text!r} at t={t0} ns: a required stream has no later message, skipped")
            continue
        start = max([t0, *firsts])
        frames = []
        for t in range(start, t_end, tick):
            if any(s.at(t, max_age) is None for s in required):
                dropped += 1
                continue
            frames.append(_frame(cfg, streams, spec, t, max_age, text, rng))
        if not frames:
            print(f"instruction {text!r} at t={t0} ns: no synchronised frames, skipped")
            continue
        writer.start_episode(text)
        for i, f in enumerate(frames):  # a subtask is done on its last frame
            f[layout.SUBTASK_DONE] = i + 1 == len(frames) or frames[i + 1]["subtask"] != f["subtask"]
            writer.add_frame(f)
        n = len(frames)
        ep = writer.save_episode(success=False)
        saved += 1
        print(f"episode {ep}: {n} frames, {text!r}")
    print(f"{writer.root}: imported {saved} episode(s) from {cfg.bag}; {dropped} tick(s) dropped "
          f"(a required stream older than {cfg.max_age_s} s)")
    return 0


def _frame(cfg, streams, spec, t, max_age, instruction, rng) -> dict:
    act_stream = streams[cfg.action_topic]
    a = act_stream.at(t, max_age)
    if len(a) == schema.ACTION_DIM:  # an action array message
        action = a
    elif len(a) == 6:  # a twist: velocities -> per-tick deltas, gripper from its own topic
        grip = streams.get(cfg.gripper_topic)
        g = grip.at(t, np.iinfo(np.int64).max) if grip else None
        action = np.concatenate([a / cfg.fps, [schema.GRIPPER_OPEN if g is None else g]])
    else:
        raise DatasetError(f"topic {cfg.action_topic}: action array has {len(a)} values, expected "
                           f"{schema.ACTION_DIM}", path=cfg.bag)
    ee = streams[cfg.ee_pose_topic].at(t, max_age) if cfg.ee_pose_topic in streams else None
    sub = streams[cfg.subtask_topic].at(t, np.iinfo(np.int64).max) if cfg.subtask_topic in streams else None
    f = {layout.STATE: _state(streams[cfg.joint_topic].at(t, max_age), ee, cfg.gripper_joints),
         layout.ACTION: schema.validate_action(action), "subtask": sub or instruction,
         layout.SUBTASK_DONE: False, layout.SUCCESS: False}
    if spec.n_points:
        f[layout.POINTS], f[layout.COLORS] = _resample(*streams[cfg.points_topic].at(t, max_age), spec.n_points, rng)
    if spec.cameras:
        h, w = spec.cameras["rgb"]
        f[layout.image_key("rgb")] = streams[cfg.rgb_topic].at(t, max_age)[:h, :w]
    if spec.depth_shape:
        f[layout.DEPTH] = streams[cfg.depth_topic].at(t, max_age)
    return f


def main(cfg: ImportBagConfig) -> int:
    import sys

    try:
        return import_bag(cfg)
    except DatasetError as e:
        print(f"vla data import-bag: {e}", file=sys.stderr)
        return 1
