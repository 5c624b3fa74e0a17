"""The arms in MJCF have the published Panda / UR5e kinematics (checked against the DH tables)."""

import vla_stack.sim  # noqa: F401  (sets MUJOCO_GL=egl before mujoco loads)
import mujoco
import numpy as np
import pytest

from vla_stack.sim import arm_mjcf
from vla_stack.sim import kinematics as kin
from vla_stack.sim.scene import Scene


@pytest.mark.parametrize("robot", ["panda", "ur5e"])
def test_mujoco_forward_kinematics_matches_the_dh_table(robot):
    scene = Scene(robot)
    arm = scene.arm
    rng = np.random.default_rng(0)
    lo, hi = np.array(arm.lower), np.array(arm.upper)
    for _ in range(20):
        q = rng.uniform(np.maximum(lo, -np.pi), np.minimum(hi, np.pi))
        scene.data.qpos[scene.arm_qpos_adr] = q
        mujoco.mj_kinematics(scene.model, scene.data)
        expected = kin.forward(arm, q)
        np.testing.assert_allclose(scene.tcp_pos(), expected[:3, 3], atol=1e-6)
        np.testing.assert_allclose(scene.tcp_mat(), expected[:3, :3], atol=1e-5)  # 6 digits in the XML


def test_known_reach_of_each_arm():
    # Panda stretched straight up: 0.333 + 0.316 + 0.384 + 0.107 (flange) + tool, x offset 0.088
    up = kin.forward(kin.PANDA, np.array([0, 0, 0, -0.0698, 0, np.pi, 0]))
    assert up[2, 3] > 0.333 + 0.316 + 0.384 - 0.2
    # UR5e at zero: the arm lies along -x, reach a2 + a3 = 0.8172 m
    t = kin.forward(kin.UR5E, np.zeros(6))
    assert t[0, 3] == pytest.approx(-0.8172, abs=1e-6)


@pytest.mark.parametrize("robot", ["panda", "ur5e"])
def test_asset_files_are_generated_from_the_tables(robot):
    path = arm_mjcf.ASSETS / f"{robot}.xml"
    assert path.read_text() == arm_mjcf.arm_xml(kin.ARMS[robot]), "run python -m vla_stack.sim.arm_mjcf"


@pytest.mark.parametrize("robot", ["panda", "ur5e"])
def test_home_pose_points_the_gripper_down(robot):
    scene = Scene(robot)
    scene.reset(np.random.default_rng(0))
    np.testing.assert_allclose(scene.tcp_pos(), kin.HOME_TCP, atol=1e-5)
    np.testing.assert_allclose(scene.tcp_mat(), kin.R_DOWN, atol=1e-5)
    assert scene.n_joints == (7 if robot == "panda" else 6)
