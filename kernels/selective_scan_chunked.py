"""Mamba-1 selective scan forward, time-parallel: the recurrence as an associative scan.

The sequential kernel (selective_scan_triton) keeps one state tile per program and walks the
sequence a step at a time: few instructions, but each step waits on the last one, and at the
target size there is about one warp per scheduler to hide that. Here a program owns (batch
row, BLOCK_D channels) and walks the sequence in chunks of T steps with time across lanes:
per chunk and state index n it computes every step's decay exp(delta A[:, n]) and input
delta B[n] u at once, runs h_t = a_t h_{t-1} + b_t as `tl.associative_scan` over the chunk
(combine (a1, b1), (a2, b2) -> (a1 a2, a2 b1 + b2)) and adds h_t C_t[n] into y.

Measured on an H100 (session 4) it LOSES: 0.258 ms at the target size against 0.130 ms for
the sequential kernel. Triton lays the scan axis across lanes (from the loads' layout), so
the scan costs shuffles, and the inner loop takes 23-27 sm_90 instructions per state element
and step against 10. It is kept, tested and benchmarked beside the sequential kernel, not
dispatched.

The state carried from one chunk to the next stays in registers as a (BLOCK_D, BLOCK_N) tile:
the chunk's last column of h goes into column n, and the next chunk folds column n into its
first b (b_0 += a_0 h_prev).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .selective_scan_triton import _sigmoid, _softplus
from .triton_utils import LOG2E, cdiv, new_output, next_pow2


@triton.jit
def _linear(a1, b1, a2, b2):
    """Compose h -> a1 h + b1, then h -> a2 h + b2."""
    return a1 * a2, a2 * b1 + b2


@triton.jit(do_not_specialize=["s_an"])
def _scan_fwd_chunked_kernel(
    u, delta, A, B, C, D, z, delta_bias, out, last_state,
    dim, dstate, L, s_an, s_ad, s_ub, s_ud, s_db, s_dd, s_Bb, s_Bn, s_Cb, s_Cn, s_zb, s_zd, s_ob, s_od,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
):
    pid_d = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_t = tl.arange(0, T)
    md = offs_d < dim
    bias = tl.load(delta_bias + offs_d, mask=md, other=0.0).to(tl.float32) if HAS_BIAS else 0.0
    dv = tl.load(D + offs_d, mask=md, other=0.0).to(tl.float32) if HAS_D else 0.0
    offs_n = tl.arange(0, BLOCK_N)
    first = offs_t[None, :] == 0
    last_col = offs_t[None, :] == T - 1
    H = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)   # the state at the end of the last chunk
    for t0 in range(0, L, T):
        tt = t0 + offs_t
        mt = tt < L
        m2 = md[:, None] & mt[None, :]
        uv = tl.load(u + b * s_ub + offs_d[:, None] * s_ud + tt[None, :], mask=m2, other=0.0).to(tl.float32)
        dl = tl.load(delta + b * s_db + offs_d[:, None] * s_dd + tt[None, :], mask=m2, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dl += bias[:, None]
        if SOFTPLUS:
            dl = _softplus(dl)
        dl = tl.where(m2, dl, 0.0)          # steps past the end: a = 1, b = 0, the state carries to column T - 1
        w = dl * uv
        y = tl.zeros((BLOCK_D, T), tl.float32)
        for n in range(dstate):
            a_n = tl.load(A + offs_d * s_ad + n * s_an, mask=md, other=0.0).to(tl.float32) * LOG2E
            b_n = tl.load(B + b * s_Bb + n * s_Bn + tt, mask=mt, other=0.0).to(tl.float32)
            c_n = tl.load(C + b * s_Cb + n * s_Cn + tt, mask=mt, other=0.0).to(tl.float32)
            col = offs_n[None, :] == n
            h0 = tl.sum(tl.where(col, H, 0.0), axis=1)
            da = tl.exp2(a_n[:, None] * dl)
            db = w * b_n[None, :]
            db = tl.where(first, db + da * h0[:, None], db)
            _, h = tl.associative_scan((da, db), 1, _linear)
            y += h * c_n[None, :]
            H = tl.where(col, tl.sum(tl.where(last_col, h, 0.0), axis=1)[:, None], H)
        if HAS_D:
            y += uv * dv[:, None]
        if HAS_Z:
            zv = tl.load(z + b * s_zb + offs_d[:, None] * s_zd + tt[None, :], mask=m2, other=0.0).to(tl.float32)
            y *= zv * _sigmoid(zv)
        tl.store(out + b * s_ob + offs_d[:, None] * s_od + tt[None, :], y.to(out.dtype.element_ty), mask=m2)
    tl.store(last_state + b * dim * dstate + offs_d[:, None] * dstate + offs_n[None, :], H,
             mask=md[:, None] & (offs_n[None, :] < dstate))


def selective_scan_chunked(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=True,
                           block_d: int = 16, chunk: int = 32, num_warps: int = 4):
    """Forward only (no autograd): out and the last state, as selective_scan_triton(...,
    return_last_state=True). Kept beside the sequential kernel for comparison; see
    benchmarks/kernel_speed.py and kernels/README.md for which one is faster."""
    batch, dim, L = u.shape
    dstate = A.shape[1]
    u, delta = u.contiguous(), delta.contiguous()
    z = None if z is None else z.contiguous()
    B, C = B.contiguous(), C.contiguous()
    out = new_output(u.shape, u.dtype, u.device)
    last = new_output((batch, dim, dstate), torch.float32, u.device)
    dummy = u
    _scan_fwd_chunked_kernel[(cdiv(dim, block_d), batch)](
        u, delta, A, B, C, dummy if D is None else D, dummy if z is None else z,
        dummy if delta_bias is None else delta_bias, out, last, dim, dstate, L, A.stride(1), A.stride(0),
        u.stride(0), u.stride(1), delta.stride(0), delta.stride(1), B.stride(0), B.stride(1), C.stride(0),
        C.stride(1), 0 if z is None else z.stride(0), 0 if z is None else z.stride(1), out.stride(0), out.stride(1),
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(delta_softplus),
        BLOCK_D=block_d, BLOCK_N=next_pow2(dstate), T=chunk, num_warps=num_warps)
    return out, last
