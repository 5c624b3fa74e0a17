"""PyTorch references for point-cloud sampling and neighbour search (vectorized over the
batch): the CPU path and the ground truth for the Triton kernels."""

from __future__ import annotations

import torch


def farthest_point_sample_ref(points: torch.Tensor, n_samples: int) -> torch.Tensor:
    """points (B, N, 3) -> int64 (B, n_samples); starts at index 0, ties go to the lowest index."""
    batch, n, _ = points.shape
    p = points.float() if points.dtype != torch.float64 else points
    idx = torch.zeros(batch, n_samples, dtype=torch.long, device=points.device)
    min_d = torch.full((batch, n), float("inf"), dtype=p.dtype, device=points.device)
    last = torch.zeros(batch, dtype=torch.long, device=points.device)
    rows = torch.arange(batch, device=points.device)
    for i in range(1, n_samples):
        d = ((p - p[rows, last][:, None, :]) ** 2).sum(-1)
        min_d = torch.minimum(min_d, d)
        last = torch.argmax(min_d, dim=1)     # first maximal index
        idx[:, i] = last
    return idx


def knn_ref(query: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
    """query (B, M, 3), points (B, N, 3) -> int64 (B, M, k), nearest first (squared Euclidean)."""
    q = query.float() if query.dtype != torch.float64 else query
    p = points.to(q.dtype)
    d = ((q[:, :, None, :] - p[:, None, :, :]) ** 2).sum(-1)            # (B, M, N)
    return torch.topk(d, k, dim=-1, largest=False, sorted=True).indices
