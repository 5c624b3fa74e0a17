"""Closed-loop episodes of the agent in the MuJoCo suite (used by `vla demo` and the benchmark).

The simulator judges success; the agent is never told it. An episode ends when the sim says
the instruction is done, when the step limit is hit, or shortly after the agent stops for
good (its planner said DONE or failed) without the sim agreeing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vla_stack import schema

from .agent import Agent, StepInfo, camera_keys

os.environ.setdefault("MUJOCO_GL", "egl")

GRACE_TICKS = 20  # ticks the loop keeps going after the agent stopped for good (sim may settle)
LOCKSTEP_WAIT_S = 30.0  # lockstep: longest wait for a background job (a hung one ends the wait, not the run)


@dataclass
class EpisodeResult:
    success: bool
    steps: int
    subtasks_completed: int  # by the simulator's count
    n_subtasks: int
    agent_done: bool  # the agent's planner said DONE
    agent_failed: str = ""  # the reason, when the agent stopped for good without DONE
    max_step_ms: float = 0.0  # slowest Agent.step of the episode
    median_step_ms: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)  # ticks per agent status
    subtasks: list[dict] = field(default_factory=list)  # per sim subtask: SubtaskTimeline.summary()
    issued: list[tuple[int, str]] = field(default_factory=list)  # (tick, subtask) each time the agent's changed
    final: tuple[dict, dict] | None = field(default=None, repr=False)  # last (obs, info): chains go on from it


class SubtaskTimeline:
    """When the simulator completed each subtask and when the agent started acting on it.

    Tells a policy failure (the agent was on the right subtask and the sim never counted it
    done) from a planner failure (the agent never issued it, or issued it late): `lag_ticks`
    of subtask i > 0 is the agent's first tick on it minus the sim's first tick past i - 1.
    """

    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)
        self.done_tick: list[int | None] = [None] * len(texts)  # first tick the sim's index was past i
        self.agent_tick: list[int | None] = [None] * len(texts)  # first tick the agent acted on text i
        self.issued: list[tuple[int, str]] = []

    def record(self, tick: int, agent_subtask: str | None, sim_index: int) -> None:
        if agent_subtask is not None and (not self.issued or self.issued[-1][1] != agent_subtask):
            self.issued.append((tick, agent_subtask))
        for i, text in enumerate(self.texts):
            if self.agent_tick[i] is None and agent_subtask == text:
                self.agent_tick[i] = tick
            if self.done_tick[i] is None and sim_index > i:
                self.done_tick[i] = tick

    def summary(self) -> list[dict]:
        out = []
        for i, text in enumerate(self.texts):
            prev_done = 0 if i == 0 else self.done_tick[i - 1]
            lag = None if i == 0 or prev_done is None or self.agent_tick[i] is None else self.agent_tick[i] - prev_done
            out.append({"text": text, "reached": i == 0 or prev_done is not None, "done": self.done_tick[i] is not None,
                        "done_tick": self.done_tick[i], "agent_tick": self.agent_tick[i], "lag_ticks": lag})
        return out


def make_env(task: str, robot: str, n_points: int, image_size: int, workspace_yaw: float = 0.0,
             instruction: str | None = None, scene_images: bool = False):
    """The suite's env with what the agent reads (and the scene camera's images when asked)."""
    from vla_stack.sim.env import TabletopEnv

    keys = (schema.OBS_POINTS, schema.OBS_COLORS, schema.OBS_STATE)
    if scene_images:
        keys = (schema.OBS_RGB, schema.OBS_DEPTH, *keys)
    return TabletopEnv(task=task, robot=robot, n_points=n_points, image_size=image_size,
                       workspace_yaw=workspace_yaw, instruction=instruction, obs_keys=keys)


class ExtraCamera:
    """Adds another camera's RGB-D to the observation (the world model's camera, e.g. `front`)."""

    def __init__(self, env, camera: str, size: int) -> None:
        from vla_stack.sim.cameras import RendererPool

        self.env, self.camera, self.size = env, camera, size
        self.keys = camera_keys(camera)
        self.pool = RendererPool(env.scene.model)

    def __call__(self, obs: dict) -> dict:
        rgb, depth = self.pool.rgbd(self.env.scene.data, self.camera, self.size, self.size)
        return {**obs, self.keys[0]: rgb, self.keys[1]: depth}

    def close(self) -> None:
        self.pool.close()


def observation_hook(agent: Agent, env, image_size: int):
    """What to add to each env observation for the agent's world model (None: nothing)."""
    if agent.world_model is None or agent.world_model_keys[0] == schema.OBS_RGB:
        return None
    camera = agent.world_model_keys[0][: -len(schema.OBS_RGB) - 1]
    return ExtraCamera(env, camera, agent.world_model.config.image_size)


