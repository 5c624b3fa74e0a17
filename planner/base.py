"""The planner interface every backend implements (docs/interfaces.md).

    planner.reset(instruction)                          # may refuse: InstructionRefused
    planner.next_subtask(observation, history) -> text | schema.DONE_TOKEN
    planner.subtask_done(observation, subtask) -> bool  # the progress/done judgement

`next_subtask` is called at the start and whenever `subtask_done` judges the current
subtask complete; `history` is the list of subtasks completed so far, in order.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

from vla_stack import schema

from .grammar import SkillCatalog
from .refusal import check_instruction


class PlannerFailure(RuntimeError):
    """The planner cannot go on safely (e.g. an LLM kept answering nonsense): stop the robot."""


def check_observation(observation) -> Mapping:
    """The observation fields a planner reads, validated at the API boundary."""
    if not isinstance(observation, Mapping):
        raise schema.SchemaError(f"observation: expected a dict of schema.OBS_* arrays, got {type(observation).__name__}")
    for key in (schema.OBS_POINTS, schema.OBS_COLORS, schema.OBS_STATE):
        if key not in observation:
            raise schema.SchemaError(f"observation: missing key {key!r} (has {sorted(observation)})")
    schema.check_points(observation[schema.OBS_POINTS], observation[schema.OBS_COLORS])
    schema.check_array(schema.OBS_STATE, observation[schema.OBS_STATE], (schema.STATE_DIM,))
    return observation


def check_history(history, catalog: SkillCatalog) -> list[str]:
    if history is None:
        return []
    if isinstance(history, str) or not isinstance(history, Sequence):
        raise schema.SchemaError(f"history: expected a list of completed subtask texts, got {type(history).__name__}")
    out = []
    for i, h in enumerate(history):
        if not isinstance(h, str) or catalog.parse(h) is None:
            raise schema.SchemaError(f"history[{i}]: {h!r} is not a subtask of the skill catalogue")
        out.append(catalog.parse(h).text)
    return out


class Planner(abc.ABC):
    """Common state: the catalogue, the scene's entities and the current instruction."""

    def __init__(self, catalog: SkillCatalog) -> None:
        self.catalog = catalog
        self.scene_entities: tuple[str, ...] = tuple(catalog.entities)
        self.instruction: str | None = None

    def reset(self, instruction: str, scene: Sequence[str] | None = None) -> None:
        """Start a new instruction; `scene` lists the entities present (default: all known)."""
        scene_entities = tuple(scene) if scene is not None else tuple(self.catalog.entities)
        self.scene_catalog = self.catalog.restrict(scene_entities)
        self.instruction = check_instruction(instruction, scene_entities, self.catalog.known_entities)
        self.scene_entities = scene_entities
        self._reset()

    def next_subtask(self, observation: Mapping, history: Sequence[str] = ()) -> str:
        if self.instruction is None:
            raise RuntimeError("call reset(instruction) before next_subtask")
        observation = check_observation(observation)
        return self._next(observation, check_history(history, self.catalog))

    def subtask_done(self, observation: Mapping, subtask: str) -> bool:
        observation = check_observation(observation)
        return self._done(observation, self.catalog.get(subtask).text)

    def _reset(self) -> None:  # backend hook
        pass

    @abc.abstractmethod
    def _next(self, observation: Mapping, history: list[str]) -> str: ...

    @abc.abstractmethod
    def _done(self, observation: Mapping, subtask: str) -> bool: ...
