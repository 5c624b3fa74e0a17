"""Closed-loop episodes of the agent in the MuJoCo suite (used by `vla demo` and the benchmark).

The simulator judges success; the agent is never told it. An episode ends when the sim says
the instruction is done, when the step limit is hit, or shortly after the agent stops for
good (its planner said DONE or failed) without the sim agreeing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vla_stack import schema

from .agent import Agent, StepInfo, camera_keys

os.environ.setdefault("MUJOCO_GL", "egl")

GRACE_TICKS = 20  # ticks the loop keeps going after the agent stopped for good (sim may settle)


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
    final: tuple[dict, dict] | None = field(default=None, repr=False)  # last (obs, info): chains go on from it


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
                start: tuple[dict, dict] | None = None) -> EpisodeResult:
    """Reset the env (or continue from `start` = (obs, info), for chains), then alternate
    Agent.step and env.step."""
    obs, info = env.reset(seed=seed) if start is None else start
    hook = observation_hook(agent, env, env.image_size)
    agent.reset(instruction)
    statuses: dict[str, int] = {}
    stopped_for_good = 0
    step_ms: list[float] = []
    steps = 0
    try:
        for steps in range(1, max_steps + 1):
            full = hook(obs) if hook else obs
            action, ainfo = agent.step(full, now_s=steps / agent.config.control_rate_hz)
            step_ms.append(ainfo.latency_ms)
            statuses[ainfo.status] = statuses.get(ainfo.status, 0) + 1
            obs, _, terminated, _, info = env.step(action)
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
                         statuses=statuses, final=(obs, info))


def run_chain(agent: Agent, env, chain: list[dict], *, seed: int, steps_per_task: Callable[[int], int]) -> int:
    """CALVIN-style: instructions one after another in one scene; returns how many in a row succeeded."""
    obs, _ = env.reset(seed=seed)
    completed = 0
    for item in chain:
        info = env.set_task(item["task"], item["instruction"])
        if info[schema.INFO_SUCCESS]:  # already true at the switch: nothing to do, counts as done
            completed += 1
            continue
        result = run_episode(agent, env, item["instruction"], seed=seed, start=(obs, info),
                             max_steps=steps_per_task(len(env.task.subtasks)))
        if not result.success:
            break
        obs = result.final[0]
        completed += 1
    return completed
