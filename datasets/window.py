"""Training windows: T steps of history, each with the chunk of the next H actions.

All low-dimensional and point-cloud columns are read once into contiguous numpy arrays, so
a window is two fancy-indexing gathers (no parquet or Python loop per item); DataLoader
workers share those arrays copy-on-write after fork. Indexing with a list of indices
returns a whole batch in one gather (use with `batch_size=None` and a BatchSampler).

Padding follows LeRobot: indices before the episode start / past its end are clamped to the
first / last frame and flagged (`observation_is_pad`, `action_is_pad`). State and action
are normalized (mean/std from meta/stats.json); points and colours are left in metres and
[0, 1]: subtracting a mean position would break the encoder's rotation equivariance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vla_stack.datasets import layout
from vla_stack.datasets.errors import DatasetError
from vla_stack.datasets.reader import DatasetReader

_STD_EPS = 1e-6


def normalize(x, stats: dict[str, np.ndarray]):
    """(x - mean) / std; dimensions with ~zero std (constant in the data) map to x - mean."""
    mean, std = _mean_std(stats)
    return (x - mean) / std


def unnormalize(x, stats: dict[str, np.ndarray]):
    mean, std = _mean_std(stats)
    return x * std + mean


def _mean_std(stats):
    mean = np.asarray(stats["mean"], np.float32)
    std = np.asarray(stats["std"], np.float32)
    return mean, np.where(std < _STD_EPS, np.float32(1.0), std)


class WindowDataset(torch.utils.data.Dataset):
    """One window per frame of every episode (len == total frames)."""

    def __init__(self, root: Path | str, history: int = 1, horizon: int = 16, normalize: bool = True,
                 episodes: list[int] | None = None):
        if history < 1 or horizon < 1:
            raise ValueError(f"history and horizon must be >= 1, got history={history}, horizon={horizon}")
        self.reader = DatasetReader(root)
        self.root = Path(root)
        self.history, self.horizon, self.normalize = history, horizon, normalize
        self.stats = self.reader.stats
        self.task_texts = self.reader.task_texts
        self.subtask_texts = self.reader.subtask_texts
        self.fps = self.reader.fps
        eps = list(range(self.reader.num_episodes)) if episodes is None else list(episodes)
        if not eps:
            raise DatasetError("no episodes to read windows from", path=self.root)
        keys = [layout.STATE, layout.ACTION, layout.SUBTASK_INDEX, layout.TASK_INDEX]
        if layout.SUBTASK_INDEX not in self.reader.features:
            # no subtask annotation (e.g. a dataset written by LeRobot): the instruction is the subtask
            keys.remove(layout.SUBTASK_INDEX)
            self.subtask_texts = self.task_texts
        self.has_points = layout.POINTS in self.reader.features
        if self.has_points:
            keys += [layout.POINTS, layout.COLORS]
        parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        starts, ends, ep_of = [], [], []
        offset = 0
        for ep in eps:
            cols = self.reader.episode_columns(ep, keys)
            n = len(cols[layout.STATE])
            for k in keys:
                parts[k].append(cols[k])
            starts.append(np.full(n, offset))
            ends.append(np.full(n, offset + n))
            ep_of.append(np.full(n, ep))
            offset += n
        self._cols = {k: np.ascontiguousarray(np.concatenate(v)) for k, v in parts.items()}
        self._cols.setdefault(layout.SUBTASK_INDEX, self._cols[layout.TASK_INDEX])
        if normalize:
            for k in (layout.STATE, layout.ACTION):
                if k not in self.stats:
                    raise DatasetError(f"meta/stats.json has no statistics for {k!r}", path=self.root)
                self._cols[k] = normalize_array(self._cols[k], self.stats[k])
        self._start = np.concatenate(starts)
        self._end = np.concatenate(ends)
        self._episode = np.concatenate(ep_of)
        self._hist = np.arange(-history + 1, 1)
        self._chunk = np.arange(horizon)

    def __len__(self) -> int:
        return len(self._start)

    def __getitem__(self, i):
        """An int gives one window; a list/array of ints gives a batch (leading batch dim)."""
        batched = not np.isscalar(i) and not (isinstance(i, torch.Tensor) and i.ndim == 0)
        idx = np.atleast_1d(np.asarray(i, dtype=np.int64))
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"window index out of range for {len(self)} windows: {i}")
        idx = idx % len(self)
        start, end = self._start[idx, None], self._end[idx, None]
        hist = idx[:, None] + self._hist  # (B, T)
        obs_pad = hist < start
        hist = np.maximum(hist, start)
        chunk = hist[:, :, None] + self._chunk  # (B, T, H)
        act_pad = chunk >= end[:, :, None]
        chunk = np.minimum(chunk, end[:, :, None] - 1)
        c = self._cols
        out = {
            "observation.state": torch.from_numpy(c[layout.STATE][hist]),
            "action": torch.from_numpy(c[layout.ACTION][chunk]),
            "action_is_pad": torch.from_numpy(act_pad),
            "observation_is_pad": torch.from_numpy(obs_pad),
            "subtask_index": torch.from_numpy(c[layout.SUBTASK_INDEX][hist]),
            "task_index": torch.from_numpy(c[layout.TASK_INDEX][hist]),
            "episode_index": torch.from_numpy(self._episode[idx]),
        }
        if self.has_points:
            out["observation.points"] = torch.from_numpy(c[layout.POINTS][hist])
            out["observation.colors"] = torch.from_numpy(c[layout.COLORS][hist])
        if not batched:
            out = {k: v[0] for k, v in out.items()}
        return out

    def unnormalize_action(self, action):
        """Model output (normalized) -> schema action units."""
        if not self.normalize:
            return action
        mean, std = _mean_std(self.stats[layout.ACTION])
        if isinstance(action, torch.Tensor):
            return action * torch.from_numpy(std) + torch.from_numpy(mean)
        return action * std + mean


def normalize_array(x: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    return normalize(x.astype(np.float32), stats).astype(np.float32)


def reference_window(reader: DatasetReader, episode: int, t: int, history: int, horizon: int,
                     normalize_with: dict | None = None) -> dict[str, np.ndarray]:
    """Plain per-step loop over one episode's columns: the specification the fast path is tested against."""
    cols = reader.episode_columns(episode)
    n = len(cols[layout.STATE])
    state, action, obs_pad, act, act_pad = [], [], [], [], []
    for s in range(t - history + 1, t + 1):
        obs_pad.append(s < 0)
        s = max(s, 0)
        state.append(cols[layout.STATE][s])
        row, pad = [], []
        for h in range(horizon):
            j = s + h
            pad.append(j >= n)
            row.append(cols[layout.ACTION][min(j, n - 1)])
        act.append(row)
        act_pad.append(pad)
    out = {"observation.state": np.array(state, np.float32), "action": np.array(act, np.float32),
           "action_is_pad": np.array(act_pad), "observation_is_pad": np.array(obs_pad)}
    steps = [max(s, 0) for s in range(t - history + 1, t + 1)]
    for k in (layout.SUBTASK_INDEX, layout.TASK_INDEX, layout.POINTS, layout.COLORS):
        if k in cols:
            out[k] = cols[k][steps]
    if normalize_with:
        out["observation.state"] = normalize_array(out["observation.state"], normalize_with[layout.STATE])
        out["action"] = normalize_array(out["action"], normalize_with[layout.ACTION])
    return out
