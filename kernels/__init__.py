"""Hot-path kernels: one dispatcher per function, Triton on CUDA tensors, the PyTorch
reference elsewhere. `VLA_KERNELS=reference` forces the reference everywhere (debugging,
A/B checks); `VLA_KERNELS=triton` forces Triton even on CPU tensors (only meaningful with
`TRITON_INTERPRET=1`, which is how CI checks the kernels without a GPU). float64 scans and
steps always take the reference: they exist for exactness checks, and the Triton kernels
keep a float32 state.

Triton modules are imported lazily, on the first CUDA call, so importing this package never
compiles anything and never pins Triton's interpret mode for the rest of the process.
"""

from __future__ import annotations

import importlib
import os

import torch

from vla_stack.schema import SchemaError

from . import checks
from .edge_contract_ref import edge_contract_ref
from .point_ops_ref import farthest_point_sample_ref, knn_ref
from .selective_scan_ref import selective_scan_ref
from .state_update_ref import selective_state_update_ref

__all__ = ["selective_scan", "selective_state_update", "farthest_point_sample", "knn", "edge_contract", "backend_for",
           "selective_scan_ref", "selective_state_update_ref", "farthest_point_sample_ref", "knn_ref",
           "edge_contract_ref"]


def backend_for(device: torch.device) -> str:
    """'triton' or 'reference' for tensors on `device`, honouring VLA_KERNELS."""
    forced = os.environ.get("VLA_KERNELS", "").strip().lower()
    if forced not in ("", "auto", "reference", "triton"):
        raise SchemaError(f"VLA_KERNELS={forced!r}: expected 'reference', 'triton' or 'auto'")
    if forced in ("reference", "triton"):
        return forced
    return "triton" if device.type == "cuda" else "reference"


def _triton(module: str):
    return importlib.import_module(f"{__name__}.{module}")


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=True,
                   return_last_state=False):
    """Mamba-1 selective scan. u, delta, z: (batch, dim, L); A: (dim, dstate); B, C: (batch, dstate, L);
    D, delta_bias: (dim,). Returns out (batch, dim, L) [, last_state (batch, dim, dstate) fp32/fp64].
    Differentiable (the Triton path has its own backward kernel)."""
    checks.tensor("u", u, (None, None, None))
    b, d, L = u.shape
    checks.tensor("delta", delta, (b, d, L))
    checks.tensor("A", A, (d, None))
    n = A.shape[1]
    checks.tensor("B", B, (b, n, L))
    checks.tensor("C", C, (b, n, L))
    if D is not None:
        checks.tensor("D", D, (d,))
    if z is not None:
        checks.tensor("z", z, (b, d, L))
    if delta_bias is not None:
        checks.tensor("delta_bias", delta_bias, (d,))
    device = checks.same_device(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
    if backend_for(device) == "reference" or u.dtype == torch.float64:   # float64: exactness checks
        return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    return _triton("selective_scan_triton").selective_scan_triton(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def selective_state_update(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=True):
    """One streaming Mamba-1 step for a batch of robots. state (batch, dim, dstate) fp32 is updated
    IN PLACE; x, dt, z: (batch, dim); B, C: (batch, dstate); returns out (batch, dim)."""
    checks.tensor("state", state, (None, None, None), dtypes=(torch.float32, torch.float64))
    b, d, n = state.shape
    checks.tensor("x", x, (b, d))
    checks.tensor("dt", dt, (b, d))
    checks.tensor("A", A, (d, n))
    checks.tensor("B", B, (b, n))
    checks.tensor("C", C, (b, n))
    if D is not None:
        checks.tensor("D", D, (d,))
    if z is not None:
        checks.tensor("z", z, (b, d))
    if dt_bias is not None:
        checks.tensor("dt_bias", dt_bias, (d,))
    device = checks.same_device(state=state, x=x, dt=dt, A=A, B=B, C=C, D=D, z=z, dt_bias=dt_bias)
    if backend_for(device) == "reference" or state.dtype == torch.float64:   # the Triton step keeps fp32
        return selective_state_update_ref(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)
    return _triton("state_update_triton").selective_state_update_triton(
        state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)


def farthest_point_sample(points, n_samples: int):
    """points (B, N, 3) -> int64 indices (B, n_samples), first index 0, ties to the lowest index."""
    checks.tensor("points", points, (None, None, 3))
    if not isinstance(n_samples, int) or not 1 <= n_samples <= points.shape[1]:
        raise SchemaError(f"n_samples: expected an int in [1, {points.shape[1]}] (the cloud size), got {n_samples!r}")
    if backend_for(points.device) == "reference":
        return farthest_point_sample_ref(points, n_samples)
    return _triton("point_ops_triton").farthest_point_sample_triton(points, n_samples)


def knn(query, points, k: int):
    """query (B, M, 3), points (B, N, 3) -> int64 (B, M, k) indices into points, nearest first."""
    checks.tensor("points", points, (None, None, 3))
    checks.tensor("query", query, (points.shape[0], None, 3))
    if not isinstance(k, int) or not 1 <= k <= points.shape[1]:
        raise SchemaError(f"k: expected an int in [1, {points.shape[1]}] (the cloud size), got {k!r}")
    device = checks.same_device(query=query, points=points)
    if backend_for(device) == "reference":
        return knn_ref(query, points, k)
    return _triton("point_ops_triton").knn_triton(query, points, k)


def edge_contract(weight, pair):
    """Per-edge weighted contraction: weight (E, U, Wo), pair (E, U, K) -> (E, Wo, K), y = sum_u W P.
    Differentiable. Activations inside the encoder: shapes are checked, finiteness is not."""
    checks.tensor("weight", weight, (None, None, None), finite=False)
    e, u, _ = weight.shape
    checks.tensor("pair", pair, (e, u, None), finite=False)
    device = checks.same_device(weight=weight, pair=pair)
    if backend_for(device) == "reference" or torch.float64 in (weight.dtype, pair.dtype):
        return edge_contract_ref(weight, pair)
    return _triton("edge_contract_triton").edge_contract_triton(weight, pair)
