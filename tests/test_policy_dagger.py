"""`vla policy dagger`: a checkpoint rolled out in lockstep envs, every state labelled with the
scripted expert's action (what it would do there), episodes written per task."""

import os

import numpy as np
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from vla_stack.datasets.reader import DatasetReader  # noqa: E402
from vla_stack.policy import PolicyModel, save_checkpoint, tiny_config  # noqa: E402
from vla_stack.policy.dagger import DaggerConfig, collect_all  # noqa: E402


def test_dagger_labels_the_policys_states_with_expert_actions(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "ckpt", PolicyModel(tiny_config()))
    cfg = DaggerConfig(checkpoint=ckpt, out=tmp_path / "dagger", tasks=("CloseDrawer",), episodes=3, n_envs=2,
                       beta=0.0, max_steps=6, n_points=64, image_size=32, device="cpu", workers=1)
    rows = collect_all(cfg)
    assert rows[0]["episodes"] == 3 and rows[0]["frames"] == 18
    reader = DatasetReader(tmp_path / "dagger" / "CloseDrawer")
    assert reader.num_episodes == 3
    ep = reader.episode_columns(0)
    # beta=0: the untrained policy drove, yet the labels are the expert's purposeful actions (not the
    # policy's near-random ones): CloseDrawer's expert heads for the handle at its travel speed
    speeds = np.linalg.norm(ep["action"][:, :3], axis=1)
    assert speeds.max() > 0.01 and speeds.max() <= 0.03 + 1e-5
    states = ep["observation.state"][:, :3]
    assert not np.allclose(states[1:], states[:-1])  # the arm moved under the policy's actions


def test_dagger_episodes_can_start_away_from_home(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "ckpt", PolicyModel(tiny_config()))
    common = dict(checkpoint=ckpt, tasks=("CloseDrawer",), episodes=2, n_envs=2, beta=0.0, max_steps=3,
                  n_points=64, image_size=32, device="cpu", workers=1)
    collect_all(DaggerConfig(out=tmp_path / "home", **common))
    collect_all(DaggerConfig(out=tmp_path / "away", random_start_fraction=1.0, **common))
    for ep in range(2):  # same seeds: the first recorded state is the home pose only without the random start
        home = DatasetReader(tmp_path / "home" / "CloseDrawer").episode_columns(ep)["observation.state"][0, :3]
        away = DatasetReader(tmp_path / "away" / "CloseDrawer").episode_columns(ep)["observation.state"][0, :3]
        assert np.linalg.norm(home - away) > 0.05
