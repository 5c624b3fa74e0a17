"""`AgentConfig`: how the agent composes its parts, and the safety limits it runs under."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from vla_stack import schema
from vla_stack.ros2_nodes.safety import SafetyConfig

#: full: planner + world model + action expert. no_world_model: no subgoal is predicted.
#: flat: no planner and no world model, the action expert is conditioned on the instruction.
Mode = Literal["full", "no_world_model", "flat"]


def sim_safety(workspace_yaw: float = 0.0, control_rate_hz: float = 20.0) -> SafetyConfig:
    """Limits for the simulated arms: the scripted expert's own envelope plus a margin.

    The expert moves up to 3 cm and 0.2 rad per 20 Hz tick and starts at full speed, so the
    ROS defaults (0.25 m/s, 2.5 m/s^2), sized for a real arm near people, would slow every
    demonstrated motion. The workspace box is the default one turned with the layout
    (`workspace_yaw`): exact for multiples of 90 degrees, its bounding box otherwise.
    """
    d = SafetyConfig()
    lo, hi = np.asarray(d.workspace_min_m), np.asarray(d.workspace_max_m)
    c, s = math.cos(workspace_yaw), math.sin(workspace_yaw)
    corners = np.array([[x, y] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])])
    turned = corners @ np.array([[c, s], [-s, c]])  # rows: R @ corner
    turned = np.round(turned, 9)  # cos(pi/2) is 6e-17, not 0
    new_lo = (*turned.min(axis=0), lo[2])
    new_hi = (*turned.max(axis=0), hi[2])
    return replace(d, control_rate_hz=control_rate_hz, max_linear_speed_mps=0.75, max_angular_speed_radps=5.0,
                   max_linear_accel_mps2=20.0, max_angular_accel_radps2=120.0,
                   workspace_min_m=tuple(float(v) for v in new_lo), workspace_max_m=tuple(float(v) for v in new_hi),
                   input_timeout_s=0.5, required_inputs=("points", "state")).validate()


@dataclass
class AgentConfig:
    mode: Mode = "full"
    # ask the planner whether the subtask is done every N ticks (whenever its thread is free at 1).
    # 1, not 10: the learned planner ends a subtask only when its effects were judged true on
    # HOLD_CHECKS (3) observations in a row; 10 ticks apart that is ~1.5 s of a lifted cube held
    # still, which the policy (trained on text that switches at the sim's boundary) never does:
    # 21 of 22 finished picks were never handed over (docs/agent.md, "Hand-off").
    planner_every_ticks: int = 1
    # keep asking the planner after it said DONE (the hand backs off meanwhile) and resume with the subtask it
    # names if the scene shows work undone (the learned planner reads progress from the scene: a DONE judged
    # on a cube that then fell is taken back). False: DONE is final until the next instruction.
    recheck_after_done: bool = True
    control_rate_hz: float = 20.0
    # Agent.reset(instruction, obs) waits up to this long for the planner's first subtask (0: it does not plan)
    first_plan_timeout_s: float = 5.0
    # how action chunks are executed; None: as validated for the policy checkpoint (its meta.execution), else ensemble
    execution: Literal["ensemble", "receding"] | None = None
    # what the hand does when one subtask ends with the hand open (a place, a stack) and the next begins.
    # start_pose: the agent first takes the hand back to where and how the instruction began (up, across, down,
    # turned back; agent/handoff.py) and restarts the expert's state, so the next skill starts as demonstrated
    # (session 20, lockstep, seeds 12000+: 39/56 against 32/56; docs/agent.md, "Hand-off retract").
    # none: the action expert goes on from where the place left the hand.
    handoff: Literal["none", "start_pose"] = "start_pose"
    safety: SafetyConfig = field(default_factory=sim_safety)

    def validate(self) -> "AgentConfig":
        if self.mode not in ("full", "no_world_model", "flat"):
            raise schema.SchemaError(f"agent.mode: {self.mode!r}, expected full | no_world_model | flat")
        if self.handoff not in ("none", "start_pose"):
            raise schema.SchemaError(f"agent.handoff: {self.handoff!r}, expected none | start_pose")
        if self.planner_every_ticks < 1:
            raise schema.SchemaError(f"agent.planner_every_ticks: must be >= 1, got {self.planner_every_ticks}")
        if not (math.isfinite(self.first_plan_timeout_s) and self.first_plan_timeout_s >= 0):
            raise schema.SchemaError(f"agent.first_plan_timeout_s: must be >= 0, got {self.first_plan_timeout_s}")
        if not (math.isfinite(self.control_rate_hz) and self.control_rate_hz > 0):
            raise schema.SchemaError(f"agent.control_rate_hz: must be > 0, got {self.control_rate_hz}")
        self.safety.validate()
        return self
