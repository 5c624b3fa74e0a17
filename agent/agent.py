"""`Agent`: one object that turns (instruction, observation) into a safe action every tick.

    agent = Agent(planner, world_model, policy, AgentConfig())
    agent.reset("put the blue cube in the bowl", obs)   # refusals raise here, before any motion
    action, info = agent.step(obs)                       # every control tick; never waits

The planner's done judgement and the world model's subgoal run on their own threads; `step`
uses the latest subtask and subgoal they have produced and never joins them. Whenever the
agent cannot act with confidence (no subtask yet, planner failure, rejected observation,
policy error, non-finite action) it proposes nothing and the safety filter commands zero
motion, keeping the gripper as it is. Every action, including the policy's, goes through
the same model-independent `SafetyFilter` the ROS nodes use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from vla_stack import schema
from vla_stack.ros2_nodes.safety import SafetyFilter

from .config import AgentConfig
from .handoff import Retract
from .worker import BackgroundWorker

WAITING, ACTING, DONE, STOPPED, FAILED = "waiting", "acting", "done", "stopped", "failed"


@dataclass
class StepInfo:
    """What the agent did this tick and why (for captions, logs and the ROS status topic)."""

    tick: int
    instruction: str
    subtask: str | None  # None before the planner's first answer; schema.DONE_TOKEN at the end
    subtasks_done: int  # subtasks the planner has judged complete since reset
    status: str  # waiting | acting | done | stopped | failed
    reason: str = ""  # why the agent did not act, or what went wrong in the background
    safety: str = "OK"  # the safety filter's verdict, as one line
    subgoal_rgb: np.ndarray | None = field(default=None, repr=False)  # the world model's image for `subtask`
    latency_ms: float = 0.0  # time spent inside `step`
    planner_busy: bool = False
    world_model_busy: bool = False


def camera_keys(camera: str) -> tuple[str, str]:
    """Observation keys of a camera's RGB and depth: the scene camera is `rgb`/`depth`."""
    if camera == "scene":
        return schema.OBS_RGB, schema.OBS_DEPTH
    return f"{camera}_{schema.OBS_RGB}", f"{camera}_{schema.OBS_DEPTH}"


