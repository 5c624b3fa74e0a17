"""Shape/dtype/finiteness checks shared by the dispatcher, so bad input fails with a message
that names the argument instead of an opaque indexing error deep inside a kernel."""

from __future__ import annotations

import torch

from vla_stack.schema import SchemaError

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def tensor(name: str, x, shape: tuple, *, dtypes=FLOAT_DTYPES, finite: bool = True) -> torch.Tensor:
    """`shape` holds ints or None (any size); raises SchemaError naming `name` on mismatch."""
    if not isinstance(x, torch.Tensor):
        raise SchemaError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
        want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
        raise SchemaError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
    if x.dtype not in dtypes:
        raise SchemaError(f"{name}: dtype {x.dtype} not supported (expected one of {[str(d) for d in dtypes]})")
    # Not on CUDA: the check would sync the host and break CUDA-graph capture of the hot path.
    if finite and x.device.type != "cuda" and x.numel() and not bool(torch.isfinite(x).all()):
        raise SchemaError(f"{name}: contains NaN or Inf")
    return x


def same_device(**tensors) -> torch.device:
    devices = {k: v.device for k, v in tensors.items() if v is not None}
    if len(set(devices.values())) > 1:
        raise SchemaError(f"tensors on different devices: {devices}")
    return next(iter(devices.values()))
