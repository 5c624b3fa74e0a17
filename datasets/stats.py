"""Normalization statistics: per episode when it is saved, merged into `meta/stats.json`.

Per-episode stats (count, mean, std, min, max) are stored in `meta/episodes`, as LeRobot
does, so the dataset-wide stats are re-derived exactly after `--resume` or a discard with
no pass over the data (parallel-variance merge).
"""

from __future__ import annotations

import numpy as np

STAT_KEYS = ("mean", "std", "min", "max", "count")


def array_stats(x: np.ndarray, reduce_axes: tuple[int, ...]) -> dict[str, np.ndarray]:
    x = np.asarray(x, np.float64)
    n = int(np.prod([x.shape[a] for a in reduce_axes]))
    return {
        "mean": x.mean(axis=reduce_axes), "std": x.std(axis=reduce_axes),
        "min": x.min(axis=reduce_axes), "max": x.max(axis=reduce_axes), "count": np.array([n]),
    }


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats of uint8 (T, H, W, 3) frames scaled to [0, 1], shaped (3, 1, 1) like LeRobot."""
    s = array_stats(frames[::max(1, len(frames) // 32)].astype(np.float32) / 255.0, (0, 1, 2))
    return {k: (v.reshape(3, 1, 1) if k != "count" else v) for k, v in s.items()}


def merge_stats(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Exact merge of (count, mean, std, min, max) from disjoint parts."""
    if not parts:
        raise ValueError("no statistics to merge")
    counts = np.array([float(np.asarray(p["count"]).reshape(-1)[0]) for p in parts])
    means = np.stack([np.asarray(p["mean"], np.float64) for p in parts])
    vars_ = np.stack([np.asarray(p["std"], np.float64) ** 2 for p in parts])
    w = (counts / counts.sum()).reshape(-1, *([1] * (means.ndim - 1)))
    mean = (w * means).sum(0)
    var = (w * (vars_ + (means - mean) ** 2)).sum(0)
    return {
        "mean": mean, "std": np.sqrt(np.maximum(var, 0.0)),
        "min": np.min(np.stack([np.asarray(p["min"]) for p in parts]), 0),
        "max": np.max(np.stack([np.asarray(p["max"]) for p in parts]), 0),
        "count": np.array([int(counts.sum())]),
    }


def to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {feat: {k: np.asarray(v).tolist() for k, v in s.items()} for feat, s in stats.items()}


def from_json(obj: dict) -> dict[str, dict[str, np.ndarray]]:
    return {feat: {k: np.asarray(v, np.float64) for k, v in s.items()} for feat, s in obj.items()}
