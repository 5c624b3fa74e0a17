"""A dataset written by `vla record` opens in LeRobot's own `LeRobotDataset` (v3.0 reader).

Skipped unless `lerobot` (>= 0.4, the first release reading v3.0) is importable; CI does not
install it (it pins its own torch). docs/datasets.md says how this was run locally.
"""

import numpy as np
import pytest

lerobot_dataset = pytest.importorskip("lerobot.datasets.lerobot_dataset")

from vla_stack.datasets import DatasetReader, DatasetSpec, layout  # noqa: E402
from vla_stack.datasets.synthetic import write_synthetic  # noqa: E402
from vla_stack.datasets.video import decode_frames  # noqa: E402


def pyav_decode(video_path, timestamps, tolerance_s, backend=None):
    """LeRobot's decoder needs torchvision/torchcodec; this one finds the same frames by timestamp with PyAV."""
    import torch

    frames = decode_frames(video_path)
    idx = [int(round(t * 20)) for t in timestamps]
    assert all(abs(i / 20 - t) < tolerance_s for i, t in zip(idx, timestamps))
    return torch.from_numpy(frames[idx]).permute(0, 3, 1, 2).float() / 255


def test_lerobot_reads_metadata_rows_and_video_frames(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    write_synthetic(root, DatasetSpec(n_points=16, cameras={"rgb": (32, 32)}), episodes=2, length=8)
    monkeypatch.setattr(lerobot_dataset, "decode_video_frames", pyav_decode)
    ds = lerobot_dataset.LeRobotDataset("local/vla_stack_test", root=root, video_backend="pyav")
    ours = DatasetReader(root)
    assert ds.meta.total_episodes == 2 and len(ds) == ours.num_frames
    assert ds.meta.video_keys == ["observation.images.rgb"]
    item = ds[11]  # episode 1, frame 3
    cols = ours.episode_columns(1)
    np.testing.assert_array_equal(item["action"].numpy(), cols[layout.ACTION][3])
    np.testing.assert_array_equal(item["observation.points"].numpy(), cols[layout.POINTS][3])
    assert item["task"] == "open the drawer"
    ours_frame = ours.episode_frames(1, "rgb")[3].astype(np.float32) / 255
    np.testing.assert_allclose(item["observation.images.rgb"].permute(1, 2, 0).numpy(), ours_frame, atol=1e-6)
    np.testing.assert_allclose(ds.meta.stats["action"]["mean"], ours.stats[layout.ACTION]["mean"], rtol=1e-6)


def test_a_dataset_written_by_lerobot_reads_validates_and_trains(tmp_path):
    """The reverse direction: LeRobot packs episodes into shared files and has no subtasks."""
    from vla_stack.datasets import WindowDataset
    from vla_stack.datasets.validate import validate_dataset

    features = {"observation.state": {"dtype": "float32", "shape": (15,), "names": None},
                "action": {"dtype": "float32", "shape": (7,), "names": None},
                "observation.images.rgb": {"dtype": "video", "shape": (32, 32, 3), "names": ["height", "width", "channels"]}}
    root = tmp_path / "native"
    ds = lerobot_dataset.LeRobotDataset.create("local/native", fps=20, root=root, robot_type="panda",
                                                features=features, use_videos=True)
    rng = np.random.default_rng(0)
    actions = []
    for _ in range(2):
        for t in range(10):
            actions.append((rng.normal(size=7) * 0.01).astype(np.float32))
            ds.add_frame({"observation.state": rng.normal(size=15).astype(np.float32), "action": actions[-1],
                          "observation.images.rgb": np.full((32, 32, 3), 20 * t, np.uint8), "task": "open the drawer"})
        ds.save_episode()
    if hasattr(ds, "finalize"):
        ds.finalize()
    assert len(list(root.glob("data/*/*.parquet"))) == 1  # both episodes packed in one file
    report = validate_dataset(root)
    assert report.ok, report.errors
    reader = DatasetReader(root)
    np.testing.assert_array_equal(reader.episode_columns(1)[layout.ACTION], np.stack(actions[10:]))
    frames = reader.episode_frames(1, "rgb")  # second half of the shared video file
    assert np.abs(frames[:, 16, 16, 0].astype(int) - 20 * np.arange(10)).max() <= 3
    win = WindowDataset(root, history=2, horizon=4)
    assert win.subtask_texts == ["open the drawer"] and win[15]["action"].shape == (2, 4, 7)
