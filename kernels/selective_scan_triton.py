"""Mamba-1 selective scan in Triton, forward and backward, wrapped in an autograd Function.

Layout: one program owns (batch b, BLOCK_D channels) and walks the sequence in chunks of
T steps. Inside a chunk the linear recurrence h_t = a_t h_{t-1} + b_t runs as a parallel
`tl.associative_scan` over a (BLOCK_D, dstate, T) tile; the state crosses chunks in
registers, in float32 whatever the input dtype. The forward pass saves the state at each
chunk start (batch*dim*dstate*L/T floats, 1/T of what storing every h would take) so the
backward pass can rebuild h chunk by chunk while it runs the adjoint recurrence
g_t = C_t dy_t + a_{t+1} g_{t+1} backwards (a reverse associative scan). dB and dC sum
over channels, so each program adds its partial sums with atomics.

Minimum bytes (each input read once, each output written once), fp32, no z:
forward 4*(3*b*d*L + 2*b*n*L), backward reads u, delta, B, C, dout and writes du, ddelta,
dB, dC: 4*(5*b*d*L + 4*b*n*L) (+ z, dz with gating).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import triton_utils
from .triton_utils import LOG2E, next_pow2, sigmoid, softplus


@triton.jit
def _combine(a1, b1, a2, b2):
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _scan_fwd_kernel(
    u, delta, A, B, C, D, z, delta_bias, out, last_state, chunk_states,
    dim, dstate, L, n_chunks,
    s_ub, s_ud, s_db, s_dd, s_Bb, s_Bn, s_Cb, s_Cn, s_zb, s_zd, s_ob, s_od,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE_STATES: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
):
    pid_d = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_t = tl.arange(0, T)
    md = offs_d < dim
    mn = offs_n < dstate
    mdn = md[:, None] & mn[None, :]
    a2 = tl.load(A + offs_d[:, None] * dstate + offs_n[None, :], mask=mdn, other=0.0).to(tl.float32) * LOG2E
    if HAS_BIAS:
        bias = tl.load(delta_bias + offs_d, mask=md, other=0.0).to(tl.float32)
    if HAS_D:
        dv = tl.load(D + offs_d, mask=md, other=0.0).to(tl.float32)
    h = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    state_ptr = (b * dim + offs_d[:, None]) * dstate + offs_n[None, :]
    for c in range(0, n_chunks):
        tt = c * T + offs_t
        mt = tt < L
        m2 = md[:, None] & mt[None, :]
        mnt = mn[:, None] & mt[None, :]
        uv = tl.load(u + b * s_ub + offs_d[:, None] * s_ud + tt[None, :], mask=m2, other=0.0).to(tl.float32)
        dl = tl.load(delta + b * s_db + offs_d[:, None] * s_dd + tt[None, :], mask=m2, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dl += bias[:, None]
        if SOFTPLUS:
            dl = softplus(dl)
        dl = tl.where(m2, dl, 0.0)          # padded steps: a = 1, b = 0, so h carries through
        bt = tl.load(B + b * s_Bb + offs_n[:, None] * s_Bn + tt[None, :], mask=mnt, other=0.0).to(tl.float32)
        ct = tl.load(C + b * s_Cb + offs_n[:, None] * s_Cn + tt[None, :], mask=mnt, other=0.0).to(tl.float32)
        if SAVE_STATES:
            tl.store(chunk_states + state_ptr + (b * (n_chunks - 1) + c) * dim * dstate, h, mask=mdn)
        da = tl.exp2(dl[:, None, :] * a2[:, :, None])
        dbu = (dl * uv)[:, None, :] * bt[None, :, :]
        pa, pb = tl.associative_scan((da, dbu), 2, _combine)
        hs = pb + pa * h[:, :, None]
        y = tl.sum(hs * ct[None, :, :], axis=1)
        if HAS_D:
            y += uv * dv[:, None]
        if HAS_Z:
            zv = tl.load(z + b * s_zb + offs_d[:, None] * s_zd + tt[None, :], mask=m2, other=0.0).to(tl.float32)
            y *= zv * sigmoid(zv)
        tl.store(out + b * s_ob + offs_d[:, None] * s_od + tt[None, :], y.to(out.dtype.element_ty), mask=m2)
        h = tl.sum(tl.where(offs_t[None, None, :] == T - 1, hs, 0.0), axis=2)
    tl.store(last_state + state_ptr, h, mask=mdn)


@triton.jit
def _cols4(x, R: tl.constexpr):
    """(R, 4) tile -> its 4 columns (register moves, no memory)."""
    a, b = tl.split(tl.reshape(x, (R, 2, 2)))
    x0, x2 = tl.split(a)
    x1, x3 = tl.split(b)
    return x0, x1, x2, x3


@triton.jit
def _join4(x0, x1, x2, x3, R: tl.constexpr):
    return tl.reshape(tl.join(tl.join(x0, x2), tl.join(x1, x3)), (R, 4))


@triton.jit
def _cols8(x, R: tl.constexpr):
    ev, od = tl.split(tl.reshape(x, (R, 4, 2)))
    x0, x2, x4, x6 = _cols4(ev, R)
    x1, x3, x5, x7 = _cols4(od, R)
    return x0, x1, x2, x3, x4, x5, x6, x7


@triton.jit
def _join8(x0, x1, x2, x3, x4, x5, x6, x7, R: tl.constexpr):
    return tl.reshape(tl.join(_join4(x0, x2, x4, x6, R), _join4(x1, x3, x5, x7, R)), (R, 8))


@triton.jit
def _seq_step(h, a2, dl, uf, bv, cv):
    h = h * tl.exp2(a2 * dl[None, :]) + bv[:, None] * (dl * uf)[None, :]
    return h, tl.sum(h * cv[:, None], axis=0)


@triton.jit
def _scan_fwd_seq_kernel(
    u, delta, A, B, C, D, z, delta_bias, out, last_state, chunk_states,
    dim, dstate, L, n_chunks,
    s_ub, s_ud, s_db, s_dd, s_Bb, s_Bn, s_Cb, s_Cn, s_zb, s_zd, s_ob, s_od,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE_STATES: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
    UNROLL: tl.constexpr = 4,
):
    """Time-sequential variant: the (dstate, BLOCK_D) state lives in registers and each step
    costs one exp2 and two FMAs per element. UNROLL (4 or 8) steps per iteration: their inputs come in
    as one (.., UNROLL) tile (fewer memory instructions) and everything that does not depend
    on h (softplus, gating, D*u) runs for all of them at once, which gives the scheduler
    independent work to hide latencies behind; the next tile is loaded while
    these compute."""
    pid_d = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_j = tl.arange(0, UNROLL)
    md = offs_d < dim
    mn = offs_n < dstate
    mnd = mn[:, None] & md[None, :]
    a2 = tl.load(A + offs_d[None, :] * dstate + offs_n[:, None], mask=mnd, other=0.0).to(tl.float32) * LOG2E
    if HAS_BIAS:
        bias = tl.load(delta_bias + offs_d, mask=md, other=0.0).to(tl.float32)
    if HAS_D:
        dv = tl.load(D + offs_d, mask=md, other=0.0).to(tl.float32)
    u_p = u + b * s_ub + offs_d[:, None] * s_ud + offs_j[None, :]            # (BLOCK_D, 4)
    d_p = delta + b * s_db + offs_d[:, None] * s_dd + offs_j[None, :]
    z_p = z + b * s_zb + offs_d[:, None] * s_zd + offs_j[None, :]
    o_p = out + b * s_ob + offs_d[:, None] * s_od + offs_j[None, :]
    b_p = B + b * s_Bb + offs_n[:, None] * s_Bn + offs_j[None, :]           # (BLOCK_N, 4)
    c_p = C + b * s_Cb + offs_n[:, None] * s_Cn + offs_j[None, :]
    h = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    state_ptr = (b * dim + offs_d[None, :]) * dstate + offs_n[:, None]
    mdj = md[:, None] & (offs_j[None, :] < L)
    mnj = mn[:, None] & (offs_j[None, :] < L)
    uv = tl.load(u_p, mask=mdj, other=0.0)
    dlv = tl.load(d_p, mask=mdj, other=0.0)
    bv = tl.load(b_p, mask=mnj, other=0.0)
    cv = tl.load(c_p, mask=mnj, other=0.0)
    if HAS_Z:
        zv = tl.load(z_p, mask=mdj, other=0.0)
    for c in range(0, n_chunks):
        if SAVE_STATES:
            tl.store(chunk_states + state_ptr + (b * (n_chunks - 1) + c) * dim * dstate, h, mask=mnd)
        t_end = tl.minimum(c * T + T, L)
        for t in range(c * T, t_end, UNROLL):
            nxt = t + UNROLL
            mdj = md[:, None] & (offs_j[None, :] + t < L)
            mdj_n = md[:, None] & (offs_j[None, :] + nxt < L)
            mnj_n = mn[:, None] & (offs_j[None, :] + nxt < L)
            uv_n = tl.load(u_p + nxt, mask=mdj_n, other=0.0)
            dlv_n = tl.load(d_p + nxt, mask=mdj_n, other=0.0)
            bv_n = tl.load(b_p + nxt, mask=mnj_n, other=0.0)
            cv_n = tl.load(c_p + nxt, mask=mnj_n, other=0.0)
            if HAS_Z:
                zv_n = tl.load(z_p + nxt, mask=mdj_n, other=0.0)
            uf = uv.to(tl.float32)
            dl = dlv.to(tl.float32)
            if HAS_BIAS:
                dl += bias[:, None]
            if SOFTPLUS:
                dl = softplus(dl)
            dl = tl.where(mdj, dl, 0.0)          # steps past L: a = 1, b = 0, h unchanged
            if UNROLL == 4:
                u0, u1, u2, u3 = _cols4(uf, BLOCK_D)
                d0, d1, d2, d3 = _cols4(dl, BLOCK_D)
                b0, b1, b2, b3 = _cols4(bv.to(tl.float32), BLOCK_N)
                c0, c1, c2, c3 = _cols4(cv.to(tl.float32), BLOCK_N)
                h, y0 = _seq_step(h, a2, d0, u0, b0, c0)
                h, y1 = _seq_step(h, a2, d1, u1, b1, c1)
                h, y2 = _seq_step(h, a2, d2, u2, b2, c2)
                h, y3 = _seq_step(h, a2, d3, u3, b3, c3)
                y = _join4(y0, y1, y2, y3, BLOCK_D)
            else:
                u0, u1, u2, u3, u4, u5, u6, u7 = _cols8(uf, BLOCK_D)
                d0, d1, d2, d3, d4, d5, d6, d7 = _cols8(dl, BLOCK_D)
                b0, b1, b2, b3, b4, b5, b6, b7 = _cols8(bv.to(tl.float32), BLOCK_N)
                c0, c1, c2, c3, c4, c5, c6, c7 = _cols8(cv.to(tl.float32), BLOCK_N)
                h, y0 = _seq_step(h, a2, d0, u0, b0, c0)
                h, y1 = _seq_step(h, a2, d1, u1, b1, c1)
                h, y2 = _seq_step(h, a2, d2, u2, b2, c2)
                h, y3 = _seq_step(h, a2, d3, u3, b3, c3)
                h, y4 = _seq_step(h, a2, d4, u4, b4, c4)
                h, y5 = _seq_step(h, a2, d5, u5, b5, c5)
                h, y6 = _seq_step(h, a2, d6, u6, b6, c6)
                h, y7 = _seq_step(h, a2, d7, u7, b7, c7)
                y = _join8(y0, y1, y2, y3, y4, y5, y6, y7, BLOCK_D)
            if HAS_D:
                y += uf * dv[:, None]
            if HAS_Z:
                zf = zv.to(tl.float32)
                y *= zf * sigmoid(zf)
                zv = zv_n
            tl.store(o_p + t, y.to(out.dtype.element_ty), mask=mdj)
            uv = uv_n
            dlv = dlv_n
            bv = bv_n
            cv = cv_n
    tl.store(last_state + state_ptr, h, mask=mnd)


@triton.jit
def _seq_adjoint(g, a_next, h, a2, a_nat, dl, uf, bv, cv, dy):
    """One step of the backward recurrence; returns the new g, this step's decay (the next
    a_next) and the step's gradient pieces."""
    g = g * a_next + cv[:, None] * dy[None, :]
    da = tl.exp2(a2 * dl[None, :])
    dlu = dl * uf
    dec = h - bv[:, None] * dlu[None, :]                 # = a_t * h_{t-1}
    gb = tl.sum(g * bv[:, None], axis=0)                 # (BLOCK_D,)
    ddl = tl.sum(g * dec * a_nat, axis=0) + gb * uf
    ga = g * dec * dl[None, :]                           # contribution to dA
    db = tl.sum(g * dlu[None, :], axis=1)                # (BLOCK_N,)
    dc = tl.sum(h * dy[None, :], axis=1)
    return g, da, gb * dl, ddl, ga, db, dc


