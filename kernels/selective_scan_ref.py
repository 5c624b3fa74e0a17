"""PyTorch reference of the Mamba-1 selective scan: the ground truth the Triton kernel is
tested against, and the CPU path. A plain loop over time, exact in float64.

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t        (per channel d, state n)
    y_t = <h_t, C_t> + D * u_t ;  out = y * silu(z)   (when z is given)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """float64 stays float64 (for exactness tests); everything else runs in float32."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=True,
                       return_last_state=False):
    """u, delta, z: (batch, dim, L); A: (dim, dstate); B, C: (batch, dstate, L); D, delta_bias: (dim,)."""
    dtype_in = u.dtype
    cd = compute_dtype(u, delta, A, B, C)
    u, delta, A, B, C = (t.to(cd) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(cd)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, L = u.shape
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    for t in range(L):
        dt = delta[:, :, t, None]                                      # (b, d, 1)
        h = torch.exp(dt * A) * h + dt * B[:, None, :, t] * u[:, :, t, None]
        ys.append((h * C[:, None, :, t]).sum(-1))                      # (b, d)
    y = torch.stack(ys, dim=-1) if ys else u.new_zeros(batch, dim, 0)
    if D is not None:
        y = y + u * D.to(cd)[:, None]
    if z is not None:
        y = y * F.silu(z.to(cd))
    out = y.to(dtype_in)
    return (out, h) if return_last_state else out
