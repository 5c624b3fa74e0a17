"""The gymnasium face of the suite: spaces, determinism, bad input, hooks used by others."""

import functools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import vla_stack.sim as sim
from vla_stack import schema
from vla_stack.sim.env import TabletopEnv

TINY = dict(image_size=32, n_points=64, render_size=32)


@pytest.mark.parametrize("task", sim.task_names())
def test_check_env_passes_for_every_task(task):
    env = gym.make(sim.env_id(task), robot="ur5e" if len(task) % 2 else "panda", **TINY)
    check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert set(obs) == {schema.OBS_RGB, schema.OBS_DEPTH, schema.OBS_WRIST_RGB, schema.OBS_POINTS,
                        schema.OBS_COLORS, schema.OBS_STATE}
    assert info[schema.INFO_INSTRUCTION] == sim.get_task(task).instruction
    assert info[schema.INFO_SUBTASK] in sim.get_task(task).subtask_texts
    env.close()


def _rollout(env, seed, steps):
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for _ in range(steps):
        obs, *_ = env.step(env.unwrapped.expert_action())
        frames.append(obs)
    return frames


def test_same_seed_same_episode_bit_for_bit():
    env = TabletopEnv(task="PutRedInBowl", **TINY)
    a, b = _rollout(env, 7, 12), _rollout(env, 7, 12)
    c = _rollout(env, 8, 0)
    for fa, fb in zip(a, b):
        for k in fa:
            np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)
    assert not np.array_equal(a[0][schema.OBS_STATE], c[0][schema.OBS_STATE]) or \
        not np.array_equal(a[0][schema.OBS_POINTS], c[0][schema.OBS_POINTS])
    env.close()


def test_state_vector_follows_the_schema():
    env = TabletopEnv(task="PickRedCube", robot="ur5e", obs_keys=(schema.OBS_STATE,))
    obs, _ = env.reset(seed=0)
    st = schema.RobotState.from_vector(obs[schema.OBS_STATE], n_joints=6)
    np.testing.assert_allclose(st.ee_pos, env.scene.tcp_pos(), atol=1e-6)
    assert st.gripper == pytest.approx(0.08, abs=1e-6)  # open
    assert obs[schema.OBS_STATE][schema.STATE_JOINTS][6] == 0.0  # 6-DoF arm, zero-padded


def test_nan_action_is_refused_and_out_of_range_is_clipped():
    env = TabletopEnv(task="PickRedCube", obs_keys=(schema.OBS_STATE,))
    env.reset(seed=1)
    with pytest.raises(schema.SchemaError, match="NaN/inf"):
        env.step(np.array([0, 0, np.nan, 0, 0, 0, 1], np.float32))
    with pytest.raises(schema.SchemaError, match="shape"):
        env.step(np.zeros(6, np.float32))
    big = np.array([1.0, -1.0, 0.3, 2.0, 0, 0, 5.0], np.float32)
    env.reset(seed=1)
    s1 = env.step(big)[0][schema.OBS_STATE]
    env.reset(seed=1)
    s2 = env.step(np.clip(big, schema.ACTION_LOW, schema.ACTION_HIGH))[0][schema.OBS_STATE]
    np.testing.assert_array_equal(s1, s2)


def test_unknown_task_and_bad_options_fail_clearly():
    with pytest.raises(schema.SchemaError, match="valid tasks: .*PutRedInBowl"):
        TabletopEnv(task="PutDogInBowl")
    with pytest.raises(schema.SchemaError, match="unknown arm"):
        TabletopEnv(task="PickRedCube", robot="kuka")
    with pytest.raises(schema.SchemaError, match="obs_keys"):
        TabletopEnv(task="PickRedCube", obs_keys=("lidar",))


def test_cameras_expose_calibration():
    env = TabletopEnv(task="PickRedCube", **TINY)
    env.reset(seed=0)
    cams = env.unwrapped.cameras
    assert set(cams) == {"scene", "wrist"}
    intr, extr = cams["scene"]
    assert (intr.width, intr.height) == (32, 32)
    np.testing.assert_allclose(extr.rotation @ extr.rotation.T, np.eye(3), atol=1e-9)
    # the scene camera looks down at the table: its optical axis has a negative z
    assert extr.rotation[2, 2] < -0.5


