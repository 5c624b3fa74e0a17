"""The skill grammar: subtask = skill + object + target, with a canonical text and effects.

Each skill declares the *facts* its success makes true (key -> value, e.g. pick(red cube)
makes `holding = red_cube` and `red_cube = lifted`) and the facts it needs beforehand.
A task is an ordered list of subtasks; the facts expected after subtask i are the effects
of subtasks 0..i merged in order (later ones override earlier ones on the same key). Every
fact is a predicate on simulator state (`facts.py`), so progress through a task is always
read from the true state: if someone closes the drawer mid-episode, the current subtask
goes back to "open the drawer".
"""

from __future__ import annotations

from dataclasses import dataclass

from vla_stack.schema import SchemaError

#: object name in data files / code -> words used in language
OBJECT_WORDS = {
    "red_cube": "red cube",
    "green_cube": "green cube",
    "blue_cube": "blue cube",
    "bowl": "bowl",
    "drawer": "drawer",
    "button": "button",
}
CUBE_NAMES = ("red_cube", "green_cube", "blue_cube")


@dataclass(frozen=True)
class Skill:
    name: str
    template: str  # canonical text; {object} and {target} are replaced by OBJECT_WORDS
    objects: tuple[str, ...]  # what may fill {object}
    targets: tuple[str, ...] = ()  # what may fill {target}; empty = the skill takes none
    description: str = ""


SKILLS: dict[str, Skill] = {s.name: s for s in (
    Skill("pick", "pick up the {object}", CUBE_NAMES, description="grasp the object and lift it off its support"),
    Skill("place", "put the {object} in the {target}", CUBE_NAMES, ("bowl", "drawer"),
          description="put the held object into a container and let go"),
    Skill("stack", "stack the {object} on the {target}", CUBE_NAMES, CUBE_NAMES,
          description="put the held object on top of another cube and let go"),
    Skill("push", "push the {object} toward the {target}", CUBE_NAMES, ("bowl", "button"),
          description="slide the object along the table towards a landmark without lifting it"),
    Skill("open", "open the {object}", ("drawer",), description="pull the drawer out by its handle"),
    Skill("close", "close the {object}", ("drawer",), description="push the drawer in by its handle"),
    Skill("press", "press the {object}", ("button",), description="press the button down until it lights up"),
)}


@dataclass(frozen=True)
class Subtask:
    skill: str
    object: str
    target: str | None = None

    def __post_init__(self):
        if self.skill not in SKILLS:
            raise SchemaError(f"subtask: unknown skill {self.skill!r}; valid: {sorted(SKILLS)}")
        sk = SKILLS[self.skill]
        if self.object not in sk.objects:
            raise SchemaError(f"subtask {self.skill}: object {self.object!r} not one of {sk.objects}")
        if sk.targets and self.target not in sk.targets:
            raise SchemaError(f"subtask {self.skill}: target {self.target!r} not one of {sk.targets}")
        if not sk.targets and self.target is not None:
            raise SchemaError(f"subtask {self.skill}: takes no target, got {self.target!r}")
        if self.target is not None and self.target == self.object:
            raise SchemaError(f"subtask {self.skill}: object and target are both {self.object!r}")

    @classmethod
    def parse(cls, spec: str) -> "Subtask":
        """'place red_cube bowl' -> Subtask('place', 'red_cube', 'bowl')."""
        words = spec.split()
        if len(words) not in (2, 3):
            raise SchemaError(f"subtask spec {spec!r}: expected 'skill object [target]'")
        return cls(words[0], words[1], words[2] if len(words) == 3 else None)

    @property
    def text(self) -> str:
        t = SKILLS[self.skill].template
        return t.format(object=OBJECT_WORDS[self.object], target=OBJECT_WORDS.get(self.target or "", ""))

    @property
    def spec(self) -> str:
        return " ".join(w for w in (self.skill, self.object, self.target) if w)

    def effects(self) -> dict[str, str]:
        """Facts this subtask's success makes true."""
        s, o, t = self.skill, self.object, self.target
        if s == "pick":
            return {"holding": o, o: "lifted"}
        if s == "place":
            return {"holding": "nothing", o: f"in {t}"}
        if s == "stack":
            return {"holding": "nothing", o: f"on {t}"}
        if s == "push":
            return {o: f"pushed toward {t}"}
        if s == "open":
            return {"drawer": "open"}
        if s == "close":
            return {"drawer": "closed"}
        if s == "press":
            return {"button": "pressed"}
        raise AssertionError(s)

    def released_object(self) -> str | None:
        """The object a place / stack lets go of: the subtask is finished only once the hand is clear of it,
        so a demonstration shows the release and the back-off under this subtask's text (else the subtask
        ends the tick the fingers open and the release is one frame of the data)."""
        return self.object if self.skill in ("place", "stack") else None

    def preconditions(self) -> dict[str, str]:
        """Facts that must hold while this subtask runs (else an earlier one is redone)."""
        if self.skill in ("place", "stack"):
            return {"holding": self.object}
        return {}


def expected_facts(subtasks: list[Subtask]) -> list[dict[str, str]]:
    """Facts expected after each subtask: effects merged in order."""
    out, facts = [], {}
    for st in subtasks:
        facts = {**facts, **st.effects()}
        out.append(dict(facts))
    return out


def grammar() -> dict:
    """Machine-readable description of the skills (for the planner and docs)."""
    return {
        "objects": dict(OBJECT_WORDS),
        "skills": {n: {"template": s.template, "objects": list(s.objects), "targets": list(s.targets),
                       "description": s.description} for n, s in SKILLS.items()},
    }
