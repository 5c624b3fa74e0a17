"""The hand-off retract (AgentConfig.handoff = "start_pose"): between a subtask that ended with the hand open
and the next one, the hand goes back to where the instruction began before the action expert takes over.

Why: the demonstrations start every skill from that pose (or a hover near a fixture), while inside a held-out
composition a skill starts wherever a place left the hand, low and open beside the cube it let go of; from
there the expert's press and drawer close failed most often (docs/agent.md, "Hand-off retract"). The motion
is the scripted expert's travel (up, across, down), measured on the end effector, not counted in ticks.
"""

from __future__ import annotations

import numpy as np

from vla_stack import schema

STEP_M = 0.025  # commanded per tick (0.5 m/s at 20 Hz; the sim's safety limit is 0.75 m/s)
ARRIVED_M = 0.015  # done once the end effector is this close to the start position
RISE_FIRST_M = 0.03  # below the start height by more than this and away from it: straight up first
MAX_TICKS = 50  # gives up after this many ticks (an arm that cannot get there), wherever the hand is


class Retract:
    """Actions that take the end effector to `target_m` (base frame) with the gripper held at `gripper`."""

    def __init__(self, target_m: np.ndarray, gripper: float) -> None:
        self.target = np.asarray(target_m, np.float64).copy()
        self.gripper = float(gripper)
        self.ticks = 0

    def action(self, ee_pos_m: np.ndarray) -> np.ndarray | None:
        """The next action, or None once there (or out of ticks): the expert takes over."""
        self.ticks += 1
        d = self.target - np.asarray(ee_pos_m, np.float64)
        if np.linalg.norm(d) < ARRIVED_M or self.ticks > MAX_TICKS:
            return None
        if np.linalg.norm(d[:2]) > ARRIVED_M and d[2] > RISE_FIRST_M:
            d = np.array([0.0, 0.0, d[2]])  # low beside a fixture: rise before moving across
        action = np.zeros(schema.ACTION_DIM, np.float32)
        action[:3] = d * min(1.0, STEP_M / np.linalg.norm(d))
        action[6] = self.gripper
        return action
