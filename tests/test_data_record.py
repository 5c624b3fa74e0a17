"""`vla record` from the real simulated task: what the env produced is what the dataset holds."""

import json
import os

import gymnasium as gym
import numpy as np
import pytest

from vla_stack import cli, schema
from vla_stack.datasets import DatasetReader, WindowDataset, layout, record as record_mod
from vla_stack.datasets.teleop import KeyboardTeleop
from vla_stack.datasets.validate import validate_dataset

os.environ.setdefault("MUJOCO_GL", "egl")
ARGS = ["--env", "PutRedInBowl", "--image-size", "32", "--n-points", "64", "--max-steps", "80", "--no-progress"]


class Tape(gym.Wrapper):
    """Keeps a copy of everything the environment hands out, to compare with the dataset."""

    episodes: list = []

    def reset(self, **kw):
        obs, info = self.env.reset(**kw)
        Tape.episodes.append({"obs": [obs], "info": [info], "actions": []})
        return obs, info

    def step(self, action):
        out = self.env.step(action)
        ep = Tape.episodes[-1]
        ep["actions"].append(np.array(action))
        ep["obs"].append(out[0])
        ep["info"].append(out[4])
        return out


@pytest.fixture
def taped(monkeypatch):
    Tape.episodes = []
    make = record_mod.make_env
    monkeypatch.setattr(record_mod, "make_env", lambda cfg: Tape(make(cfg)))
    return Tape


def test_recorded_episodes_read_back_exactly_as_the_env_produced_them(tmp_path, taped):
    out = tmp_path / "ds"
    assert cli.main(["record", *ARGS, "--episodes", "2", "--out", str(out)]) == 0
    tapes = taped.episodes[1:]  # the first reset only sizes the features
    reader = DatasetReader(out)
    assert reader.num_episodes == 2
    for ep, tape in enumerate(tapes):
        n = len(tape["actions"])
        cols = reader.episode_columns(ep)
        assert reader.episodes[ep]["length"] == n
        np.testing.assert_array_equal(cols[layout.ACTION], np.stack(tape["actions"]))
        np.testing.assert_array_equal(cols[layout.STATE], np.stack([o[schema.OBS_STATE] for o in tape["obs"][:n]]))
        np.testing.assert_array_equal(cols[layout.POINTS], np.stack([o[schema.OBS_POINTS] for o in tape["obs"][:n]]))
        assert [reader.subtask_texts[i] for i in cols[layout.SUBTASK_INDEX]] == \
            [i[schema.INFO_SUBTASK] for i in tape["info"][:n]]
        assert cols[layout.SUBTASK_DONE].tolist() == [bool(i[schema.INFO_SUBTASK_DONE]) for i in tape["info"][1:]]
        assert cols[layout.SUCCESS].tolist() == [bool(i[schema.INFO_SUCCESS]) for i in tape["info"][1:]]
        assert reader.task_texts[int(cols[layout.TASK_INDEX][0])] == tape["info"][0][schema.INFO_INSTRUCTION]
        assert reader.episodes[ep]["success"] == bool(tape["info"][-1][schema.INFO_SUCCESS])
        for cam in ("rgb", "wrist_rgb"):
            frames = reader.episode_frames(ep, cam).astype(np.float64)
            truth = np.stack([o[cam] for o in tape["obs"][:n]]).astype(np.float64)
            psnr = 10 * np.log10(255.0 ** 2 / np.mean((frames - truth) ** 2))
            assert psnr > 26, f"{cam}: PSNR {psnr:.1f} dB"  # H.264 4:2:0 at 32x32: 28-30 dB measured
    report = validate_dataset(out)
    assert report.ok, report.errors
    info = json.loads((out / layout.INFO_PATH).read_text())
    assert set(layout.LEROBOT_INFO_FIELDS) <= set(info) and info["codebase_version"] == "v3.0"
    assert set(info["vla_stack"]["cameras"]) == {"scene", "wrist"}
    assert len(WindowDataset(out, history=2, horizon=4)) == reader.num_frames


def test_resume_appends_with_new_seeds_and_overwrite_is_required(tmp_path, taped, capsys):
    out = tmp_path / "ds"
    assert cli.main(["record", *ARGS, "--max-steps", "5", "--out", str(out)]) == 0
    assert cli.main(["record", *ARGS, "--max-steps", "5", "--out", str(out)]) == 1
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["record", *ARGS, "--max-steps", "5", "--out", str(out), "--resume"]) == 0
    reader = DatasetReader(out)
    assert reader.num_episodes == 2 and [e["length"] for e in reader.episodes] == [5, 5]
    first, second = taped.episodes[1]["obs"][0], taped.episodes[4]["obs"][0]  # [2]: the refused run
    assert not np.array_equal(first[schema.OBS_POINTS], second[schema.OBS_POINTS])  # seed 0, then seed 1
    assert cli.main(["record", *ARGS, "--max-steps", "5", "--out", str(out), "--overwrite"]) == 0
    assert DatasetReader(out).num_episodes == 1


def test_review_discard_and_rerecord(tmp_path, monkeypatch):
    answers = iter(["r\n", "d\n", "k\n"])
    monkeypatch.setattr(record_mod, "ask_review", lambda success, steps: next(answers)[0])
    out = tmp_path / "ds"
    assert cli.main(["record", *ARGS, "--max-steps", "4", "--review", "yes", "--out", str(out)]) == 0
    reader = DatasetReader(out)
    assert reader.num_episodes == 1  # re-recorded, then discarded, then kept


def test_keyboard_teleop_turns_keys_into_actions():
    read_fd, write_fd = os.pipe()
    try:
        kb = KeyboardTeleop(fps=20, speed_mps=0.2, fd=read_fd)
        os.write(write_fd, b"w")
        np.testing.assert_allclose(kb.action(None, None), [0.01, 0, 0, 0, 0, 0, 1.0])
        np.testing.assert_allclose(kb.action(None, None), [0.01, 0, 0, 0, 0, 0, 1.0])  # held
        os.write(write_fd, b"dh")
        np.testing.assert_allclose(kb.action(None, None), [0, -0.01, 0, 0, 0, 0, -1.0])
        os.write(write_fd, b" q")
        np.testing.assert_allclose(kb.action(None, None), [0, 0, 0, 0, 0, 0, -1.0])
        assert kb.episode_ended()
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_unknown_env_is_named(tmp_path, capsys):
    assert cli.main(["record", "--env", "MakeCoffee", "--out", str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err
    assert "unknown environment 'MakeCoffee'" in err and "PutRedInBowl" in err
