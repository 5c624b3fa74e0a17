"""Gymnasium registration: `vla_stack/<Task>-v0` for every task in tasks.yaml."""

from __future__ import annotations

import gymnasium as gym

from vla_stack.sim.tasks import load_tasks

STEPS_PER_SUBTASK = 150
EXTRA_STEPS = 50


def max_episode_steps(n_subtasks: int) -> int:
    return STEPS_PER_SUBTASK * n_subtasks + EXTRA_STEPS


def register_all() -> None:
    for name, task in load_tasks().items():
        env_id = f"vla_stack/{name}-v0"
        if env_id in gym.registry:
            continue
        gym.register(id=env_id, entry_point="vla_stack.sim.env:TabletopEnv", kwargs={"task": name},
                     max_episode_steps=max_episode_steps(len(task.subtasks)))
