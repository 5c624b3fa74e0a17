"""`workspace_yaw` turns the whole world, robot base included: a yaw-theta episode is the
yaw-0 episode rotated by theta about the base's vertical axis.

Measured when these tests were written (Panda and UR5e, seeds below): at reset every pose
matches to ~1e-15 m; replaying the yaw-0 expert's actions rotated by theta reproduces whole
episodes with the tool centre point within 0.74 mm (worst: opening the drawer at 90 deg,
handle contact) and every object within 0.65 mm; the point cloud is the same point set
(nearest-neighbour distance < 5e-6 m, also at 37 and -45 deg) and the scene image the same
image (colour values within 1 of 255). Bounds below leave margin for other CPUs.
"""

import numpy as np
import pytest

from vla_stack import schema
from vla_stack.sim.env import TabletopEnv
from vla_stack.sim.kinematics import rot_z
from vla_stack.sim.registration import max_episode_steps
from vla_stack.sim.scene import CUBES, DISTRACTORS, FIXTURES

YAWS_DEG = (90, 180, 270)
BODIES = CUBES + DISTRACTORS + FIXTURES + ("drawer", "button_cap")


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    import mujoco

    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, np.asarray(q, float))
    return m.reshape(3, 3)


def rotated_action(action: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """A base-frame action (delta position, delta rotation vector, gripper) turned by `rot`."""
    out = action.copy()
    out[:3], out[3:6] = rot @ action[:3], rot @ action[3:6]
    return out


def chamfer_m(a: np.ndarray, b: np.ndarray) -> float:
    d = np.linalg.norm(a[:, None] - b[None], axis=2)
    return float(0.5 * (d.min(axis=1).mean() + d.min(axis=0).mean()))


@pytest.mark.parametrize("robot", ["panda", "ur5e"])
def test_reset_at_yaw_is_the_yaw0_reset_rotated_with_the_same_joint_angles(robot):
    ref = TabletopEnv(task="PutRedInDrawer", robot=robot, obs_keys=(schema.OBS_STATE,))
    s0 = schema.RobotState.from_vector(ref.reset(seed=4)[0][schema.OBS_STATE])
    for deg in YAWS_DEG:
        rot = rot_z(np.radians(deg))
        env = TabletopEnv(task="PutRedInDrawer", robot=robot, obs_keys=(schema.OBS_STATE,), workspace_yaw=np.radians(deg))
        s = schema.RobotState.from_vector(env.reset(seed=4)[0][schema.OBS_STATE])
        np.testing.assert_array_equal(s.joints, s0.joints)  # no joint is turned, so none is clipped
        np.testing.assert_allclose(s.ee_pos, rot @ s0.ee_pos, atol=1e-6)
        np.testing.assert_allclose(quat_to_mat(s.ee_quat), rot @ quat_to_mat(s0.ee_quat), atol=1e-6)
        for body in BODIES:
            np.testing.assert_allclose(env.scene.body_pos(body), rot @ ref.scene.body_pos(body), atol=1e-6, err_msg=body)
            np.testing.assert_allclose(env.scene.body_mat(body), rot @ ref.scene.body_mat(body), atol=1e-6, err_msg=body)


@pytest.mark.parametrize("robot,task,seed", [("panda", "PutRedInBowl", 1), ("panda", "OpenDrawer", 4),
                                             ("ur5e", "PushRedTowardButton", 3)])
def test_rotated_yaw0_actions_replay_the_rotated_episode(robot, task, seed):
    ref = TabletopEnv(task=task, robot=robot, obs_keys=(schema.OBS_STATE,))
    ref.reset(seed=seed)
    actions, tcp, objects = [], [], []
    for _ in range(max_episode_steps(len(ref.task.subtasks))):
        actions.append(ref.expert_action())
        *_, done, _, _ = ref.step(actions[-1])
        tcp.append(ref.scene.tcp_pos())
        objects.append(np.stack([ref.scene.body_pos(b) for b in BODIES]))
        if done:
            break
    assert done and len(actions) >= 20, f"{task}: the yaw-0 expert episode should succeed"
    for deg in YAWS_DEG:
        rot = rot_z(np.radians(deg))
        env = TabletopEnv(task=task, robot=robot, obs_keys=(schema.OBS_STATE,), workspace_yaw=np.radians(deg))
        env.reset(seed=seed)
        tcp_err, obj_err = [], []
        for k, a in enumerate(actions):
            *_, done_here, _, _ = env.step(rotated_action(a, rot))
            tcp_err.append(np.linalg.norm(env.scene.tcp_pos() - rot @ tcp[k]))
            obj_err.append(np.linalg.norm(np.stack([env.scene.body_pos(b) for b in BODIES]) - objects[k] @ rot.T, axis=1).max())
        assert tcp_err[19] < 5e-4, f"{deg} deg: tool {tcp_err[19] * 1e3:.3f} mm off after 20 steps"
        assert max(tcp_err) < 3e-3 and max(obj_err) < 3e-3, f"{deg} deg: {max(tcp_err):.2e} / {max(obj_err):.2e} m"
        assert done_here, f"{deg} deg: the rotated replay should succeed like the yaw-0 episode"


@pytest.mark.parametrize("deg", [*YAWS_DEG, 37])
def test_point_cloud_and_scene_image_at_yaw_are_the_yaw0_ones_rotated(deg):
    keys = (schema.OBS_RGB, schema.OBS_POINTS, schema.OBS_COLORS)
    ref = TabletopEnv(task="PutRedInBowl", image_size=64, n_points=256, obs_keys=keys)
    env = TabletopEnv(task="PutRedInBowl", image_size=64, n_points=256, obs_keys=keys, workspace_yaw=np.radians(deg))
    o0, _ = ref.reset(seed=7)
    o, _ = env.reset(seed=7)
    expected = o0[schema.OBS_POINTS] @ rot_z(np.radians(deg)).T.astype(np.float32)
    assert chamfer_m(o[schema.OBS_POINTS], expected) < 1e-3
    # same points (sampling may order ties differently), same colours on them
    d = np.linalg.norm(o[schema.OBS_POINTS][:, None] - expected[None], axis=2)
    assert d.min(axis=1).max() < 1e-4
    np.testing.assert_allclose(o[schema.OBS_COLORS], o0[schema.OBS_COLORS][d.argmin(axis=1)], atol=2 / 255)
    # the camera, lights, table and floor turn too: the scene image does not change at all
    assert np.abs(o[schema.OBS_RGB].astype(int) - o0[schema.OBS_RGB]).max() <= 2
    ref.close()
    env.close()


@pytest.mark.parametrize("robot,task", [("panda", "PutGreenInDrawer"), ("ur5e", "PushBlueTowardBowl")])
def test_scripted_expert_succeeds_at_every_quarter_turn(robot, task):
    for deg in YAWS_DEG:
        env = TabletopEnv(task=task, robot=robot, obs_keys=(schema.OBS_STATE,), workspace_yaw=np.radians(deg))
        env.reset(seed=21)
        info = {}
        for _ in range(max_episode_steps(len(env.task.subtasks))):
            _, _, done, _, info = env.step(env.expert_action())
            if done:
                break
        assert info[schema.INFO_SUCCESS], f"{task} on {robot} at {deg} deg: stuck at {info[schema.INFO_SUBTASK]!r}"