@triton.jit
def _scan_bwd_seq_kernel(
    u, delta, A, B, C, D, z, delta_bias, dout, chunk_states, dlast, scratch,
    du, ddelta, dA, dB, dC, dD, dz, dbias,
    dim, dstate, L, n_chunks,
    s_ub, s_ud, s_db, s_dd, s_Bb, s_Bn, s_Cb, s_Cn, s_zb, s_zd, s_gb, s_gd,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_DLAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
    ATOMIC_BC: tl.constexpr = True,
):
    """Time-sequential backward. Per chunk (last first): rebuild h over the chunk from its
    saved start state into a per-program scratch (it stays in L2), then walk the chunk
    backwards with the adjoint g_t = C_t dy_t + a_{t+1} g_{t+1}, four steps per iteration.
    dB and dC sum over channels: each program adds its (dstate, 4) partials atomically."""
    pid_d = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_j = tl.arange(0, 4)
    md = offs_d < dim
    mn = offs_n < dstate
    mnd = mn[:, None] & md[None, :]
    a_nat = tl.load(A + offs_d[None, :] * dstate + offs_n[:, None], mask=mnd, other=0.0).to(tl.float32)
    a2 = a_nat * LOG2E
    if HAS_BIAS:
        bias = tl.load(delta_bias + offs_d, mask=md, other=0.0).to(tl.float32)
    if HAS_D:
        dv = tl.load(D + offs_d, mask=md, other=0.0).to(tl.float32)
    u_off = b * s_ub + offs_d[:, None] * s_ud + offs_j[None, :]               # (BLOCK_D, 4)
    d_off = b * s_db + offs_d[:, None] * s_dd + offs_j[None, :]
    z_off = b * s_zb + offs_d[:, None] * s_zd + offs_j[None, :]
    g_off = b * s_gb + offs_d[:, None] * s_gd + offs_j[None, :]
    b_p = B + b * s_Bb + offs_n[:, None] * s_Bn + offs_j[None, :]            # (BLOCK_N, 4)
    c_p = C + b * s_Cb + offs_n[:, None] * s_Cn + offs_j[None, :]
    if ATOMIC_BC:   # dB, dC: (batch, dstate, L) fp32, summed over programs with atomics
        bc_grad = (b * dstate + offs_n[:, None]) * L + offs_j[None, :]
    else:           # per-program partials (dim / BLOCK_D, batch, dstate, L), summed afterwards
        bc_grad = ((pid_d * tl.num_programs(1) + b) * dstate + offs_n[:, None]) * L + offs_j[None, :]
    state_ptr = (b * dim + offs_d[None, :]) * dstate + offs_n[:, None]
    tile = offs_n[:, None] * BLOCK_D + (offs_d[None, :] - pid_d * BLOCK_D)
    my_scratch = scratch + (tl.program_id(1).to(tl.int64) * tl.num_programs(0) + pid_d) * (T * BLOCK_N * BLOCK_D) + tile
    if HAS_DLAST:
        g = tl.load(dlast + state_ptr, mask=mnd, other=0.0).to(tl.float32)
    else:
        g = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    a_next = tl.full((BLOCK_N, BLOCK_D), 1.0, tl.float32)
    dA_acc = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    dD_acc = tl.zeros((BLOCK_D, 4), tl.float32)
    dbias_acc = tl.zeros((BLOCK_D, 4), tl.float32)
    for cc in range(0, n_chunks):
        c = n_chunks - 1 - cc
        t0 = c * T
        t_end = tl.minimum(t0 + T, L)
        # 1) rebuild h_t over the chunk
        h = tl.load(chunk_states + state_ptr + (b * (n_chunks - 1) + c) * dim * dstate, mask=mnd, other=0.0)
        for t in range(t0, t_end, 4):
            mdj = md[:, None] & (offs_j[None, :] + t < L)
            mnj = mn[:, None] & (offs_j[None, :] + t < L)
            uf = tl.load(u + u_off + t, mask=mdj, other=0.0).to(tl.float32)
            dl = tl.load(delta + d_off + t, mask=mdj, other=0.0).to(tl.float32)
            if HAS_BIAS:
                dl += bias[:, None]
            if SOFTPLUS:
                dl = softplus(dl)
            dl = tl.where(mdj, dl, 0.0)
            u0, u1, u2, u3 = _cols4(uf, BLOCK_D)
            d0, d1, d2, d3 = _cols4(dl, BLOCK_D)
            b0, b1, b2, b3 = _cols4(tl.load(b_p + t, mask=mnj, other=0.0).to(tl.float32), BLOCK_N)
            sp = my_scratch + (t - t0) * (BLOCK_N * BLOCK_D)
            h = h * tl.exp2(a2 * d0[None, :]) + b0[:, None] * (d0 * u0)[None, :]
            tl.store(sp, h)
            h = h * tl.exp2(a2 * d1[None, :]) + b1[:, None] * (d1 * u1)[None, :]
            tl.store(sp + BLOCK_N * BLOCK_D, h)
            h = h * tl.exp2(a2 * d2[None, :]) + b2[:, None] * (d2 * u2)[None, :]
            tl.store(sp + 2 * BLOCK_N * BLOCK_D, h)
            h = h * tl.exp2(a2 * d3[None, :]) + b3[:, None] * (d3 * u3)[None, :]
            tl.store(sp + 3 * BLOCK_N * BLOCK_D, h)
        tl.debug_barrier()
        # 2) walk it backwards
        n_it = tl.cdiv(t_end - t0, 4)
        for it in range(0, n_it):
            t = t0 + (n_it - 1 - it) * 4
            mdj = md[:, None] & (offs_j[None, :] + t < L)
            mnj = mn[:, None] & (offs_j[None, :] + t < L)
            uf = tl.load(u + u_off + t, mask=mdj, other=0.0).to(tl.float32)
            dl_raw = tl.load(delta + d_off + t, mask=mdj, other=0.0).to(tl.float32)
            if HAS_BIAS:
                dl_raw += bias[:, None]
            if SOFTPLUS:
                dl = softplus(dl_raw)
            else:
                dl = dl_raw
            dl = tl.where(mdj, dl, 0.0)
            go = tl.load(dout + g_off + t, mask=mdj, other=0.0).to(tl.float32)
            bt = tl.load(b_p + t, mask=mnj, other=0.0).to(tl.float32)
            ct = tl.load(c_p + t, mask=mnj, other=0.0).to(tl.float32)
            sp = my_scratch + (t - t0) * (BLOCK_N * BLOCK_D)
            h0 = tl.load(sp)
            h1 = tl.load(sp + BLOCK_N * BLOCK_D)
            h2 = tl.load(sp + 2 * BLOCK_N * BLOCK_D)
            h3 = tl.load(sp + 3 * BLOCK_N * BLOCK_D)
            if HAS_Z:
                zf = tl.load(z + z_off + t, mask=mdj, other=0.0).to(tl.float32)
                sz = sigmoid(zf)
                c0, c1, c2, c3 = _cols4(ct, BLOCK_N)
                y = _join4(tl.sum(h0 * c0[:, None], axis=0), tl.sum(h1 * c1[:, None], axis=0),
                           tl.sum(h2 * c2[:, None], axis=0), tl.sum(h3 * c3[:, None], axis=0), BLOCK_D)
                if HAS_D:
                    y += uf * dv[:, None]
                dzv = go * y * sz * (1.0 + zf * (1.0 - sz))
                tl.store(dz + z_off + t, dzv.to(dz.dtype.element_ty), mask=mdj)
                dy = go * zf * sz
            else:
                dy = go
            dy = tl.where(mdj, dy, 0.0)
            u0, u1, u2, u3 = _cols4(uf, BLOCK_D)
            d0, d1, d2, d3 = _cols4(dl, BLOCK_D)
            y0, y1, y2, y3 = _cols4(dy, BLOCK_D)
            b0, b1, b2, b3 = _cols4(bt, BLOCK_N)
            c0, c1, c2, c3 = _cols4(ct, BLOCK_N)
            g, a_next, du3, dd3, ga, db3, dc3 = _seq_adjoint(g, a_next, h3, a2, a_nat, d3, u3, b3, c3, y3)
            dA_acc += ga
            g, a_next, du2, dd2, ga, db2, dc2 = _seq_adjoint(g, a_next, h2, a2, a_nat, d2, u2, b2, c2, y2)
            dA_acc += ga
            g, a_next, du1, dd1, ga, db1, dc1 = _seq_adjoint(g, a_next, h1, a2, a_nat, d1, u1, b1, c1, y1)
            dA_acc += ga
            g, a_next, du0, dd0, ga, db0, dc0 = _seq_adjoint(g, a_next, h0, a2, a_nat, d0, u0, b0, c0, y0)
            dA_acc += ga
            duv = _join4(du0, du1, du2, du3, BLOCK_D)
            ddl = _join4(dd0, dd1, dd2, dd3, BLOCK_D)
            if HAS_D:
                duv += dy * dv[:, None]
                dD_acc += dy * uf
            if SOFTPLUS:
                ddl = ddl * sigmoid(dl_raw)
            ddl = tl.where(mdj, ddl, 0.0)
            dbias_acc += ddl
            tl.store(du + u_off + t, duv.to(du.dtype.element_ty), mask=mdj)
            tl.store(ddelta + d_off + t, ddl.to(ddelta.dtype.element_ty), mask=mdj)
            if ATOMIC_BC:
                tl.atomic_add(dB + bc_grad + t, _join4(db0, db1, db2, db3, BLOCK_N), mask=mnj)
                tl.atomic_add(dC + bc_grad + t, _join4(dc0, dc1, dc2, dc3, BLOCK_N), mask=mnj)
            else:
                tl.store(dB + bc_grad + t, _join4(db0, db1, db2, db3, BLOCK_N), mask=mnj)
                tl.store(dC + bc_grad + t, _join4(dc0, dc1, dc2, dc3, BLOCK_N), mask=mnj)
        tl.debug_barrier()
    tl.atomic_add(dA + offs_d[None, :] * dstate + offs_n[:, None], dA_acc, mask=mnd)
    if HAS_D:
        tl.atomic_add(dD + offs_d, tl.sum(dD_acc, axis=1), mask=md)
    if HAS_BIAS:
        tl.atomic_add(dbias + offs_d, tl.sum(dbias_acc, axis=1), mask=md)


