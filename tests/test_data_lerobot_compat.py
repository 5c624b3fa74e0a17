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
