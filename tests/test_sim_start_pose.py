"""Random start poses (`sim/start_pose.py`): episodes that begin where another skill could have left the
hand, for demos and DAgger (`--random-start-fraction`)."""

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

import vla_stack.sim as sim  # noqa: E402
from vla_stack import schema  # noqa: E402
from vla_stack.datasets.reader import DatasetReader  # noqa: E402
from vla_stack.policy.demos import POLICY_OBS_KEYS, DemosConfig, record_all  # noqa: E402
from vla_stack.sim.start_pose import anchors, drive_to_random_start, reset_maybe_away  # noqa: E402


@pytest.fixture
def env():
    e = sim.make("OpenDrawer", n_points=64, image_size=32, obs_keys=POLICY_OBS_KEYS)
    yield e
    e.close()


def test_the_hand_ends_hovering_near_a_fixture_or_object_turned_and_gripped_at_random(env):
    env.reset(seed=3)
    home = env.unwrapped.scene.tcp_pos().copy()
    ends, grips, names = [], [], set()
    for k in range(6):
        env.reset(seed=3)
        obs, info, ticks, name = drive_to_random_start(env, np.random.default_rng(k))
        scene = env.unwrapped.scene
        tcp = scene.tcp_pos()
        anchor = anchors(scene)[name]
        # within the scatter and hover band of its anchor (2 cm of slack for an unfinished travel)
        assert np.linalg.norm(tcp[:2] - anchor[:2]) < 0.05 * np.sqrt(2) + 0.02, (name, tcp, anchor)
        assert 0.05 - 0.02 < tcp[2] - anchor[2] < 0.16 + 0.02, (name, tcp, anchor)
        assert ticks <= 40 and info[schema.INFO_SUBTASK] == "open the drawer"  # nothing done on the way
        assert np.allclose(obs[schema.OBS_STATE][:3], tcp, atol=1e-5)
        ends.append(tcp)
        grips.append(scene.gripper_opening())
        names.add(name)
    assert min(np.linalg.norm(e - home) for e in ends) > 0.05  # none of them is the home pose
    assert len(names) >= 3 and np.ptp(grips) > 0.03


def test_the_expert_still_solves_the_task_from_a_random_start(env):
    for k in range(3):
        env.reset(seed=10 + k)
        drive_to_random_start(env, np.random.default_rng(100 + k))
        for _ in range(env.spec.max_episode_steps):
            _, _, terminated, truncated, info = env.step(env.unwrapped.expert_action())
            if terminated or truncated:
                break
        assert info[schema.INFO_SUCCESS], k


def test_without_a_generator_the_reset_is_the_plain_one(env):
    plain, _ = env.reset(seed=5)
    same, _ = reset_maybe_away(env, 5, None)
    assert np.array_equal(plain[schema.OBS_STATE], same[schema.OBS_STATE])


def test_demos_record_from_random_starts_only_the_share_asked(tmp_path):
    common = dict(tasks=("CloseDrawer",), episodes=2, n_points=64, image_size=32, workers=1)
    home = record_all(DemosConfig(out=tmp_path / "home", **common))
    away = record_all(DemosConfig(out=tmp_path / "away", random_start_fraction=1.0, **common))
    assert home[0]["random_start_episodes"] == 0 and away[0]["random_start_episodes"] == 2
    first = lambda root, ep: DatasetReader(root / "CloseDrawer").episode_columns(ep)["observation.state"][0]  # noqa: E731
    for ep in range(2):  # same seeds: the home starts agree, the random starts begin elsewhere
        assert np.linalg.norm(first(tmp_path / "home", ep)[:3] - first(tmp_path / "away", ep)[:3]) > 0.05


def test_a_share_outside_0_1_is_refused(tmp_path):
    with pytest.raises(schema.SchemaError, match="random_start_fraction"):
        record_all(DemosConfig(out=tmp_path, tasks=("CloseDrawer",), random_start_fraction=1.5))
