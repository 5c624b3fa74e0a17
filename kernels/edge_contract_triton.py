"""Per-edge weighted contraction y[e, w, k] = sum_u W[e, u, w] P[e, u, k], forward and backward in Triton.

Why: the encoder's tensor products apply each edge's own (U, Wo) weight block (U <= 32, Wo <= 52) to its
(U, K <= 5) path features. As a batched matmul of tiny matrices that took ~80 % of a training step on an
H100 (`benchmarks/results/train_step_speed_cuda.json`); the contraction is memory-bound (each weight is
used K times), so each program loads a block of edges' whole weight rows once, contiguous, and reduces in
registers. The backward reads W, P and dy once and writes dW and dP once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_utils import cdiv, new_output, next_pow2

TILE_ELEMENTS = 4096   # edges per program x padded U x padded Wo held in registers


@triton.jit
def _weight_rows(w_ptr, E, stride_we, U: tl.constexpr, WO: tl.constexpr, BLOCK_E: tl.constexpr, BU: tl.constexpr,
                 BW: tl.constexpr):
    """This program's edges' whole (U, Wo) weight blocks, fp32, and the index vectors and masks around them."""
    e = tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)
    u = tl.arange(0, BU)
    w = tl.arange(0, BW)
    e_ok = e < E
    e64 = e.to(tl.int64)
    wmask = e_ok[:, None, None] & (u < U)[None, :, None] & (w < WO)[None, None, :]
    W = tl.load(w_ptr + e64[:, None, None] * stride_we + u[None, :, None] * WO + w[None, None, :],
                mask=wmask, other=0.0).to(tl.float32)
    pmask = e_ok[:, None] & (u < U)[None, :]
    ymask = e_ok[:, None] & (w < WO)[None, :]
    return e64, u, w, W, wmask, pmask, ymask


@triton.jit
def _edge_contract_fwd(w_ptr, p_ptr, y_ptr, E, stride_we, U: tl.constexpr, WO: tl.constexpr, K: tl.constexpr,
                       BLOCK_E: tl.constexpr, BU: tl.constexpr, BW: tl.constexpr):
    e64, u, w, W, wmask, pmask, ymask = _weight_rows(w_ptr, E, stride_we, U, WO, BLOCK_E, BU, BW)
    for k in tl.static_range(K):
        p = tl.load(p_ptr + e64[:, None] * (U * K) + u[None, :] * K + k, mask=pmask, other=0.0).to(tl.float32)
        y = tl.sum(W * p[:, :, None], axis=1)   # (BLOCK_E, BW)
        tl.store(y_ptr + e64[:, None] * (WO * K) + w[None, :] * K + k, y.to(y_ptr.dtype.element_ty), mask=ymask)


@triton.jit
def _edge_contract_bwd(w_ptr, p_ptr, dy_ptr, dw_ptr, dp_ptr, E, stride_we, U: tl.constexpr, WO: tl.constexpr,
                       K: tl.constexpr, BLOCK_E: tl.constexpr, BU: tl.constexpr, BW: tl.constexpr):
    e64, u, w, W, wmask, pmask, ymask = _weight_rows(w_ptr, E, stride_we, U, WO, BLOCK_E, BU, BW)
    dW = tl.zeros((BLOCK_E, BU, BW), dtype=tl.float32)
    for k in tl.static_range(K):
        p = tl.load(p_ptr + e64[:, None] * (U * K) + u[None, :] * K + k, mask=pmask, other=0.0).to(tl.float32)
        dy = tl.load(dy_ptr + e64[:, None] * (WO * K) + w[None, :] * K + k, mask=ymask, other=0.0).to(tl.float32)
        dW += p[:, :, None] * dy[:, None, :]
        dp = tl.sum(W * dy[:, None, :], axis=2)   # (BLOCK_E, BU)
        tl.store(dp_ptr + e64[:, None] * (U * K) + u[None, :] * K + k, dp.to(dp_ptr.dtype.element_ty), mask=pmask)
    tl.store(dw_ptr + e64[:, None, None] * (U * WO) + u[None, :, None] * WO + w[None, None, :],
             dW.to(dw_ptr.dtype.element_ty), mask=wmask)


def _launch_shape(E: int, U: int, WO: int):
    bu, bw = next_pow2(U), next_pow2(WO)
    block_e = max(1, min(256, TILE_ELEMENTS // (bu * bw)))
    return block_e, bu, bw, (cdiv(E, block_e),)


def _rows(weight: torch.Tensor) -> torch.Tensor:
    """The kernels index W as e * stride + u * Wo + w: a split of a wider weight row keeps that layout."""
    E, U, WO = weight.shape
    return weight if weight.stride(2) == 1 and weight.stride(1) == WO else weight.contiguous()


class _EdgeContract(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, pair):
        weight, pair = _rows(weight), pair.contiguous()
        E, U, WO = weight.shape
        K = pair.shape[2]
        y = new_output((E, WO, K), torch.promote_types(weight.dtype, pair.dtype), weight.device)
        block_e, bu, bw, grid = _launch_shape(E, U, WO)
        if E:
            _edge_contract_fwd[grid](weight, pair, y, E, weight.stride(0), U, WO, K, block_e, bu, bw)
        ctx.save_for_backward(weight, pair)
        return y

    @staticmethod
    def backward(ctx, dy):
        weight, pair = ctx.saved_tensors
        dy = dy.contiguous()
        E, U, WO = weight.shape
        K = pair.shape[2]
        dw = new_output((E, U, WO), weight.dtype, weight.device)
        dp = new_output((E, U, K), pair.dtype, pair.device)
        block_e, bu, bw, grid = _launch_shape(E, U, WO)
        if E:
            _edge_contract_bwd[grid](weight, pair, dy, dw, dp, E, weight.stride(0), U, WO, K, block_e, bu, bw)
        return dw, dp


def edge_contract_triton(weight: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
    """weight (E, U, Wo), pair (E, U, K) -> (E, Wo, K); differentiable in both."""
    return _EdgeContract.apply(weight, pair)
