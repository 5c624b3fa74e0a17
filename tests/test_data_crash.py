"""Crash safety: SIGKILL mid-episode keeps every completed episode; --resume appends."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from vla_stack.datasets import DatasetError, DatasetReader, DatasetSpec, DatasetWriter, layout
from vla_stack.datasets.synthetic import synthetic_frames
from vla_stack.datasets.validate import validate_dataset

SPEC = DatasetSpec(n_points=16, cameras={"rgb": (16, 16)})

# A recorder that saves episodes 0 and 1, then blocks forever in the middle of episode 2.
RECORDER = textwrap.dedent("""
    import sys, time
    from vla_stack.datasets import DatasetSpec, DatasetWriter
    from vla_stack.datasets.synthetic import synthetic_frames
    spec = DatasetSpec(n_points=16, cameras={"rgb": (16, 16)})
    w = DatasetWriter.create(sys.argv[1], spec)
    for ep in range(3):
        w.start_episode("open the drawer")
        for t, f in enumerate(synthetic_frames(spec, 8, seed=ep)):
            w.add_frame(f)
            if ep == 2 and t == 4:
                print("MID-EPISODE", flush=True)
                time.sleep(600)
        w.save_episode()
        print("saved", ep, flush=True)
""")


def test_sigkill_mid_episode_leaves_a_dataset_with_every_completed_episode(tmp_path):
    root = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, "-c", RECORDER, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("MID-EPISODE"):
                break
        assert lines == ["saved 0", "saved 1", "MID-EPISODE"]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    reader = DatasetReader(root)
    assert reader.num_episodes == 2
    for ep in range(2):
        np.testing.assert_array_equal(reader.episode_columns(ep)[layout.ACTION],
                                      np.stack([f[layout.ACTION] for f in synthetic_frames(SPEC, 8, seed=ep)]))
        assert reader.episode_frames(ep, "rgb").shape == (8, 16, 16, 3)
    assert validate_dataset(root).ok

    # --resume appends after the completed episodes
    w = DatasetWriter.resume(root, SPEC)
    w.start_episode("close the drawer")
    for f in synthetic_frames(SPEC, 5, seed=9):
        w.add_frame(f)
    assert w.save_episode() == 2
    reader = DatasetReader(root)
    assert reader.num_episodes == 3 and reader.num_frames == 21 and reader.task_texts[-1] == "close the drawer"
    assert reader.episodes[2]["dataset_from_index"] == 16
    report = validate_dataset(root)
    assert report.ok, report.errors


def test_a_torn_commit_is_repaired_by_resume(tmp_path):
    """Killed between the episodes table and info.json: validate names it, resume repairs it."""
    root = tmp_path / "ds"
    w = DatasetWriter.create(root, SPEC)
    for ep in range(2):
        w.start_episode("open the drawer")
        for f in synthetic_frames(SPEC, 4, seed=ep):
            w.add_frame(f)
        w.save_episode()
    info_path = root / layout.INFO_PATH
    info = info_path.read_text().replace('"total_episodes": 2', '"total_episodes": 1')
    info_path.write_text(info)
    report = validate_dataset(root)
    assert not report.ok and any("total_episodes" in e for e in report.errors)
    DatasetWriter.resume(root)
    assert validate_dataset(root).ok


def test_resume_refuses_a_different_feature_layout(tmp_path):
    root = tmp_path / "ds"
    DatasetWriter.create(root, SPEC)
    with pytest.raises(DatasetError, match="features differ.*observation.points"):
        DatasetWriter.resume(root, DatasetSpec(n_points=32, cameras={"rgb": (16, 16)}))
    with pytest.raises(DatasetError, match="info.json is missing"):
        DatasetWriter.resume(tmp_path / "nothing-here")


def test_metadata_files_are_replaced_atomically(tmp_path, monkeypatch):
    """A failure while writing metadata leaves the previous file intact (no partial JSON)."""
    from vla_stack.datasets import atomic

    root = tmp_path / "ds"
    w = DatasetWriter.create(root, SPEC)
    before = (root / layout.INFO_PATH).read_text()

    def exploding_dumps(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.json, "dumps", exploding_dumps)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_json(root / layout.INFO_PATH, {"half": "written"})
    assert (root / layout.INFO_PATH).read_text() == before
    assert not list((root / "meta").glob(".*.tmp"))
    assert w.num_episodes == 0


def test_sigkill_of_vla_record_keeps_completed_episodes_and_resume_continues(tmp_path):
    """The same, end to end: `vla record` on the simulated task, killed while recording episode 2."""
    import time

    root = tmp_path / "rec"
    args = [sys.executable, "-m", "vla_stack.cli", "record", "--env", "PutRedInBowl", "--image-size", "32",
            "--n-points", "64", "--max-steps", "60", "--no-progress", "--out", str(root)]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.Popen([*args, "--episodes", "50"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in proc.stdout:
            if line.startswith("episode 1:"):
                break
        time.sleep(0.2)  # well inside episode 2 (an episode takes about a second)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    reader = DatasetReader(root)
    assert reader.num_episodes in (2, 3)  # 3 only if episode 2 finished within the 0.2 s
    completed = reader.num_episodes
    assert validate_dataset(root).ok
    subprocess.run([*args, "--episodes", "1", "--resume"],
                   check=True, env=env, capture_output=True)
    assert DatasetReader(root).num_episodes == completed + 1
