"""PyTorch reference of the streaming (one-tick) Mamba-1 step: the CPU path and the ground
truth for the fused Triton kernel. One call of this equals one time step of the scan."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def selective_state_update_ref(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=True):
    """state (batch, dim, dstate), updated IN PLACE; x, dt, z: (batch, dim); B, C: (batch, dstate).

    Arithmetic runs in the state's dtype (float32, or float64 for exactness tests)."""
    cd = state.dtype
    xs, dts = x.to(cd), dt.to(cd)
    if dt_bias is not None:
        dts = dts + dt_bias.to(cd)
    if dt_softplus:
        dts = F.softplus(dts)
    dA = torch.exp(dts[..., None] * A.to(cd))                           # (b, d, n)
    dBx = dts[..., None] * B.to(cd)[:, None, :] * xs[..., None]         # (b, d, n)
    state.mul_(dA).add_(dBx)
    out = (state * C.to(cd)[:, None, :]).sum(-1)
    if D is not None:
        out = out + xs * D.to(cd)
    if z is not None:
        out = out * F.silu(z.to(cd))
    return out.to(x.dtype)
