"""MuJoCo task suite for compositional skill transfer: arms, scene, skills, tasks, envs.

Importing this package registers one gymnasium id per task, `vla_stack/<Task>-v0`.
"""

import os

# Headless rendering by default: must be set before mujoco is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")

from vla_stack.sim.registration import register_all  # noqa: E402
from vla_stack.sim.skills import SKILLS, Subtask, grammar  # noqa: E402
from vla_stack.sim.tasks import (Task, describe_suite, get_task, load_splits, load_tasks,  # noqa: E402
                                 task_names)

register_all()

__all__ = ["SKILLS", "Subtask", "Task", "describe_suite", "get_task", "grammar", "load_splits", "load_tasks",
           "task_names", "env_id", "make"]


def env_id(task: str) -> str:
    get_task(task)  # unknown names fail with the list of valid ones
    return f"vla_stack/{task}-v0"


def make(task: str, **kwargs):
    """gymnasium.make for a task name (validated first)."""
    import gymnasium as gym

    return gym.make(env_id(task), **kwargs)
