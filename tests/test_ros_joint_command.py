"""Cartesian delta -> joint targets: one DLS step moves the tool by (about) the commanded delta."""

import numpy as np
import pytest

pytest.importorskip("trajectory_msgs")
from vla_stack import schema  # noqa: E402
from vla_stack.ros2_nodes.joint_command import JointCommander  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("arm", ["panda", "ur5e"])
def test_joint_step_realises_the_cartesian_delta(arm):
    jc = JointCommander(arm, damping=1e-3)
    q = np.array(jc.arm.ik_seed, float)
    action = np.array([0.01, -0.005, 0.008, 0.0, 0.0, 0.02, 1.0])
    before = jc.kin.forward(jc.arm, q)
    after = jc.kin.forward(jc.arm, jc.joint_targets(q, action))
    np.testing.assert_allclose(after[:3, 3] - before[:3, 3], action[:3], atol=5e-4)
    rot = jc.kin.rotation_log(after[:3, :3] @ before[:3, :3].T)
    np.testing.assert_allclose(rot, action[3:6], atol=5e-3)


def test_zero_action_holds_the_joints_and_message_is_one_point_ahead():
    jc = JointCommander("panda")
    q = np.array(jc.arm.ik_seed, float)
    names = [f"joint{i + 1}" for i in range(7)]
    msg = jc.message(names, q, np.zeros(7), dt=0.05)
    assert msg.joint_names == names and len(msg.points) == 1
    np.testing.assert_allclose(msg.points[0].positions, q)
    assert msg.points[0].time_from_start.nanosec == 50_000_000


def test_wrong_joint_count_is_refused():
    with pytest.raises(schema.SchemaError, match="panda has 7 joints"):
        JointCommander("panda").joint_targets(np.zeros(6), np.zeros(7))