@triton.jit
def _fwd_keep(h, a2, dl, uf, bv, cv):
    """Forward step that also returns the decay, so the backward reuses it (one exp2 per step)."""
    da = tl.exp2(a2 * dl[None, :])
    h = h * da + bv[:, None] * (dl * uf)[None, :]
    return h, da, tl.sum(h * cv[:, None], axis=0)


@triton.jit
def _adjoint_keep(g, a_next, h, da, a_nat, dl, uf, bv, cv, dy):
    g = g * a_next + cv[:, None] * dy[None, :]
    dlu = dl * uf
    dec = h - bv[:, None] * dlu[None, :]                 # = a_t * h_{t-1}
    gb = tl.sum(g * bv[:, None], axis=0)
    gdec = g * dec
    ddl = tl.sum(gdec * a_nat, axis=0) + gb * uf
    db = tl.sum(g * dlu[None, :], axis=1)
    dc = tl.sum(h * dy[None, :], axis=1)
    return g, da, gb * dl, ddl, gdec * dl[None, :], db, dc


@triton.jit
def _scan_bwd_reg_kernel(
    u, delta, A, B, C, D, z, delta_bias, dout, chunk_states, dlast,
    du, ddelta, dA, dB, dC, dD, dz, dbias,
    dim, dstate, L, n_chunks,
    s_ub, s_ud, s_db, s_dd, s_Bb, s_Bn, s_Cb, s_Cn, s_zb, s_zd, s_gb, s_gd,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_DLAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Backward with the forward's states saved every 8 steps: per group of 8 steps (last
    first) rebuild h_1..h_8 and their decays in registers from the saved state, then run the
    adjoint g_t = C_t dy_t + a_{t+1} g_{t+1} back over them. No scratch, no barriers, one
    exp2 per step. dB, dC go out as per-program partials (summed afterwards)."""
    pid_d = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_j = tl.arange(0, 8)
    md = offs_d < dim
    mn = offs_n < dstate
    mnd = mn[:, None] & md[None, :]
    a_nat = tl.load(A + offs_d[None, :] * dstate + offs_n[:, None], mask=mnd, other=0.0).to(tl.float32)
    a2 = a_nat * LOG2E
    if HAS_BIAS:
        bias = tl.load(delta_bias + offs_d, mask=md, other=0.0).to(tl.float32)
    if HAS_D:
        dv = tl.load(D + offs_d, mask=md, other=0.0).to(tl.float32)
    u_off = b * s_ub + offs_d[:, None] * s_ud + offs_j[None, :]
    d_off = b * s_db + offs_d[:, None] * s_dd + offs_j[None, :]
    z_off = b * s_zb + offs_d[:, None] * s_zd + offs_j[None, :]
    g_off = b * s_gb + offs_d[:, None] * s_gd + offs_j[None, :]
    b_p = B + b * s_Bb + offs_n[:, None] * s_Bn + offs_j[None, :]
    c_p = C + b * s_Cb + offs_n[:, None] * s_Cn + offs_j[None, :]
    bc_part = ((pid_d * tl.num_programs(1) + b) * dstate + offs_n[:, None]) * L + offs_j[None, :]
    state_ptr = (b * dim + offs_d[None, :]) * dstate + offs_n[:, None]
    if HAS_DLAST:
        g = tl.load(dlast + state_ptr, mask=mnd, other=0.0).to(tl.float32)
    else:
        g = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    a_next = tl.full((BLOCK_N, BLOCK_D), 1.0, tl.float32)
    dA_acc = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    dD_acc = tl.zeros((BLOCK_D, 8), tl.float32)
    dbias_acc = tl.zeros((BLOCK_D, 8), tl.float32)
    for cc in range(0, n_chunks):
        c = n_chunks - 1 - cc
        t = c * 8
        mdj = md[:, None] & (offs_j[None, :] + t < L)
        mnj = mn[:, None] & (offs_j[None, :] + t < L)
        uf = tl.load(u + u_off + t, mask=mdj, other=0.0).to(tl.float32)
        dl_raw = tl.load(delta + d_off + t, mask=mdj, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dl_raw += bias[:, None]
        if SOFTPLUS:
            dl = softplus(dl_raw)
        else:
            dl = dl_raw
        dl = tl.where(mdj, dl, 0.0)
        go = tl.load(dout + g_off + t, mask=mdj, other=0.0).to(tl.float32)
        bt = tl.load(b_p + t, mask=mnj, other=0.0).to(tl.float32)
        ct = tl.load(c_p + t, mask=mnj, other=0.0).to(tl.float32)
        u0, u1, u2, u3, u4, u5, u6, u7 = _cols8(uf, BLOCK_D)
        d0, d1, d2, d3, d4, d5, d6, d7 = _cols8(dl, BLOCK_D)
        b0, b1, b2, b3, b4, b5, b6, b7 = _cols8(bt, BLOCK_N)
        c0, c1, c2, c3, c4, c5, c6, c7 = _cols8(ct, BLOCK_N)
        h = tl.load(chunk_states + state_ptr + (b * (n_chunks - 1) + c) * dim * dstate, mask=mnd, other=0.0)
        h0, e0, y0 = _fwd_keep(h, a2, d0, u0, b0, c0)
        h1, e1, y1 = _fwd_keep(h0, a2, d1, u1, b1, c1)
        h2, e2, y2 = _fwd_keep(h1, a2, d2, u2, b2, c2)
        h3, e3, y3 = _fwd_keep(h2, a2, d3, u3, b3, c3)
        h4, e4, y4 = _fwd_keep(h3, a2, d4, u4, b4, c4)
        h5, e5, y5 = _fwd_keep(h4, a2, d5, u5, b5, c5)
        h6, e6, y6 = _fwd_keep(h5, a2, d6, u6, b6, c6)
        h7, e7, y7 = _fwd_keep(h6, a2, d7, u7, b7, c7)
        if HAS_Z:
            zf = tl.load(z + z_off + t, mask=mdj, other=0.0).to(tl.float32)
            sz = sigmoid(zf)
            y = _join8(y0, y1, y2, y3, y4, y5, y6, y7, BLOCK_D)
            if HAS_D:
                y += uf * dv[:, None]
            dzv = go * y * sz * (1.0 + zf * (1.0 - sz))
            tl.store(dz + z_off + t, dzv.to(dz.dtype.element_ty), mask=mdj)
            dy = go * zf * sz
        else:
            dy = go
        dy = tl.where(mdj, dy, 0.0)
        q0, q1, q2, q3, q4, q5, q6, q7 = _cols8(dy, BLOCK_D)
        g, a_next, du7, dd7, ga, db7, dc7 = _adjoint_keep(g, a_next, h7, e7, a_nat, d7, u7, b7, c7, q7)
        dA_acc += ga
        g, a_next, du6, dd6, ga, db6, dc6 = _adjoint_keep(g, a_next, h6, e6, a_nat, d6, u6, b6, c6, q6)
        dA_acc += ga
        g, a_next, du5, dd5, ga, db5, dc5 = _adjoint_keep(g, a_next, h5, e5, a_nat, d5, u5, b5, c5, q5)
        dA_acc += ga
        g, a_next, du4, dd4, ga, db4, dc4 = _adjoint_keep(g, a_next, h4, e4, a_nat, d4, u4, b4, c4, q4)
        dA_acc += ga
        g, a_next, du3, dd3, ga, db3, dc3 = _adjoint_keep(g, a_next, h3, e3, a_nat, d3, u3, b3, c3, q3)
        dA_acc += ga
        g, a_next, du2, dd2, ga, db2, dc2 = _adjoint_keep(g, a_next, h2, e2, a_nat, d2, u2, b2, c2, q2)
        dA_acc += ga
        g, a_next, du1, dd1, ga, db1, dc1 = _adjoint_keep(g, a_next, h1, e1, a_nat, d1, u1, b1, c1, q1)
        dA_acc += ga
        g, a_next, du0, dd0, ga, db0, dc0 = _adjoint_keep(g, a_next, h0, e0, a_nat, d0, u0, b0, c0, q0)
        dA_acc += ga
        duv = _join8(du0, du1, du2, du3, du4, du5, du6, du7, BLOCK_D)
        ddl = _join8(dd0, dd1, dd2, dd3, dd4, dd5, dd6, dd7, BLOCK_D)
        if HAS_D:
            duv += dy * dv[:, None]
            dD_acc += dy * uf
        if SOFTPLUS:
            ddl = ddl * sigmoid(dl_raw)
        ddl = tl.where(mdj, ddl, 0.0)
        dbias_acc += ddl
        tl.store(du + u_off + t, duv.to(du.dtype.element_ty), mask=mdj)
        tl.store(ddelta + d_off + t, ddl.to(ddelta.dtype.element_ty), mask=mdj)
        tl.store(dB + bc_part + t, _join8(db0, db1, db2, db3, db4, db5, db6, db7, BLOCK_N), mask=mnj)
        tl.store(dC + bc_part + t, _join8(dc0, dc1, dc2, dc3, dc4, dc5, dc6, dc7, BLOCK_N), mask=mnj)
    tl.atomic_add(dA + offs_d[None, :] * dstate + offs_n[:, None], dA_acc, mask=mnd)
    if HAS_D:
        tl.atomic_add(dD + offs_d, tl.sum(dD_acc, axis=1), mask=md)
    if HAS_BIAS:
        tl.atomic_add(dbias + offs_d, tl.sum(dbias_acc, axis=1), mask=md)


@triton.jit
def _scan_bwd_kernel(
    u, delta, A, B, C, D, z, delta_bias, dout, chunk_states, dlast,
    du, ddelta, dA, dB, dC, dD, dz, dbias,
    dim, dstate, L, n_chunks,
    s_ub, s_ud, s_db, s_dd, s_Bb, s_Bn, s_Cb, s_Cn, s_zb, s_zd, s_gb, s_gd,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_DLAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
):
    pid_d = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_t = tl.arange(0, T)
    md = offs_d < dim
    mn = offs_n < dstate
    mdn = md[:, None] & mn[None, :]
    a_nat = tl.load(A + offs_d[:, None] * dstate + offs_n[None, :], mask=mdn, other=0.0).to(tl.float32)
    a2 = a_nat * LOG2E
    if HAS_BIAS:
        bias = tl.load(delta_bias + offs_d, mask=md, other=0.0).to(tl.float32)
    if HAS_D:
        dv = tl.load(D + offs_d, mask=md, other=0.0).to(tl.float32)
    state_ptr = (b * dim + offs_d[:, None]) * dstate + offs_n[None, :]
    if HAS_DLAST:
        g_carry = tl.load(dlast + state_ptr, mask=mdn, other=0.0).to(tl.float32)
    else:
        g_carry = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dA_acc = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dD_acc = tl.zeros((BLOCK_D,), tl.float32)
    dbias_acc = tl.zeros((BLOCK_D,), tl.float32)
    for cc in range(0, n_chunks):
        c = n_chunks - 1 - cc
        tt = c * T + offs_t
        mt = tt < L
        m2 = md[:, None] & mt[None, :]
        mnt = mn[:, None] & mt[None, :]
        in_off = offs_d[:, None] * s_ud + tt[None, :]
        uv = tl.load(u + b * s_ub + in_off, mask=m2, other=0.0).to(tl.float32)
        d_off = b * s_db + offs_d[:, None] * s_dd + tt[None, :]
        dl_raw = tl.load(delta + d_off, mask=m2, other=0.0).to(tl.float32)
        dn_raw = tl.load(delta + d_off + 1, mask=md[:, None] & (tt[None, :] + 1 < L), other=0.0).to(tl.float32)
        if HAS_BIAS:
            dl_raw += bias[:, None]
            dn_raw += bias[:, None]
        if SOFTPLUS:
            dl = softplus(dl_raw)
            dn = softplus(dn_raw)
        else:
            dl = dl_raw
            dn = dn_raw
        dl = tl.where(m2, dl, 0.0)
        dn = tl.where(md[:, None] & (tt[None, :] + 1 < L), dn, 0.0)   # a_{t+1} = 1 past the end
        bt = tl.load(B + b * s_Bb + offs_n[:, None] * s_Bn + tt[None, :], mask=mnt, other=0.0).to(tl.float32)
        ct = tl.load(C + b * s_Cb + offs_n[:, None] * s_Cn + tt[None, :], mask=mnt, other=0.0).to(tl.float32)
        go = tl.load(dout + b * s_gb + offs_d[:, None] * s_gd + tt[None, :], mask=m2, other=0.0).to(tl.float32)
        # rebuild h over the chunk from its saved start state
        h0 = tl.load(chunk_states + state_ptr + (b * (n_chunks - 1) + c) * dim * dstate, mask=mdn, other=0.0)
        da = tl.exp2(dl[:, None, :] * a2[:, :, None])
        dbu = (dl * uv)[:, None, :] * bt[None, :, :]
        pa, pb = tl.associative_scan((da, dbu), 2, _combine)
        hs = pb + pa * h0[:, :, None]
        if HAS_Z:
            zv = tl.load(z + b * s_zb + offs_d[:, None] * s_zd + tt[None, :], mask=m2, other=0.0).to(tl.float32)
            sz = sigmoid(zv)
            y = tl.sum(hs * ct[None, :, :], axis=1)
            if HAS_D:
                y += uv * dv[:, None]
            dzv = go * y * sz * (1.0 + zv * (1.0 - sz))
            tl.store(dz + b * s_zb + offs_d[:, None] * s_zd + tt[None, :], dzv.to(dz.dtype.element_ty), mask=m2)
            dy = go * zv * sz
        else:
            dy = go
        # adjoint: g_t = C_t dy_t + a_{t+1} g_{t+1}, with g entering from the next chunk
        an = tl.exp2(dn[:, None, :] * a2[:, :, None])
        cdy = ct[None, :, :] * dy[:, None, :]
        qa, qg = tl.associative_scan((an, cdy), 2, _combine, reverse=True)
        g = qg + qa * g_carry[:, :, None]
        g_carry = tl.sum(tl.where(offs_t[None, None, :] == 0, g, 0.0), axis=2)
        decayed = hs - dbu                      # = a_t * h_{t-1}
        gb = tl.sum(g * bt[None, :, :], axis=1)
        ddl = tl.sum(g * decayed * a_nat[:, :, None], axis=1) + gb * uv
        duv = gb * dl
        if HAS_D:
            duv += dy * dv[:, None]
            dD_acc += tl.sum(dy * uv, axis=1)
        dA_acc += tl.sum(g * decayed * dl[:, None, :], axis=2)
        if SOFTPLUS:
            ddl = ddl * sigmoid(dl_raw)
        ddl = tl.where(m2, ddl, 0.0)
        dbias_acc += tl.sum(ddl, axis=1)
        tl.store(du + b * s_ub + in_off, duv.to(du.dtype.element_ty), mask=m2)
        tl.store(ddelta + d_off, ddl.to(ddelta.dtype.element_ty), mask=m2)
        bc_off = (b * dstate + offs_n[:, None]) * L + tt[None, :]
        tl.atomic_add(dB + bc_off, tl.sum(g * (dl * uv)[:, None, :], axis=0), mask=mnt)
        tl.atomic_add(dC + bc_off, tl.sum(hs * dy[:, None, :], axis=0), mask=mnt)
    tl.atomic_add(dA + offs_d[:, None] * dstate + offs_n[None, :], dA_acc, mask=mdn)
    if HAS_D:
        tl.atomic_add(dD + offs_d, dD_acc, mask=md)
    if HAS_BIAS:
        tl.atomic_add(dbias + offs_d, dbias_acc, mask=md)


# (BLOCK_D, T, num_warps) per pass; chosen by the sweep in benchmarks/kernels.py on an H100.
# FWD_MODE "sequential" (time loop, state in registers) or "parallel" (chunked associative scan).
FWD_MODE = "sequential"
FWD_CONFIG = (16, 32, 4)
FWD_UNROLL = 8
FWD_PARALLEL_CONFIG = (4, 32, 4)
BWD_MODE = "registers"    # or "sequential" (L2 scratch, T=32) or "parallel" (chunked associative scan)
BWD_CONFIG = (16, 32, 1)
BWD_ATOMIC_BC = False      # False: per-program dB/dC partials summed by torch afterwards
BWD_PARALLEL_CONFIG = (2, 32, 4)
BWD_REGISTERS_CONFIG = (8, 8, 1)   # T must be 8: the forward then saves a state every 8 steps


def _last_contig(t):
    return t if t is None or t.stride(-1) == 1 else t.contiguous()


def _fwd(u, delta, A, B, C, D, z, delta_bias, softplus_on: bool, save_states: bool, config=None, mode=None):
    batch, dim, L = u.shape
    dstate = A.shape[1]
    mode = mode or FWD_MODE
    block_d, T, warps = (config or (FWD_CONFIG if mode == "sequential" else FWD_PARALLEL_CONFIG))[:3]
    block_n = next_pow2(dstate)
    n_chunks = max(1, triton.cdiv(L, T))
    out = triton_utils.new_output(u.shape, u.dtype, u.device)
    last = triton_utils.new_output((batch, dim, dstate), torch.float32, u.device)
    states = (triton_utils.new_output((batch, n_chunks, dim, dstate), torch.float32, u.device)
              if save_states else last)
    dummy = u
    if mode == "sequential":
        unroll = config[3] if config is not None and len(config) > 3 else FWD_UNROLL
        assert T % unroll == 0 and unroll in (4, 8), "the sequential forward takes 4 or 8 steps per iteration"
        _scan_fwd_seq_kernel[(triton.cdiv(dim, block_d), batch)](
            u, delta, A, B, C, dummy if D is None else D, dummy if z is None else z,
            dummy if delta_bias is None else delta_bias, out, last, states,
            dim, dstate, L, n_chunks,
            u.stride(0), u.stride(1), delta.stride(0), delta.stride(1), B.stride(0), B.stride(1),
            C.stride(0), C.stride(1), 0 if z is None else z.stride(0), 0 if z is None else z.stride(1),
            out.stride(0), out.stride(1),
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=softplus_on,
            SAVE_STATES=save_states, BLOCK_D=block_d, BLOCK_N=block_n, T=T, UNROLL=unroll, num_warps=warps,
        )
        return out, last, states
    _scan_fwd_kernel[(triton.cdiv(dim, block_d), batch)](
        u, delta, A, B, C, dummy if D is None else D, dummy if z is None else z,
        dummy if delta_bias is None else delta_bias, out, last, states,
        dim, dstate, L, n_chunks,
        u.stride(0), u.stride(1), delta.stride(0), delta.stride(1), B.stride(0), B.stride(1),
        C.stride(0), C.stride(1), 0 if z is None else z.stride(0), 0 if z is None else z.stride(1),
        out.stride(0), out.stride(1),
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=softplus_on,
        SAVE_STATES=save_states, BLOCK_D=block_d, BLOCK_N=block_n, T=T, num_warps=warps,
    )
    return out, last, states


def _bwd(dout, dlast, u, delta, A, B, C, D, z, delta_bias, softplus_on, states, config=None, mode=None,
         atomic_bc=None):
    batch, dim, L = u.shape
    dstate = A.shape[1]
    mode = mode or BWD_MODE
    block_d, T, warps = config or {"sequential": BWD_CONFIG, "registers": BWD_REGISTERS_CONFIG,
                                   "parallel": BWD_PARALLEL_CONFIG}[mode]
    block_n = next_pow2(dstate)
    n_chunks = states.shape[1]
    assert n_chunks == max(1, triton.cdiv(L, T)), "forward and backward must use the same chunk length"
    dout = dout.contiguous()
    new = triton_utils.new_output
    du, ddelta = new(u.shape, u.dtype, u.device), new(delta.shape, delta.dtype, u.device)
    dz = new(z.shape, z.dtype, u.device) if z is not None else None
    f32 = dict(dtype=torch.float32, device=u.device)
    dA = torch.zeros(dim, dstate, **f32)
    dB = torch.zeros(batch, dstate, L, **f32)
    dC = torch.zeros(batch, dstate, L, **f32)
    dD = torch.zeros(dim, **f32) if D is not None else None
    dbias = torch.zeros(dim, **f32) if delta_bias is not None else None
    dummy = u
    atomic_bc = BWD_ATOMIC_BC if atomic_bc is None else atomic_bc
    if mode == "registers":
        assert T == 8, "the register backward needs states saved every 8 steps"
        dB = new((triton.cdiv(dim, block_d), batch, dstate, L), torch.float32, u.device)
        dC = new(dB.shape, torch.float32, u.device)
        _scan_bwd_reg_kernel[(triton.cdiv(dim, block_d), batch)](
            u, delta, A, B, C, dummy if D is None else D, dummy if z is None else z,
            dummy if delta_bias is None else delta_bias, dout, states, dummy if dlast is None else dlast,
            du, ddelta, dA, dB, dC, dummy if dD is None else dD, dummy if dz is None else dz,
            dummy if dbias is None else dbias,
            dim, dstate, L, n_chunks,
            u.stride(0), u.stride(1), delta.stride(0), delta.stride(1), B.stride(0), B.stride(1),
            C.stride(0), C.stride(1), 0 if z is None else z.stride(0), 0 if z is None else z.stride(1),
            dout.stride(0), dout.stride(1),
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=softplus_on,
            HAS_DLAST=dlast is not None, BLOCK_D=block_d, BLOCK_N=block_n, num_warps=warps,
        )
        dB, dC = dB.sum(0), dC.sum(0)
    elif mode == "sequential":
        n_prog = triton.cdiv(dim, block_d) * batch
        scratch = torch.empty(n_prog * T * block_n * block_d, dtype=torch.float32, device=u.device)
        if not atomic_bc:
            dB = new((triton.cdiv(dim, block_d), batch, dstate, L), torch.float32, u.device)
            dC = new(dB.shape, torch.float32, u.device)
        _scan_bwd_seq_kernel[(triton.cdiv(dim, block_d), batch)](
            u, delta, A, B, C, dummy if D is None else D, dummy if z is None else z,
            dummy if delta_bias is None else delta_bias, dout, states, dummy if dlast is None else dlast, scratch,
            du, ddelta, dA, dB, dC, dummy if dD is None else dD, dummy if dz is None else dz,
            dummy if dbias is None else dbias,
            dim, dstate, L, n_chunks,
            u.stride(0), u.stride(1), delta.stride(0), delta.stride(1), B.stride(0), B.stride(1),
            C.stride(0), C.stride(1), 0 if z is None else z.stride(0), 0 if z is None else z.stride(1),
            dout.stride(0), dout.stride(1),
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=softplus_on,
            HAS_DLAST=dlast is not None, BLOCK_D=block_d, BLOCK_N=block_n, T=T, ATOMIC_BC=atomic_bc,
            num_warps=warps,
        )
        if not atomic_bc:
            dB, dC = dB.sum(0), dC.sum(0)
    else:
        _scan_bwd_kernel[(triton.cdiv(dim, block_d), batch)](
            u, delta, A, B, C, dummy if D is None else D, dummy if z is None else z,
            dummy if delta_bias is None else delta_bias, dout, states, dummy if dlast is None else dlast,
            du, ddelta, dA, dB, dC, dummy if dD is None else dD, dummy if dz is None else dz,
            dummy if dbias is None else dbias,
            dim, dstate, L, n_chunks,
            u.stride(0), u.stride(1), delta.stride(0), delta.stride(1), B.stride(0), B.stride(1),
            C.stride(0), C.stride(1), 0 if z is None else z.stride(0), 0 if z is None else z.stride(1),
            dout.stride(0), dout.stride(1),
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=softplus_on,
            HAS_DLAST=dlast is not None, BLOCK_D=block_d, BLOCK_N=block_n, T=T, num_warps=warps,
        )
    cast = lambda g, like: None if g is None else g.to(like.dtype)  # noqa: E731
    return du, ddelta, cast(dA, A), cast(dB, B), cast(dC, C), cast(dD, D), dz, cast(dbias, delta_bias)


class SelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus_on):
        fwd_cfg = FWD_CONFIG if FWD_MODE == "sequential" else FWD_PARALLEL_CONFIG
        bwd_t = {"sequential": BWD_CONFIG, "registers": BWD_REGISTERS_CONFIG,
                 "parallel": BWD_PARALLEL_CONFIG}[BWD_MODE][1]
        unroll = (FWD_UNROLL if bwd_t % FWD_UNROLL == 0 else 4,) if FWD_MODE == "sequential" else ()
        out, last, states = _fwd(u, delta, A, B, C, D, z, delta_bias, softplus_on, save_states=True,
                                 config=(fwd_cfg[0], bwd_t, fwd_cfg[2], *unroll))   # a saved state per backward chunk
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states)
        ctx.softplus_on = softplus_on
        ctx.set_materialize_grads(False)     # an unused last_state gives dlast=None: no extra read
        return out, last

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, B, C, D, z, delta_bias, states = ctx.saved_tensors
        if dout is None:
            dout = torch.zeros_like(u)
        grads = _bwd(dout, _last_contig(dlast), u, delta, A, B, C, D, z, delta_bias, ctx.softplus_on, states)
        return (*grads, None)


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=True,
                          return_last_state=False):
    u, delta, z = (None if t is None else t.contiguous() for t in (u, delta, z))
    B, C, A = _last_contig(B), _last_contig(C), A.contiguous()
    D = None if D is None else D.contiguous()
    delta_bias = None if delta_bias is None else delta_bias.contiguous()
    tensors = [t for t in (u, delta, A, B, C, D, z, delta_bias) if t is not None]
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        out, last = SelectiveScanFn.apply(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus))
    else:
        out, last, _ = _fwd(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), save_states=False)
    return (out, last) if return_last_state else out
