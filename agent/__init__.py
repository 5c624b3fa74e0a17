"""vla_stack.agent: planner + world model + action expert + safety filter as one object."""

from .agent import Agent, StepInfo
from .config import AgentConfig

__all__ = ["Agent", "AgentConfig", "StepInfo"]
