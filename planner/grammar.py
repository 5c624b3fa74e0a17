"""The planner's view of the skill grammar: which subtasks exist and how they read.

A subtask is skill + object (+ target), with one canonical text. Planners only ever *output*
canonical texts from this catalogue, which is what makes every answer checkable: a text that
does not parse into a catalogue entry is rejected (LLM backend) or cannot be produced at all
(learned backend, which composes its output from these slots).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vla_stack import schema


@dataclass(frozen=True)
class Subtask:
    skill: str  # e.g. "open", "pick", "place", "press", "push"
    obj: str  # entity acted on, e.g. "drawer", "blue cube"
    target: str = ""  # second entity, e.g. "bowl" for place-in; "" when the skill takes none
    text: str = ""  # canonical text, e.g. "place the blue cube in the bowl"

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(e for e in (self.obj, self.target) if e)


def normalize(text: str) -> str:
    """Case, punctuation and whitespace do not change which subtask a text names."""
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


@dataclass
class SkillCatalog:
    """Every subtask the suite can execute, plus the entity names a scene can contain."""

    subtasks: list[Subtask]
    #: colour/shape words of every entity the suite knows (even when absent from a scene):
    #: lets the planner tell "an object not in this scene" from "a word it does not know".
    known_entities: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.subtasks:
            raise schema.SchemaError("skill catalogue: no subtasks")
        self._by_norm = {}
        for s in self.subtasks:
            key = normalize(s.text)
            if not key:
                raise schema.SchemaError(f"skill catalogue: subtask {s} has no text")
            self._by_norm[key] = s
        ents = {e for s in self.subtasks for e in s.entities}
        self.known_entities = sorted(set(self.known_entities) | ents)

    @property
    def skills(self) -> list[str]:
        return sorted({s.skill for s in self.subtasks})

    @property
    def entities(self) -> list[str]:
        return sorted({e for s in self.subtasks for e in s.entities})

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.subtasks]

    def parse(self, text: str) -> Subtask | None:
        """The catalogue subtask a text names, or None."""
        return self._by_norm.get(normalize(text))

    def get(self, text: str) -> Subtask:
        s = self.parse(text)
        if s is None:
            raise schema.SchemaError(f"subtask {text!r} is not in the skill catalogue")
        return s

    def restrict(self, scene_entities: list[str] | tuple[str, ...]) -> "SkillCatalog":
        """The subtasks executable in a scene holding exactly these entities."""
        present = set(scene_entities)
        unknown = present - set(self.known_entities)
        if unknown:
            raise schema.SchemaError(f"scene entities {sorted(unknown)} are not known to the skill catalogue")
        subs = [s for s in self.subtasks if set(s.entities) <= present]
        if not subs:
            raise schema.SchemaError(f"no subtask of the catalogue is executable with entities {sorted(present)}")
        return SkillCatalog(subs, known_entities=list(self.known_entities))

    def describe(self) -> str:
        """One line per subtask: the catalogue as shown to a language model."""
        return "\n".join(f"- {s.text}" for s in self.subtasks)


@dataclass(frozen=True)
class PlanExample:
    """One instruction with its ground-truth plan, from a split of the task suite."""

    instruction: str
    task: str
    plan: tuple[str, ...]  # canonical subtask texts, in order
    split: str = "train"
    scene: tuple[str, ...] = ()  # entities present (empty: every catalogue entity)
