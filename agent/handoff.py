"""The hand-off retract (AgentConfig.handoff = "start_pose"): between a subtask that ended with the hand open
and the next one, the hand goes back to where the instruction began before the action expert takes over.

Why: the demonstrations start every skill from that pose (or a hover near a fixture), while inside a held-out
composition a skill starts wherever a place left the hand, low and open beside the cube it let go of; from
there the expert's press and drawer close failed most often (docs/agent.md, "Hand-off retract"). The motion
is the scripted expert's travel (up, across, down), measured on the end effector, not counted in ticks; the
hand turns back too (position alone lost: the next skill then started turned as the place had left it).
"""

from __future__ import annotations

import numpy as np

from vla_stack import schema

STEP_M = 0.025  # commanded per tick (0.5 m/s at 20 Hz; the sim's safety limit is 0.75 m/s)
ARRIVED_M = 0.015  # done once the end effector is this close to the start position
RISE_FIRST_M = 0.03  # below the start height by more than this and away from it: straight up first
MAX_TICKS = 50  # gives up after this many ticks (an arm that cannot get there), wherever the hand is
STEP_RAD = 0.15  # turn commanded per tick
ARRIVED_RAD = 0.05


def _rotvec_between(q_from: np.ndarray, q_to: np.ndarray) -> np.ndarray:
    """Rotation vector (base frame) taking orientation q_from to q_to (quaternions w, x, y, z)."""
    w1, x1, y1, z1 = q_to
    w2, x2, y2, z2 = q_from[0], -q_from[1], -q_from[2], -q_from[3]  # conjugate
    q = np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                  w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])
    if q[0] < 0:
        q = -q
    n = np.linalg.norm(q[1:])
    return np.zeros(3) if n < 1e-12 else q[1:] / n * 2.0 * np.arctan2(n, q[0])


class Retract:
    """Actions that take the end effector to `target_m` (base frame) with the gripper held at `gripper`."""

    def __init__(self, target_m: np.ndarray, target_quat: np.ndarray, gripper: float) -> None:
        self.target = np.asarray(target_m, np.float64).copy()
        self.target_quat = np.asarray(target_quat, np.float64) / np.linalg.norm(target_quat)
        self.gripper = float(gripper)
        self.ticks = 0

    def action(self, ee_pos_m: np.ndarray, ee_quat: np.ndarray) -> np.ndarray | None:
        """The next action, or None once there (or out of ticks): the expert takes over."""
        self.ticks += 1
        if not np.linalg.norm(ee_quat) > 1e-6:
            return None  # no orientation to work from: the expert's own checks refuse this state (a stop)
        d = self.target - np.asarray(ee_pos_m, np.float64)
        turn = _rotvec_between(np.asarray(ee_quat, np.float64) / np.linalg.norm(ee_quat), self.target_quat)
        if (np.linalg.norm(d) < ARRIVED_M and np.linalg.norm(turn) < ARRIVED_RAD) or self.ticks > MAX_TICKS:
            return None
        rising = np.linalg.norm(d[:2]) > ARRIVED_M and d[2] > RISE_FIRST_M
        if rising:
            d = np.array([0.0, 0.0, d[2]])  # low beside a fixture: rise before moving across (and turning)
        action = np.zeros(schema.ACTION_DIM, np.float32)
        if np.linalg.norm(d) > 1e-9:
            action[:3] = d * min(1.0, STEP_M / np.linalg.norm(d))
        if not rising and np.linalg.norm(turn) > 1e-9:
            action[3:6] = turn * min(1.0, STEP_RAD / np.linalg.norm(turn))
        action[6] = self.gripper
        return action
