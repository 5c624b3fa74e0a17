"""Point-cloud sampling and neighbour search in Triton.

Farthest point sampling is a chain of n_samples dependent argmax steps per cloud, so one
program owns one cloud and keeps its running distances on-chip (registers when the cloud
fits one block, else a scratch row in global memory that stays in L2); the PyTorch version
pays several kernel launches per step instead. kNN does k rounds of "smallest (distance,
index) pair greater than the last one taken" per block of queries, which gives the same
order as a stable sort (ties go to the lower index) without any per-thread sorting.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import triton_utils
from .triton_utils import next_pow2

FPS_MAX_BLOCK = 8192


@triton.jit
def _fps_kernel(points, out, scratch, n_points, n_samples, s_pb, s_pn, s_ob,
                BLOCK: tl.constexpr, ONE_BLOCK: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    base = points + b * s_pb
    tl.store(out + b * s_ob, 0)
    lx = tl.load(base).to(tl.float32)
    ly = tl.load(base + 1).to(tl.float32)
    lz = tl.load(base + 2).to(tl.float32)
    offs = tl.arange(0, BLOCK)
    if ONE_BLOCK:
        m = offs < n_points
        px = tl.load(base + offs * s_pn, mask=m, other=0.0).to(tl.float32)
        py = tl.load(base + offs * s_pn + 1, mask=m, other=0.0).to(tl.float32)
        pz = tl.load(base + offs * s_pn + 2, mask=m, other=0.0).to(tl.float32)
        best = tl.where(m, float("inf"), -1.0)
        for i in range(1, n_samples):
            dx = px - lx
            dy = py - ly
            dz = pz - lz
            best = tl.minimum(best, dx * dx + dy * dy + dz * dz)
            best = tl.where(m, best, -1.0)
            far = tl.argmax(best, axis=0, tie_break_left=True).to(tl.int64)
            tl.store(out + b * s_ob + i, far)
            lx = tl.load(base + far * s_pn).to(tl.float32)
            ly = tl.load(base + far * s_pn + 1).to(tl.float32)
            lz = tl.load(base + far * s_pn + 2).to(tl.float32)
    else:
        srow = scratch + b * n_points
        for start in range(0, n_points, BLOCK):
            tl.store(srow + start + offs, float("inf"), mask=start + offs < n_points)
        for i in range(1, n_samples):
            run_val = tl.full((BLOCK,), -1.0, tl.float32)
            run_idx = tl.full((BLOCK,), 0, tl.int64)
            for start in range(0, n_points, BLOCK):
                idx = start + offs
                m = idx < n_points
                px = tl.load(base + idx * s_pn, mask=m, other=0.0).to(tl.float32)
                py = tl.load(base + idx * s_pn + 1, mask=m, other=0.0).to(tl.float32)
                pz = tl.load(base + idx * s_pn + 2, mask=m, other=0.0).to(tl.float32)
                dx = px - lx
                dy = py - ly
                dz = pz - lz
                d = tl.minimum(tl.load(srow + idx, mask=m, other=-1.0), dx * dx + dy * dy + dz * dz)
                tl.store(srow + idx, d, mask=m)
                d = tl.where(m, d, -1.0)
                better = d > run_val          # strict: earlier chunks win ties
                run_idx = tl.where(better, idx, run_idx)
                run_val = tl.where(better, d, run_val)
            top = tl.max(run_val, axis=0)
            far = tl.min(tl.where(run_val == top, run_idx, n_points), axis=0).to(tl.int64)
            tl.store(out + b * s_ob + i, far)
            lx = tl.load(base + far * s_pn).to(tl.float32)
            ly = tl.load(base + far * s_pn + 1).to(tl.float32)
            lz = tl.load(base + far * s_pn + 2).to(tl.float32)


def farthest_point_sample_triton(points: torch.Tensor, n_samples: int) -> torch.Tensor:
    batch, n, _ = points.shape
    if points.stride(2) != 1:
        points = points.contiguous()
    out = triton_utils.new_output((batch, n_samples), torch.int64, points.device)
    one_block = n <= FPS_MAX_BLOCK
    block = next_pow2(n) if one_block else 2048
    scratch = points if one_block else torch.empty(batch, n, dtype=torch.float32, device=points.device)
    _fps_kernel[(batch,)](points, out, scratch, n, n_samples, points.stride(0), points.stride(1), out.stride(0),
                          BLOCK=block, ONE_BLOCK=one_block, num_warps=16 if block >= 4096 else (8 if block >= 1024 else 4))
    return out


@triton.jit
def _knn_kernel(query, points, out, n_query, n_points, k,
                s_qb, s_qm, s_pb, s_pn, s_ob, s_om,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    b = tl.program_id(1).to(tl.int64)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    mm = offs_m < n_query
    qb = query + b * s_qb + offs_m * s_qm
    qx = tl.load(qb, mask=mm, other=0.0).to(tl.float32)
    qy = tl.load(qb + 1, mask=mm, other=0.0).to(tl.float32)
    qz = tl.load(qb + 2, mask=mm, other=0.0).to(tl.float32)
    pbase = points + b * s_pb
    offs_n = tl.arange(0, BLOCK_N)
    last_d = tl.full((BLOCK_M,), -1.0, tl.float32)
    last_i = tl.full((BLOCK_M,), -1, tl.int32)
    for j in range(0, k):
        best_d = tl.full((BLOCK_M,), float("inf"), tl.float32)
        best_i = tl.full((BLOCK_M,), 2147483647, tl.int32)
        for start in range(0, n_points, BLOCK_N):
            idx = start + offs_n
            mn = idx < n_points
            px = tl.load(pbase + idx * s_pn, mask=mn, other=0.0).to(tl.float32)
            py = tl.load(pbase + idx * s_pn + 1, mask=mn, other=0.0).to(tl.float32)
            pz = tl.load(pbase + idx * s_pn + 2, mask=mn, other=0.0).to(tl.float32)
            dx = qx[:, None] - px[None, :]
            dy = qy[:, None] - py[None, :]
            dz = qz[:, None] - pz[None, :]
            d = dx * dx + dy * dy + dz * dz
            # candidates come strictly after the last pair taken, in (distance, index) order
            after = (d > last_d[:, None]) | ((d == last_d[:, None]) & (idx[None, :] > last_i[:, None]))
            d = tl.where(after & mn[None, :], d, float("inf"))
            cmin = tl.min(d, axis=1)
            cidx = tl.min(tl.where(d == cmin[:, None], idx[None, :], 2147483647), axis=1)
            take = (cmin < best_d) | ((cmin == best_d) & (cidx < best_i))
            best_i = tl.where(take, cidx, best_i)
            best_d = tl.where(take, cmin, best_d)
        tl.store(out + b * s_ob + offs_m * s_om + j, best_i.to(tl.int64), mask=mm)
        last_d = best_d
        last_i = best_i


KNN_CONFIG = (8, 512, 4)   # (BLOCK_M, BLOCK_N, num_warps), from the benchmark's sweep on an H100


def knn_triton(query: torch.Tensor, points: torch.Tensor, k: int, config=None) -> torch.Tensor:
    batch, m, _ = query.shape
    n = points.shape[1]
    query = query if query.stride(2) == 1 else query.contiguous()
    points = points if points.stride(2) == 1 else points.contiguous()
    out = triton_utils.new_output((batch, m, k), torch.int64, query.device)
    bm, bn, warps = config or KNN_CONFIG
    block_m = min(bm, next_pow2(m))
    block_n = min(bn, next_pow2(n))
    grid = (triton.cdiv(m, block_m), batch)
    _knn_kernel[grid](query, points, out, m, n, k, query.stride(0), query.stride(1), points.stride(0),
                      points.stride(1), out.stride(0), out.stride(1), BLOCK_M=block_m, BLOCK_N=block_n, num_warps=warps)
    return out