def run_episode(agent: Agent, env, instruction: str, *, seed: int, max_steps: int,
                on_tick: Callable[[dict, StepInfo, dict], None] | None = None,
                start: tuple[dict, dict] | None = None, realtime: bool = True, lockstep: bool = False) -> EpisodeResult:
    """Reset the env (or continue from `start` = (obs, info), for chains), then alternate
    Agent.step and env.step.

    `realtime`: each tick lasts at least as long as a real control period would for the
    background parts: the loop waits (at most until 1 / control rate after the tick began) for
    a planner or world-model job in flight. Without it the sim runs several times faster
    than real time and the planner answers that many ticks late. Ticks with nothing in flight
    run at full speed.

    `lockstep` (instead): every tick waits until the planner and world-model jobs in flight have finished, as
    if they always took less than a control period (a GPU host: the planner's check takes ~17 ms on one CPU
    core). The episode then no longer depends on how loaded the machine is: one layout and one policy give
    one outcome, for comparisons with less spread."""
    obs, info = env.reset(seed=seed) if start is None else start
    hook = observation_hook(agent, env, env.image_size)
    agent.reset(instruction, obs)  # plans the first subtask before the first tick (AgentConfig.first_plan_timeout_s)
    timeline = SubtaskTimeline([st.text for st in env.task.subtasks])
    statuses: dict[str, int] = {}
    stopped_for_good = 0
    step_ms: list[float] = []
    steps = 0
    try:
        period_s = 1.0 / agent.config.control_rate_hz
        for steps in range(1, max_steps + 1):
            full = hook(obs) if hook else obs  # the simulator's camera work: done before the tick begins, as a
            tick_start = time.perf_counter()   # robot's image arrives ready (the first render opens a GL context)
            action, ainfo = agent.step(full, now_s=steps / agent.config.control_rate_hz)
            step_ms.append(ainfo.latency_ms)
            statuses[ainfo.status] = statuses.get(ainfo.status, 0) + 1
            obs, _, terminated, _, info = env.step(action)
            if lockstep:
                agent.wait_background(LOCKSTEP_WAIT_S)
            elif realtime:
                agent.wait_background(period_s - (time.perf_counter() - tick_start))
            timeline.record(steps, ainfo.subtask, int(info[schema.INFO_SUBTASK_INDEX]))
            if on_tick is not None:
                on_tick(full, ainfo, info)
            if terminated:
                break
            stopped_for_good = stopped_for_good + 1 if ainfo.status in ("done", "failed") else 0
            if stopped_for_good > GRACE_TICKS:
                break
    finally:
        if hook:
            hook.close()
    return EpisodeResult(success=bool(info[schema.INFO_SUCCESS]), steps=steps,
                         subtasks_completed=int(info[schema.INFO_SUBTASK_INDEX]) if not info[schema.INFO_SUCCESS]
                         else int(info["n_subtasks"]), n_subtasks=int(info["n_subtasks"]),
                         agent_done=ainfo.subtask == schema.DONE_TOKEN,
                         agent_failed=ainfo.reason if ainfo.status == "failed" else "",
                         max_step_ms=max(step_ms, default=0.0), median_step_ms=float(np.median(step_ms)) if step_ms else 0.0,
                         statuses=statuses, subtasks=timeline.summary(), issued=timeline.issued, final=(obs, info))


def run_chain(agent: Agent, env, chain: list[dict], *, seed: int, steps_per_task: Callable[[int], int],
              realtime: bool = True, lockstep: bool = False) -> int:
    """CALVIN-style: instructions one after another in one scene; returns how many in a row succeeded."""
    obs, _ = env.reset(seed=seed)
    completed = 0
    for item in chain:
        info = env.set_task(item["task"], item["instruction"])
        if info[schema.INFO_SUCCESS]:  # already true at the switch: nothing to do, counts as done
            completed += 1
            continue
        result = run_episode(agent, env, item["instruction"], seed=seed, start=(obs, info),
                             max_steps=steps_per_task(len(env.task.subtasks)), realtime=realtime, lockstep=lockstep)
        if not result.success:
            break
        obs = result.final[0]
        completed += 1
    return completed
