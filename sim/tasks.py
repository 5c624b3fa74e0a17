"""Tasks and splits, read from the data files `tasks.yaml` and `splits.yaml`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from vla_stack.schema import SchemaError
from vla_stack.sim.skills import Subtask, expected_facts, grammar

HERE = Path(__file__).resolve().parent
SPLIT_NAMES = ("train", "heldout_compositions", "heldout_paraphrases", "chains")
CHAIN_LENGTH = 5


@dataclass(frozen=True)
class Task:
    name: str
    subtasks: tuple[Subtask, ...]
    instructions: tuple[str, ...]  # training phrasings, first is canonical
    heldout_instructions: tuple[str, ...]
    drawer_open_at_reset: bool = False

    @property
    def instruction(self) -> str:
        return self.instructions[0]

    @property
    def subtask_texts(self) -> list[str]:
        return [s.text for s in self.subtasks]

    def expected_facts(self) -> list[dict[str, str]]:
        return expected_facts(list(self.subtasks))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "subtasks": [{"skill": s.skill, "object": s.object, "target": s.target, "text": s.text}
                         for s in self.subtasks],
            "instructions": list(self.instructions),
            "heldout_instructions": list(self.heldout_instructions),
            "drawer_open_at_reset": self.drawer_open_at_reset,
        }


def _parse_task(name: str, raw: dict) -> Task:
    try:
        subtasks = tuple(Subtask.parse(s) for s in raw["subtasks"])
        instructions = tuple(str(s) for s in raw["instructions"])
        heldout = tuple(str(s) for s in raw.get("heldout_instructions", ()))
    except (KeyError, TypeError) as e:
        raise SchemaError(f"tasks.yaml: task {name!r} is malformed ({e!r})") from None
    if not 1 <= len(subtasks) <= 5:
        raise SchemaError(f"tasks.yaml: task {name!r} has {len(subtasks)} subtasks, expected 1..5")
    if not instructions:
        raise SchemaError(f"tasks.yaml: task {name!r} has no instructions")
    return Task(name, subtasks, instructions, heldout, bool(raw.get("drawer_open_at_reset", False)))


@functools.lru_cache(maxsize=None)
def load_tasks(path: str | None = None) -> dict[str, Task]:
    raw = yaml.safe_load(Path(path or HERE / "tasks.yaml").read_text())
    return {name: _parse_task(name, t) for name, t in raw["tasks"].items()}


@functools.lru_cache(maxsize=None)
def _skill_by_subtask_text() -> dict[str, str]:
    return {st.text: st.skill for task in load_tasks().values() for st in task.subtasks}


def subtask_skill(text: str) -> str | None:
    """The skill of one of the suite's subtask texts ("place" for "put the red cube in the bowl");
    None for any other text (DONE, a paraphrase, an instruction)."""
    return _skill_by_subtask_text().get(text)


def task_names() -> list[str]:
    return list(load_tasks())


def get_task(name: str) -> Task:
    tasks = load_tasks()
    if name not in tasks:
        raise SchemaError(f"unknown task {name!r}; valid tasks: {', '.join(tasks)}")
    return tasks[name]


@functools.lru_cache(maxsize=None)
def _load_splits_cached(path: str | None) -> dict:
    raw = yaml.safe_load(Path(path or HERE / "splits.yaml").read_text())
    missing = [s for s in SPLIT_NAMES if s not in raw]
    if missing:
        raise SchemaError(f"splits.yaml: missing split(s) {missing}")
    for split in ("train", "heldout_compositions", "heldout_paraphrases"):
        for name in raw[split]:
            get_task(name)
    for chain in raw["chains"]:
        if len(chain) != CHAIN_LENGTH:
            raise SchemaError(f"splits.yaml: chain {chain} has {len(chain)} tasks, expected {CHAIN_LENGTH}")
        for name in chain:
            get_task(name)
    return raw


def load_splits(path: str | None = None) -> dict[str, list]:
    """Split name -> items.

    `train` and `heldout_compositions`: lists of {"task", "instruction"} (every training
    phrasing of the task); `heldout_paraphrases`: {"task", "instruction"} with the held-out
    phrasings; `chains`: lists of 5 {"task", "instruction"} (canonical phrasing).
    """
    raw = _load_splits_cached(path)
    tasks = load_tasks()
    out: dict[str, list] = {}
    for split in ("train", "heldout_compositions"):
        out[split] = [{"task": n, "instruction": i} for n in raw[split] for i in tasks[n].instructions]
    out["heldout_paraphrases"] = [{"task": n, "instruction": i} for n in raw["heldout_paraphrases"]
                                  for i in tasks[n].heldout_instructions]
    out["chains"] = [[{"task": n, "instruction": tasks[n].instruction} for n in chain] for chain in raw["chains"]]
    return out


def split_task_names(split: str) -> list[str]:
    """Distinct task names of a split (for chains: every task that occurs in one)."""
    raw = _load_splits_cached(None)
    if split not in SPLIT_NAMES:
        raise SchemaError(f"unknown split {split!r}; valid: {SPLIT_NAMES}")
    names = [n for chain in raw["chains"] for n in chain] if split == "chains" else raw[split]
    return list(dict.fromkeys(names))


def describe_suite() -> dict:
    """Everything a planner needs, machine-readable: grammar, tasks, splits."""
    return {**grammar(), "tasks": {n: t.to_dict() for n, t in load_tasks().items()},
            "splits": _load_splits_cached(None)}
