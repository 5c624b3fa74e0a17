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
    return WindowMixture([root], history, horizon).dataset


class WindowMixture:
    """Several sources (each a dataset or a folder of them) read as one `MultiWindowDataset`, with
    each batch drawn by source share: e.g. a small set of teleoperated fixes next to the original
    demonstrations, or DAgger episodes at half of every batch however few frames they hold.

    `weights` (one per source, >= 0): each source's expected share of the windows drawn; empty:
    in proportion to their windows, i.e. every window equally likely, as one folder would be."""

    def __init__(self, sources: list[Path | str], history: int, horizon: int, weights: tuple[float, ...] = ()):
        from vla_stack.datasets.window import WindowDataset

        if weights and len(weights) != len(sources):
            raise SchemaError(f"mix weights: {len(weights)} given for {len(sources)} sources "
                              f"({', '.join(map(str, sources))}); give one per source, the main dataset first")
        w = np.asarray(weights, np.float64)
        if weights and (not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0):
            raise SchemaError(f"mix weights {tuple(weights)}: each must be finite and >= 0, and one > 0")
        per_source = [[WindowDataset(r, history=history, horizon=horizon, normalize=False) for r in dataset_roots(s)]
                      for s in sources]
        sizes = np.array([sum(len(p) for p in parts) for parts in per_source], np.float64)
        basis = w if weights else sizes
        for s, n, wi in zip(sources, sizes, basis):
            if wi > 0 and n == 0:
                raise SchemaError(f"mix source {s}: no training windows, but a share of {wi} was asked for")
        self.sources = [str(s) for s in sources]
        self.windows = sizes.astype(np.int64)
        self.shares = basis / max(basis.sum(), 1e-300)
        parts = [p for ps in per_source for p in ps]
        self.dataset = parts[0] if len(parts) == 1 else MultiWindowDataset(parts)
        self._starts = np.concatenate([[0], np.cumsum(self.windows)[:-1]])
        self.uniform = not weights or np.allclose(self.shares, sizes / sizes.sum())

    def draw(self, gen: np.random.Generator, n: int) -> np.ndarray:
        """n window indices into `dataset`: a source by share, then a window of it uniformly."""
        if not self.windows.sum():
            raise SchemaError(f"no training windows in {', '.join(self.sources)} (episodes shorter than a window?)")
        if self.uniform:
            return gen.integers(0, len(self.dataset), n)
        src = gen.choice(len(self.shares), size=n, p=self.shares)
        return self._starts[src] + np.floor(gen.random(n) * self.windows[src]).astype(np.int64)

    def describe(self) -> str:
        return "; ".join(f"{s}: {n:,} windows, share {p:.2f}" for s, n, p in zip(self.sources, self.windows, self.shares))