def checked_observation(obs) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(points, colours, state) of an observation, or `SchemaError` naming what is wrong with it."""
    if not isinstance(obs, dict):
        raise schema.SchemaError(f"observation: expected a dict, got {type(obs).__name__}")
    for key in (schema.OBS_POINTS, schema.OBS_STATE):
        if key not in obs:
            raise schema.SchemaError(f"observation: missing {key!r}")
    pts, cols = schema.check_points(obs[schema.OBS_POINTS], obs.get(schema.OBS_COLORS))
    return pts, cols, schema.check_array(schema.OBS_STATE, obs[schema.OBS_STATE], (schema.STATE_DIM,))


class Agent:
    def __init__(self, planner, world_model, policy, config: AgentConfig | None = None, *,
                 world_model_camera: str = "scene") -> None:
        self.config = (config or AgentConfig()).validate()
        if self.config.mode != "flat" and planner is None:
            raise ValueError(f"agent mode {self.config.mode!r} needs a planner")
        if self.config.mode == "full" and world_model is None:
            raise ValueError("agent mode 'full' needs a world model (or use mode no_world_model)")
        self.planner, self.world_model, self.policy = planner, world_model, policy
        self.world_model_keys = camera_keys(world_model_camera)
        self.safety = SafetyFilter(self.config.safety)
        self._planner_worker = BackgroundWorker("planner")
        self._wm_worker = BackgroundWorker("world-model")
        self.instruction: str | None = None
        self._generation = 0
        self._clear()

    # ---------------------------------------------------------------- episode
    def _clear(self) -> None:
        self.tick = 0
        self.subtask: str | None = None
        self.history: list[str] = []
        self.subgoal: tuple[str, np.ndarray, np.ndarray] | None = None  # (subtask, rgb, latent)
        self._failure: str | None = None
        self._note = ""  # last background problem worth showing (world model)
        self._last_planner_tick = -10**9
        self._wm_submitted: str | None = None
        self._ticks_done = 0  # ticks proposed since the planner said DONE (an open hand backs off first)
        self._start_pose: tuple[np.ndarray, np.ndarray] | None = None  # end effector (pos, quat) at the first observation
        self._retract: Retract | None = None  # the hand-off retract in progress (AgentConfig.handoff)

    def reset(self, instruction: str, obs: dict | None = None) -> None:
        """Start an instruction. The planner's refusal (`SchemaError`) is raised here.

        With `obs` (the observation the first tick will see) the planner's first subtask is planned here,
        before any motion (up to `AgentConfig.first_plan_timeout_s`), so the action expert acts from the first
        tick, as in its demonstrations; without it the first ticks wait for the planner's thread."""
        if not isinstance(instruction, str) or not instruction.strip():
            raise schema.SchemaError(f"instruction: must be a non-empty string, got {instruction!r}")
        self._generation += 1
        if self.planner is not None and self.config.mode != "flat":
            # on the planner's own thread, after any job in flight: no two threads touch it at once
            self._planner_worker.call(lambda: self.planner.reset(instruction))
        self.policy.reset()
        self.instruction = instruction
        self._clear()
        if self.config.mode == "flat":
            self.subtask = instruction  # the flat policy is conditioned on the instruction itself
        elif obs is not None and self.config.first_plan_timeout_s > 0:
            self._plan_first(obs)

    def _plan_first(self, obs: dict) -> None:
        """Why: from the planner's thread the first subtask comes on tick 2, 3 or later, as fast as the machine
        answers, and the episode depends on such differences (a zero-motion tick lets the simulated arm sag
        ~1.3 mm; one waiting tick more changed 9 of 56 held-out outcomes, docs/agent.md "The first subtask").
        Planned here, every machine starts as the demonstrations do, acting on the first tick."""
        try:  # a bad observation is left for the first `step` to reject and say why
            checked_observation(obs)
            snap = self._planner_snapshot(obs)
        except (KeyError, schema.SchemaError):
            return
        if self._planner_worker.submit(lambda: self._planner_job(snap, None, []), tag=self._generation):
            self._planner_worker.wait(self.config.first_plan_timeout_s)
            self._collect()  # not finished in time: a later tick collects it

    def estop(self, reason: str = "e-stop") -> None:
        self.safety.estop(reason)

    def release_estop(self) -> None:
        self.safety.release_estop()

    def wait_background(self, timeout_s: float) -> None:
        """Give in-flight planner / world-model jobs up to `timeout_s` to finish (never called by `step`).

        For a simulator stepping faster than real time: a robot's control loop idles until its
        next tick while the background threads work; a simulated one without this wait lets
        the planner fall behind by as many ticks as the sim is faster than real time."""
        end = time.perf_counter() + max(0.0, timeout_s)
        for worker in (self._planner_worker, self._wm_worker):
            worker.wait(max(0.0, end - time.perf_counter()))

    def close(self) -> None:
        self._planner_worker.close()
        self._wm_worker.close()

    # ---------------------------------------------------------------- background jobs
    def _planner_job(self, obs: dict, current: str | None, history: list[str]):
        if current == schema.DONE_TOKEN:   # re-checked after DONE: the scene may show work undone again
            return self.planner.next_subtask(obs, history), history
        if current is not None:
            if not self.planner.subtask_done(obs, current):
                return current, history
            history = [*history, current]
        return self.planner.next_subtask(obs, history), history

    def _collect(self) -> None:
        """Take in whatever the background workers finished since the last tick."""
        finished, tag, result, err = self._planner_worker.poll()
        if finished and tag == self._generation:
            if err is not None:  # latched until the next reset: nothing made up is executed
                self._failure = f"planner failed: {type(err).__name__}: {err}"
            else:
                subtask, history = result
                if subtask != self.subtask:
                    if self.subtask == schema.DONE_TOKEN:
                        self._ticks_done = 0
                    self._retract = self._handoff_retract(self.subtask, subtask)
                    self.subtask, self.history = subtask, history
        finished, tag, result, err = self._wm_worker.poll()
        if finished and tag[0] == self._generation:
            if err is not None:
                self._note = f"world model failed: {type(err).__name__}: {err}"
            else:
                rgb, latent = result
                if np.all(np.isfinite(latent)):
                    self.subgoal = (tag[1], rgb, latent)
                    self._note = ""
                else:
                    self._note = "world model returned a non-finite latent (ignored)"

    def _handoff_retract(self, finished: str | None, following: str) -> Retract | None:
        """A retract to the start pose when a subtask ends with the hand open (AgentConfig.handoff)."""
        if (self.config.handoff != "start_pose" or finished in (None, schema.DONE_TOKEN)
                or following == schema.DONE_TOKEN or self._start_pose is None or self.safety.held_gripper <= 0
                or not np.linalg.norm(self._start_pose[1]) > 1e-6):
            return None
        return Retract(*self._start_pose, self.safety.held_gripper)

    @staticmethod
    def _planner_snapshot(obs: dict) -> dict:
        return {k: np.array(obs[k]) for k in (schema.OBS_POINTS, schema.OBS_COLORS, schema.OBS_STATE)}

    def _schedule(self, obs: dict) -> None:
        mode = self.config.mode
        if mode == "flat":
            return
        due = self.tick - self._last_planner_tick >= self.config.planner_every_ticks or self.subtask is None
        recheck = self.subtask != schema.DONE_TOKEN or self.config.recheck_after_done
        if self._failure is None and recheck and due and not self._planner_worker.busy:
            snap = self._planner_snapshot(obs)
            current, history = self.subtask, list(self.history)
            if self._planner_worker.submit(lambda: self._planner_job(snap, current, history), tag=self._generation):
                self._last_planner_tick = self.tick
        wanted = self.subtask
        if (mode == "full" and wanted not in (None, schema.DONE_TOKEN) and wanted != self._wm_submitted
                and not self._wm_worker.busy):
            rgb_key, depth_key = self.world_model_keys
            if rgb_key not in obs:
                self._note = f"world model: observation has no {rgb_key!r} image (no subgoal)"
                return
            rgb, depth = np.array(obs[rgb_key]), (np.array(obs[depth_key]) if depth_key in obs else None)
            if self._wm_worker.submit(lambda: self.world_model.predict_subgoal(rgb, depth, wanted),
                                      tag=(self._generation, wanted)):
                self._wm_submitted = wanted

    # ---------------------------------------------------------------- control tick
    def step(self, obs: dict, now_s: float | None = None) -> tuple[np.ndarray, StepInfo]:
        """One control tick -> (safe schema action (7,), StepInfo). Never blocks on a slow part."""
        if self.instruction is None:
            raise RuntimeError("Agent.step before Agent.reset(instruction)")
        t0 = time.perf_counter()
        self.tick += 1
        now = self.tick / self.config.control_rate_hz if now_s is None else float(now_s)
        self._collect()
        proposed, status, reason, ee_pos = None, STOPPED, "", None
        try:
            pts, cols, state = checked_observation(obs)
        except schema.SchemaError as e:
            for name in self.safety.config.required_inputs:
                self.safety.watchdog.invalidate(name)
            reason = f"observation rejected: {e}"
        else:
            for name in self.safety.config.required_inputs:
                self.safety.watchdog.feed(name, now)
            ee_pos = state[schema.STATE_EE_POS]
            if self._start_pose is None:
                self._start_pose = (np.array(ee_pos, np.float64), np.array(state[schema.STATE_EE_QUAT], np.float64))
            self._schedule(obs)
            proposed, status, reason = self._propose(pts, cols, state)
        verdict = self.safety.filter(proposed, ee_pos, now)
        if verdict.stopped and status == ACTING:
            status = STOPPED
        if not reason and self._note:
            reason = self._note
        sub = self.subgoal if self.subgoal is not None and self.subgoal[0] == self.subtask else None
        info = StepInfo(tick=self.tick, instruction=self.instruction, subtask=self.subtask,
                        subtasks_done=len(self.history), status=status, reason=reason, safety=verdict.describe(),
                        subgoal_rgb=None if sub is None else sub[1], latency_ms=1e3 * (time.perf_counter() - t0),
                        planner_busy=self._planner_worker.busy, world_model_busy=self._wm_worker.busy)
        return verdict.action, info

    def _propose(self, pts, cols, state) -> tuple[np.ndarray | None, str, str]:
        if self._failure is not None:
            return None, FAILED, self._failure
        if self.subtask is None:
            return None, WAITING, "waiting for the planner's first subtask"
        if self.subtask == schema.DONE_TOKEN:
            self._ticks_done += 1
            return (self.safety.finished_action(self._ticks_done - 1), DONE,
                    "the planner judged the instruction complete")
        if self._retract is not None:
            action = self._retract.action(state[schema.STATE_EE_POS], state[schema.STATE_EE_QUAT])
            if action is not None:
                return action, ACTING, "hand-off: back to the pose the instruction began from"
            self._retract = None
            self.policy.reset()  # the next skill starts as its demonstrations do: fresh state, no old chunks
        latent = None
        if self.config.mode == "full" and self.subgoal is not None and self.subgoal[0] == self.subtask:
            latent = self.subgoal[2]
        try:
            action = np.asarray(self.policy.step(pts, cols, state, self.subtask, latent), np.float32)
        except Exception as e:  # noqa: BLE001  (any policy error: stop, say why)
            return None, STOPPED, f"action expert failed: {type(e).__name__}: {e}"
        if action.shape != (schema.ACTION_DIM,) or not np.all(np.isfinite(action)):
            return None, STOPPED, f"action expert returned a bad action (shape {action.shape}, finite: {np.isfinite(action).all()})"
        return action, ACTING, ""
