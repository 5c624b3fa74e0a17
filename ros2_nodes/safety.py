"""The safety layer on the action path, as plain Python (no ROS, no model).

It sits between whatever proposes an action (the action expert, teleoperation) and the
robot, and it trusts neither: a model can output NaN, sensors can stop, a person can hit
the e-stop. Every tick `SafetyFilter.filter` turns a proposed schema action (per-tick
end-effector delta + gripper) into one that respects speed, acceleration and workspace
limits, or into zero motion when the inputs are stale, the e-stop is latched or anything is
non-finite. Zero motion keeps the last safe gripper command: opening the hand because a
camera dropped out would drop what it holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vla_stack import schema

DONE_BACK_OFF_M = 0.06  # an open hand's rise after the instruction is done (HAND_CLEAR_M is 5 cm)
DONE_BACK_OFF_STEP_M = 0.01  # per tick, up (base frame)
DONE_BACK_OFF_MAX_TICKS = 20  # the rise stops after this many ticks even if the hand has not got that high


@dataclass
class SafetyConfig:
    """Limits of the safety filter (the same values are ROS parameters of the nodes)."""

    control_rate_hz: float = 20.0
    max_linear_speed_mps: float = 0.25
    max_angular_speed_radps: float = 1.0
    max_linear_accel_mps2: float = 2.5
    max_angular_accel_radps2: float = 10.0
    workspace_min_m: tuple[float, float, float] = (0.15, -0.6, -0.05)
    workspace_max_m: tuple[float, float, float] = (0.85, 0.6, 0.7)
    input_timeout_s: float = 0.5
    required_inputs: tuple[str, ...] = ("points", "state")

    def validate(self) -> "SafetyConfig":
        positive = ["control_rate_hz", "max_linear_speed_mps", "max_angular_speed_radps",
                    "max_linear_accel_mps2", "max_angular_accel_radps2", "input_timeout_s"]
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise schema.SchemaError(f"safety.{name}: must be a finite number > 0, got {v!r}")
        lo, hi = np.asarray(self.workspace_min_m, float), np.asarray(self.workspace_max_m, float)
        if lo.shape != (3,) or hi.shape != (3,) or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise schema.SchemaError(f"safety.workspace: min/max must be 3 finite numbers, got {lo} / {hi}")
        if not (lo < hi).all():
            raise schema.SchemaError(f"safety.workspace: min {lo.tolist()} must be below max {hi.tolist()}")
        return self


@dataclass
class SafetyVerdict:
    """What the filter did this tick: the action to send and why it differs from the proposal."""

    action: np.ndarray
    stopped: bool  # zero motion commanded (watchdog, e-stop, NaN)
    reasons: list[str] = field(default_factory=list)  # empty when the proposal passed unchanged

    @property
    def ok(self) -> bool:
        return not self.reasons

    def describe(self) -> str:
        """One line for the `safety_status` topic and the log."""
        head = "STOP" if self.stopped else ("LIMITED" if self.reasons else "OK")
        return head + (": " + "; ".join(self.reasons) if self.reasons else "")


class Watchdog:
    """Tracks when each required input last arrived; an input never seen counts as stale."""

    def __init__(self, names: tuple[str, ...], timeout_s: float) -> None:
        self.timeout_s = float(timeout_s)
        self._last: dict[str, float | None] = {n: None for n in names}

    def feed(self, name: str, now_s: float) -> None:
        if name not in self._last:
            raise KeyError(f"watchdog: unknown input {name!r}; known: {sorted(self._last)}")
        self._last[name] = now_s

    def invalidate(self, name: str) -> None:
        """A malformed message replaces the last good one: treat the input as missing."""
        self._last[name] = None

    def stale(self, now_s: float) -> list[str]:
        out = []
        for name, t in self._last.items():
            if t is None:
                out.append(f"{name} never received")
            elif now_s - t > self.timeout_s:
                out.append(f"{name} stale ({now_s - t:.3f} s > {self.timeout_s:.3f} s)")
        return out


class SafetyFilter:
    """Limits, watchdog, latched e-stop and NaN guard for per-tick delta actions."""

    def __init__(self, config: SafetyConfig | None = None) -> None:
        self.config = (config or SafetyConfig()).validate()
        self.watchdog = Watchdog(self.config.required_inputs, self.config.input_timeout_s)
        self._estop_reason: str | None = None
        self._prev_vel = np.zeros(6)  # linear (3) + angular (3) velocity commanded last tick
        self._gripper = schema.GRIPPER_OPEN
        self._ee_z: float | None = None  # the end effector's height at the last filtered tick
        self._back_off_from_z: float | None = None  # its height when the instruction was judged done

    # -- e-stop ------------------------------------------------------------------------
    def estop(self, reason: str = "e-stop") -> None:
        """Latch: motion stays zero until `release_estop` is called explicitly."""
        if self._estop_reason is None:
            self._estop_reason = reason

    def release_estop(self) -> None:
        self._estop_reason = None
        self._prev_vel[:] = 0.0  # restart from rest, so the acceleration limit ramps up again

    @property
    def held_gripper(self) -> float:
        """The gripper command that zero motion keeps."""
        return self._gripper

    def finished_action(self, ticks_since_done: int) -> np.ndarray:
        """What to propose once the planner says the instruction is done: an open hand first backs off
        straight up at DONE_BACK_OFF_STEP_M a tick until it is DONE_BACK_OFF_M above where it was (as
        measured by `filter`'s end-effector positions; at most DONE_BACK_OFF_MAX_TICKS), then holds. A place
        or stack ends with the hand open next to the cube it let go of; held still there, the hand stays on
        the cube (the sim counts a release only once the hand is clear of it, as a person would). Measured,
        not counted: an arm tracks a few ticks of commands only part of the way (in the sim 6 ticks of 1 cm
        raised the hand about 3 cm, and PutBlueInBowl then failed with the cube in the bowl). Without a
        measurement yet, DONE_BACK_OFF_M / DONE_BACK_OFF_STEP_M ticks. A closed hand (a pick) holds at once."""
        if ticks_since_done == 0:
            self._back_off_from_z = self._ee_z
        if self._back_off_from_z is None or self._ee_z is None:
            rising = ticks_since_done < round(DONE_BACK_OFF_M / DONE_BACK_OFF_STEP_M)
        else:
            rising = self._ee_z - self._back_off_from_z < DONE_BACK_OFF_M and ticks_since_done < DONE_BACK_OFF_MAX_TICKS
        action = np.zeros(schema.ACTION_DIM, np.float32)
        action[6] = self._gripper
        if self._gripper > 0 and rising:
            action[2] = DONE_BACK_OFF_STEP_M
        return action

    @property
    def estopped(self) -> bool:
        return self._estop_reason is not None

    # -- the filter ----------------------------------------------------------------------
    def _stop(self, reasons: list[str]) -> SafetyVerdict:
        self._prev_vel[:] = 0.0
        action = np.zeros(schema.ACTION_DIM, np.float32)
        action[6] = self._gripper
        return SafetyVerdict(action, True, reasons)

    def filter(self, proposed: np.ndarray | None, ee_pos: np.ndarray | None, now_s: float) -> SafetyVerdict:
        """Make `proposed` (7,) safe given the measured end-effector position at time `now_s`.

        `proposed=None` means the upstream could not produce an action (bad input): stop.
        """
        cfg = self.config
        dt = 1.0 / cfg.control_rate_hz
        reasons: list[str] = []
        if self._estop_reason is not None:
            return self._stop([f"e-stop latched ({self._estop_reason})"])
        stale = self.watchdog.stale(now_s)
        if stale:
            return self._stop([f"watchdog: {s}" for s in stale])
        if proposed is None:
            return self._stop(["no action (upstream input was rejected)"])
        a = np.asarray(proposed, np.float64).reshape(-1)
        if a.shape != (schema.ACTION_DIM,):
            return self._stop([f"action has shape {a.shape}, expected ({schema.ACTION_DIM},)"])
        if not np.isfinite(a).all():
            return self._stop(["NaN guard: non-finite action"])
        if ee_pos is None or not np.isfinite(np.asarray(ee_pos, np.float64)).all():
            return self._stop(["NaN guard: end-effector position unknown or non-finite"])
        ee = np.asarray(ee_pos, np.float64).reshape(3)
        self._ee_z = float(ee[2])

        vel = a[:6] / dt
        # Speed: scale the whole linear (angular) vector so its direction is kept.
        for sl, vmax, label in ((slice(0, 3), cfg.max_linear_speed_mps, "linear speed"),
                                (slice(3, 6), cfg.max_angular_speed_radps, "angular speed")):
            speed = float(np.linalg.norm(vel[sl]))
            if speed > vmax:
                vel[sl] *= vmax / speed
                reasons.append(f"{label} {speed:.3f} clipped to {vmax:.3f}")
        # Acceleration: bound the change from last tick's command.
        for sl, amax, label in ((slice(0, 3), cfg.max_linear_accel_mps2, "linear accel"),
                                (slice(3, 6), cfg.max_angular_accel_radps2, "angular accel")):
            dv = vel[sl] - self._prev_vel[sl]
            acc = float(np.linalg.norm(dv)) / dt
            if acc > amax:
                vel[sl] = self._prev_vel[sl] + dv * (amax / acc)
                reasons.append(f"{label} {acc:.2f} clipped to {amax:.2f}")
        # Workspace: the commanded target must stay inside the box; outside it, only moves
        # back toward the box are allowed.
        lo, hi = np.asarray(cfg.workspace_min_m), np.asarray(cfg.workspace_max_m)
        target = ee + vel[:3] * dt
        clamped = np.clip(target, np.minimum(lo, ee), np.maximum(hi, ee))
        if np.any(clamped != target):  # exact: allclose would let ~1e-5 m per tick creep out
            vel[:3] = (clamped - ee) / dt
            reasons.append("workspace limit")
        gripper = float(np.clip(a[6], schema.GRIPPER_CLOSED, schema.GRIPPER_OPEN))
        if gripper != a[6]:
            reasons.append("gripper clipped")
        self._prev_vel = vel.copy()
        self._gripper = gripper
        out = np.concatenate([vel * dt, [gripper]]).astype(np.float32)
        return SafetyVerdict(out, False, reasons)