def test_drawer_open_at_reset_and_closing_it_midway_moves_the_subtask_back():
    env = TabletopEnv(task="PutGreenInDrawer", obs_keys=(schema.OBS_STATE,), drawer_open_at_reset=True)
    _, info = env.reset(seed=2)
    assert info[schema.INFO_SUBTASK_INDEX] == 1 and info[schema.INFO_SUBTASK] == "pick up the green cube"
    for _ in range(200):
        _, _, _, _, info = env.step(env.expert_action())
        if info[schema.INFO_SUBTASK_INDEX] == 2:  # holding the cube, about to place it
            break
    assert info[schema.INFO_SUBTASK] == "put the green cube in the drawer"
    env.set_drawer_opening(0.0)
    assert env.current_subtask == "open the drawer"
    for _ in range(500):
        _, _, terminated, _, info = env.step(env.expert_action())
        if terminated:
            break
    assert info[schema.INFO_SUCCESS], "the expert recovers from the perturbation"
    with pytest.raises(schema.SchemaError):
        env.set_drawer_opening(float("nan"))


def test_subtask_boundaries_are_marked():
    env = TabletopEnv(task="PutRedInBowl", obs_keys=(schema.OBS_STATE,))
    _, info = env.reset(seed=4)
    done_steps, texts = [], [info[schema.INFO_SUBTASK]]
    for t in range(300):
        _, _, terminated, _, info = env.step(env.expert_action())
        texts.append(info[schema.INFO_SUBTASK])
        if info[schema.INFO_SUBTASK_DONE]:
            done_steps.append(t)
        if terminated:
            break
    assert len(done_steps) == 2 and texts[-1] == schema.DONE_TOKEN
    assert texts[done_steps[0]] == "pick up the red cube" and texts[done_steps[0] + 1] == "put the red cube in the bowl"


@pytest.mark.parametrize("task", ["StackRedOnGreen", "PutRedAndGreenInBowl"])  # last subtask / one in between
def test_a_place_or_stack_ends_only_after_the_hand_lets_go_and_backs_off(task):
    """So a demonstration shows the release under the place / stack text: with the subtask ending the tick
    the fingers open, each demonstration held one open-gripper frame of it and no policy learnt to let go."""
    env = TabletopEnv(task=task, obs_keys=(schema.OBS_STATE,))
    _, info = env.reset(seed=4)
    released, open_frames = None, 0
    for t in range(400):
        sub, action = info[schema.INFO_SUBTASK], env.expert_action()
        placing = sub.startswith("put") or sub.startswith("stack")
        open_frames += placing and action[6] > 0
        if placing and released is None and env.facts.holding() == "nothing":
            released = t
            assert not env.facts.hand_clear_of("red_cube")
        _, _, terminated, _, info = env.step(action)
        if info[schema.INFO_SUBTASK_DONE] and placing:
            assert released is not None and t > released and env.facts.hand_clear_of("red_cube")
            break
    else:
        raise AssertionError(f"{task}: the place / stack never finished")
    assert open_frames >= 5, f"only {open_frames} open-gripper frames under the place / stack text"


def test_async_vector_env_runs_two_envs():
    # "spawn": a forked child would inherit this process's EGL state (renderers made by other
    # tests); "module:id" makes each fresh child import vla_stack.sim, which registers the ids
    make = functools.partial(gym.make, f"vla_stack.sim:{sim.env_id('PressButton')}", **TINY)
    envs = gym.vector.AsyncVectorEnv([make] * 2, context="spawn")
    obs, info = envs.reset(seed=[0, 1])
    assert obs[schema.OBS_POINTS].shape == (2, 64, 3) and obs[schema.OBS_RGB].shape == (2, 32, 32, 3)
    obs, rew, term, trunc, info = envs.step(np.zeros((2, 7), np.float32))
    assert obs[schema.OBS_STATE].shape == (2, schema.STATE_DIM)
    assert list(info[schema.INFO_SUBTASK]) == ["press the button"] * 2
    envs.close()


def test_workspace_yaw_rotates_the_whole_scene_and_its_point_cloud():
    yaw = 0.9
    rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    a = TabletopEnv(task="PutRedInDrawer", image_size=64, n_points=128, workspace_yaw=0.0)
    b = TabletopEnv(task="PutRedInDrawer", image_size=64, n_points=128, workspace_yaw=yaw)
    oa, _ = a.reset(seed=11)
    ob, _ = b.reset(seed=11)
    for body in ("red_cube", "bowl", "cabinet", "button", "distractor_block"):
        np.testing.assert_allclose(b.scene.body_pos(body), rot @ a.scene.body_pos(body), atol=1e-9)
    np.testing.assert_allclose(ob[schema.OBS_STATE][:3], rot @ oa[schema.OBS_STATE][:3], atol=1e-6)
    # cameras turn with the layout, so the cloud is the same cloud, rotated (point for point,
    # up to the odd tie broken differently by float rounding in the sampler)
    dist = np.linalg.norm(ob[schema.OBS_POINTS] - oa[schema.OBS_POINTS] @ rot.T, axis=1)
    assert np.mean(dist < 1e-4) > 0.95
    a.close()
    b.close()
