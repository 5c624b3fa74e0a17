"""Reference for the per-edge weighted contraction of the equivariant encoder's tensor products.

y[e, w, k] = sum_u W[e, u, w] * P[e, u, k]: each edge's own (U, Wo) weights (the radial network's output)
applied to its (U, K) path features. One batched matmul of tiny matrices: correct everywhere, slow on a GPU.
"""

from __future__ import annotations

import torch


def edge_contract_ref(weight: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
    """weight (E, U, Wo), pair (E, U, K) -> (E, Wo, K)."""
    return torch.bmm(weight.transpose(1, 2), pair)
