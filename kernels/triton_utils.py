"""Small device-side helpers shared by the Triton kernels."""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)


@triton.jit
def softplus(x):
    # Same threshold as torch.nn.functional.softplus (beta=1, threshold=20).
    return tl.where(x > 20.0, x, tl.log(1.0 + tl.exp(x)))


@triton.jit
def sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


def next_pow2(n: int) -> int:
    """Plain Python: triton.next_power_of_2 is a ConstexprFunction, ~10 us a call on the host."""
    return 1 << (max(int(n), 1) - 1).bit_length()


def cdiv(a: int, b: int) -> int:
    """Host-side ceil(a / b) (triton.cdiv costs a ConstexprFunction call per use)."""
    return -(-int(a) // int(b))


#: Tests set this so that every output buffer starts as NaN (floats) or -1 (integers):
#: an element a kernel forgets to write then fails the comparison instead of passing as 0.
POISON_OUTPUTS = False


def new_output(shape, dtype, device):
    import torch

    out = torch.empty(shape, dtype=dtype, device=device)
    if POISON_OUTPUTS:
        out.fill_(float("nan") if out.is_floating_point() else -1)
    return out
