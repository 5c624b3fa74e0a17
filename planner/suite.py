"""The task suite (vla_stack.sim) as the planner sees it: catalogue, plans, splits, facts.

Only the grammar and data files are read here (no MuJoCo), so planning itself never needs
the simulator; rollouts for training and evaluation live in `rollouts.py`.
"""

from __future__ import annotations

from vla_stack import schema

from .grammar import PlanExample, SkillCatalog, Subtask
from .grounding import Fact

SPLITS = ("train", "heldout_compositions", "heldout_paraphrases")


def _sim():
    from vla_stack.sim import skills, tasks

    return skills, tasks


def display(name: str) -> str:
    skills, _ = _sim()
    return skills.OBJECT_WORDS.get(name, name.replace("_", " "))


def catalog() -> SkillCatalog:
    """Every subtask of the grammar: skill x object x target, with its canonical text."""
    skills, _ = _sim()
    subs = []
    for sk in skills.SKILLS.values():
        for o in sk.objects:
            for t in (sk.targets or (None,)):
                if t == o:
                    continue
                st = skills.Subtask(sk.name, o, t)
                subs.append(Subtask(sk.name, display(o), display(t) if t else "", st.text))
    return SkillCatalog(subs)


def sim_subtask(text: str):
    """The simulator's Subtask for a canonical text."""
    skills, _ = _sim()
    for sk in skills.SKILLS.values():
        for o in sk.objects:
            for t in (sk.targets or (None,)):
                if t != o and skills.Subtask(sk.name, o, t).text == text:
                    return skills.Subtask(sk.name, o, t)
    raise schema.SchemaError(f"subtask {text!r} is not in the simulator's skill grammar")


def examples(split: str) -> list[PlanExample]:
    _, tasks = _sim()
    if split not in SPLITS:
        raise schema.SchemaError(f"unknown split {split!r}; valid: {SPLITS}")
    out = []
    for item in tasks.load_splits()[split]:
        task = tasks.get_task(item["task"])
        out.append(PlanExample(item["instruction"], task.name, tuple(task.subtask_texts), split))
    return out


def fact_of(key: str, value: str) -> Fact:
    """A (key, value) fact of sim/skills.py as a relation over display names."""
    if key == "holding":
        # which cube is in the hand is hidden by the hand itself from the scene camera: the
        # planner judges "a cube is held" and takes its identity from the plan
        return Fact("hand_empty") if value == "nothing" else Fact("held")
    if key == "drawer":
        return Fact(value, "drawer")  # open / closed
    if key == "button":
        return Fact("pressed", "button")
    if value == "lifted":
        return Fact("lifted")  # the held cube is lifted (identity: as for "held")
    for prefix, rel in (("in ", "in"), ("on ", "on"), ("pushed toward ", "pushed_toward")):
        if value.startswith(prefix):
            return Fact(rel, display(key), display(value[len(prefix):]))
    raise schema.SchemaError(f"fact {key} = {value}: not understood by the planner")


def expected_facts(plan: list[str]) -> list[list[Fact]]:
    """Facts that must hold after each subtask of a plan (effects merged in order)."""
    skills, _ = _sim()
    merged = skills.expected_facts([sim_subtask(t) for t in plan])
    return [[fact_of(k, v) for k, v in m.items()] for m in merged]


def kept_facts(plan: list[str], i: int) -> list[Fact]:
    """Facts established by steps 0..i that step i+1 does not itself change: while step i+1
    runs they must keep holding, else earlier work was undone (the rule of sim/progress.py)."""
    skills, _ = _sim()
    merged = skills.expected_facts([sim_subtask(t) for t in plan])[i]
    changed = set(sim_subtask(plan[i + 1]).effects())
    return [fact_of(k, v) for k, v in merged.items() if k not in changed]


def preconditions(subtask_text: str) -> list[Fact]:
    """Facts that must hold while a subtask runs (placing needs the cube in the hand)."""
    return [fact_of(k, v) for k, v in sim_subtask(subtask_text).preconditions().items()]


def effects(subtask_text: str) -> list[Fact]:
    return [fact_of(k, v) for k, v in sim_subtask(subtask_text).effects().items()]


def all_facts() -> list[Fact]:
    """Every fact any subtask of the grammar can make true."""
    cat = catalog()
    seen = {}
    for s in cat.subtasks:
        for f in effects(s.text):
            seen[f] = None
    return list(seen)


GROUNDED_ENTITIES = ("red cube", "green cube", "blue cube", "bowl", "drawer", "button")
