"""Streaming execution of action chunks: the model predicts H actions every tick; these turn
the stream of chunks into one action per tick. Both are linear in the chunks, so they keep
the policy's rotation equivariance."""

from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np


class ChunkExecutor:
    """`ensemble` (ACT's temporal ensembling): average every chunk's prediction for this tick,
    weight exp(-decay * age) with age 0 = the oldest chunk, as in ACT. `receding`: execute the
    first `exec_steps` actions of a chunk, then switch to the newest one. `clear_on_switch`: when the
    subtask passed with a chunk changes, the chunks pending for the previous one are dropped (an
    ensemble otherwise blends up to `horizon` ticks of them into the new subtask's first actions)."""

    def __init__(self, horizon: int, mode: Literal["ensemble", "receding"] = "ensemble", exec_steps: int | None = None,
                 decay: float = 0.01, clear_on_switch: bool = False):
        if mode not in ("ensemble", "receding"):
            raise ValueError(f"chunk execution mode {mode!r}: expected 'ensemble' or 'receding'")
        self.horizon, self.mode, self.decay, self.clear_on_switch = horizon, mode, decay, clear_on_switch
        self.exec_steps = exec_steps or max(1, horizon // 2)
        if not 1 <= self.exec_steps <= horizon:
            raise ValueError(f"exec_steps {self.exec_steps} must be in [1, horizon={horizon}]")
        self.reset()

    def reset(self) -> None:
        self._chunks: deque[np.ndarray] = deque(maxlen=self.horizon)  # newest last
        self._plan: np.ndarray | None = None
        self._k = 0
        self._subtask: str | None = None

    def __call__(self, chunk: np.ndarray, subtask: str | None = None) -> np.ndarray:
        """chunk (H, A), predicted this tick for `subtask` -> the action to execute now (A,)."""
        if chunk.shape[0] != self.horizon:
            raise ValueError(f"chunk has {chunk.shape[0]} steps, executor expects horizon {self.horizon}")
        if self.clear_on_switch and self._subtask is not None and subtask != self._subtask:
            self.reset()
        self._subtask = subtask
        if self.mode == "receding":
            if self._plan is None or self._k >= self.exec_steps:
                self._plan, self._k = chunk.copy(), 0
            self._k += 1
            return self._plan[self._k - 1]
        self._chunks.append(chunk.copy())
        n = len(self._chunks)
        # chunk i (0 = oldest) was predicted n-1-i ticks ago: its entry for now is index n-1-i
        preds = np.stack([c[n - 1 - i] for i, c in enumerate(self._chunks)])
        w = np.exp(-self.decay * np.arange(n))
        return (w[:, None] * preds).sum(0) / w.sum()
