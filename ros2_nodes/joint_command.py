"""End-effector delta -> joint targets, for robots driven by a JointTrajectory controller.

The action contract is a Cartesian delta; many arms (ros2_control's
joint_trajectory_controller) take joint targets. One damped-least-squares step on the arm's
DH model (the same tables the simulator uses, `vla_stack.sim.kinematics`) turns the
safety-filtered delta into joint positions one tick ahead, clipped to the joint limits.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_stack import schema


class JointCommander:
    def __init__(self, arm_name: str, damping: float = 0.05) -> None:
        from vla_stack.sim import kinematics

        self.kin = kinematics
        self.arm = kinematics.get_arm(arm_name)
        self.damping = damping
        self.lower, self.upper = np.asarray(self.arm.lower, float), np.asarray(self.arm.upper, float)

    def joint_targets(self, q: np.ndarray, action: np.ndarray) -> np.ndarray:
        q = np.asarray(q, float)
        if q.shape != (self.arm.n_joints,):
            raise schema.SchemaError(f"joint command: {self.arm.name} has {self.arm.n_joints} joints, got {q.shape}")
        jac = self.kin.jacobian(self.arm, q)
        twist = np.asarray(action[:6], float)
        dq = jac.T @ np.linalg.solve(jac @ jac.T + self.damping**2 * np.eye(6), twist)
        return np.clip(q + dq, self.lower, self.upper)

    def message(self, names: list[str], q: np.ndarray, action: np.ndarray, dt: float, stamp=None) -> JointTrajectory:
        msg = JointTrajectory()
        if stamp is not None:
            msg.header.stamp = stamp
        msg.joint_names = list(names)
        point = JointTrajectoryPoint()
        point.positions = self.joint_targets(q, action).tolist()
        point.time_from_start = Duration(sec=int(dt), nanosec=int((dt % 1.0) * 1e9))
        msg.points = [point]
        return msg
