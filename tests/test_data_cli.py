"""`vla data info` and `vla data view` on a small recorded dataset."""

import cv2
import numpy as np

from vla_stack import cli
from vla_stack.datasets import DatasetSpec
from vla_stack.datasets.synthetic import write_synthetic
from vla_stack.datasets.video import count_frames


def test_info_lists_size_tasks_and_subtasks(tmp_path, capsys):
    write_synthetic(tmp_path / "ds", DatasetSpec(n_points=8, cameras={"rgb": (16, 16)}), episodes=2, length=6)
    assert cli.main(["data", "info", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "episodes 2  frames 13" in out and "observation.points" in out
    assert "0: put the blue cube in the drawer" in out and "grasp the blue cube" in out
    assert cli.main(["data", "info", str(tmp_path / "nothing")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_view_writes_an_mp4_with_every_frame_and_a_sheet_with_the_action_plot(tmp_path, capsys):
    write_synthetic(tmp_path / "ds", DatasetSpec(n_points=8, cameras={"rgb": (16, 16)}), episodes=2, length=6)
    assert cli.main(["data", "view", str(tmp_path / "ds"), "--episode", "1", "--out", str(tmp_path / "v")]) == 0
    assert count_frames(tmp_path / "v" / "episode_000001.mp4") == 7
    sheet = cv2.imread(str(tmp_path / "v" / "episode_000001.png"))
    assert sheet is not None and sheet.shape[0] > 240
    plot = sheet[-240:]
    assert (np.abs(plot.astype(int) - 255).sum(-1) > 60).mean() > 0.005  # curves were drawn on the white plot
    assert cli.main(["data", "view", str(tmp_path / "ds"), "--episode", "9", "--out", str(tmp_path / "v")]) == 1
    assert "episode 9 does not exist" in capsys.readouterr().err


def test_view_without_cameras_draws_the_point_cloud(tmp_path):
    write_synthetic(tmp_path / "ds", DatasetSpec(n_points=64, cameras={}), episodes=1, length=4)
    assert cli.main(["data", "view", str(tmp_path / "ds"), "--out", str(tmp_path / "v")]) == 0
    assert count_frames(tmp_path / "v" / "episode_000000.mp4") == 4
