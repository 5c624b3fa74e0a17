"""A planner that reads the simulator's true current subtask: isolates the action expert.

Used where a measurement is about the action expert alone (the encoder's robustness to a
rotated workspace) and in tests; never by the demo or the headline numbers.
"""

from __future__ import annotations

from vla_stack import schema


class OraclePlanner:
    def __init__(self, env=None) -> None:
        self.env = env  # a TabletopEnv (set before each episode)

    def reset(self, instruction: str) -> None:
        if self.env is None:
            raise RuntimeError("OraclePlanner needs the env it reads (set .env)")

    def next_subtask(self, observation, history) -> str:
        return self.env.current_subtask

    def subtask_done(self, observation, subtask: str) -> bool:
        return self.env.current_subtask != subtask
