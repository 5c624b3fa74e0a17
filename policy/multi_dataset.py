"""Training windows from one dataset or from a folder of datasets (one per task, as
`vla policy demos` writes them in parallel), read as one.

Each dataset numbers its subtask texts its own way, so the indices are remapped onto one
merged text table; normalization statistics are merged exactly from each dataset's
per-dimension mean/std and frame count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vla_stack.datasets import layout
from vla_stack.schema import SchemaError

STAT_KEYS = (layout.STATE, layout.ACTION)


def dataset_roots(root: Path | str) -> list[Path]:
    """`root` itself if it is a dataset, else its sub-directories that are datasets (sorted)."""
    root = Path(root)
    if (root / layout.INFO_PATH).is_file():
        return [root]
    subs = sorted(p for p in root.iterdir() if (p / layout.INFO_PATH).is_file()) if root.is_dir() else []
    if not subs:
        raise SchemaError(f"dataset {root}: neither a dataset (no {layout.INFO_PATH}) nor a folder of datasets")
    return subs


def merge_mean_std(parts: list[tuple[int, dict]]) -> dict[str, np.ndarray]:
    """[(frames, {"mean", "std"})] -> pooled mean and std (population), per dimension."""
    n = np.array([p[0] for p in parts], np.float64)
    means = np.stack([np.asarray(p[1]["mean"], np.float64) for p in parts])
    stds = np.stack([np.asarray(p[1]["std"], np.float64) for p in parts])
    w = (n / n.sum())[:, None]
    mean = (w * means).sum(0)
    var = (w * (stds ** 2 + means ** 2)).sum(0) - mean ** 2
    return {"mean": mean, "std": np.sqrt(np.maximum(var, 0.0))}


class MultiWindowDataset:
    """Same interface as `WindowDataset` as far as training uses it: len, batched indexing,
    `subtask_texts`, `task_texts`, `stats`, `has_points`."""

    def __init__(self, parts: list):
        if not parts:
            raise SchemaError("no datasets to read windows from")
        self.parts = parts
        self.subtask_texts = sorted({t for p in parts for t in p.subtask_texts})
        self.task_texts = sorted({t for p in parts for t in p.task_texts})
        index = {t: i for i, t in enumerate(self.subtask_texts)}
        self._remap = [torch.tensor([index[t] for t in p.subtask_texts], dtype=torch.long) for p in parts]
        self._offsets = np.cumsum([0] + [len(p) for p in parts])
        self.has_points = all(p.has_points for p in parts)
        self.stats = {k: merge_mean_std([(len(p), p.stats[k]) for p in parts]) for k in STAT_KEYS
                      if all(k in p.stats for p in parts)}

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, i):
        batched = not np.isscalar(i) and not (isinstance(i, torch.Tensor) and i.ndim == 0)
        idx = np.atleast_1d(np.asarray(i, dtype=np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"window index out of range for {len(self)} windows: {i}")
        which = np.searchsorted(self._offsets, idx, side="right") - 1
        order, pieces = [], []
        for d in np.unique(which):
            rows = np.flatnonzero(which == d)
            b = self.parts[d][idx[rows] - self._offsets[d]]
            b["subtask_index"] = self._remap[d][b["subtask_index"]]
            b.pop("task_index", None)  # per-dataset numbering, not used for training
            pieces.append(b)
            order.append(rows)
        inv = np.argsort(np.concatenate(order))
        out = {k: torch.cat([p[k] for p in pieces])[torch.from_numpy(inv)] for k in pieces[0]}
        return out if batched else {k: v[0] for k, v in out.items()}


def open_windows(root: Path | str, history: int, horizon: int):
    """A `WindowDataset` for one dataset, a `MultiWindowDataset` for a folder of them (raw units)."""
    from vla_stack.datasets.window import WindowDataset

    roots = dataset_roots(root)
    parts = [WindowDataset(r, history=history, horizon=horizon, normalize=False) for r in roots]
    return parts[0] if len(parts) == 1 else MultiWindowDataset(parts)
