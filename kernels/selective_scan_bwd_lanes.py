"""The selective scan's backward for d_state 16 with a layout chosen by hand: two lanes per channel.

Why: the tile backward (`selective_scan_triton._scan_bwd_kernel`) keeps the state as a (channels,
d_state) tile whose layout Triton picks; its per-step sums over d_state (du, d(delta)) and over
channels (dB, dC) and the conversions between the flattened per-(channel, step) tiles and the
state's layout kept its L1/shared-memory pipe ~75 % busy (kernels/README.md, Nsight Compute). Here a
program is one warp over 16 channels; lane 2 r + p holds channel r's states p*8 .. p*8+7 as a tuple
of eight (32,) vectors, one value per lane, so the layout is fixed by construction:

- sums over d_state: seven in-thread adds and one shuffle with the lane's partner (lane ^ 1);
- sums over channels (dB, dC): a butterfly reduce-scatter (`tl.gather` within the warp compiles
  to one SHFL): the 16 values per lane and step (8 dB, 8 dC) are halved four times across the 16
  lanes of the same parity, 15 shuffles per step and warp instead of one reduction per value;
- per-(channel, step) values (softplus, gates) are computed once on the native (32, 4) tile (lane
  2 r + p reads steps 4p .. 4p+3 of its channel's row, 16 contiguous bytes) and handed to the
  partner lane with one shuffle per column.

The chunk walk is the tile kernel's `HALF` scheme: rebuild the second 4-step half of each 8-step
chunk from the saved state, walk it back, then rebuild and walk the first half.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .selective_scan_triton import INTERPRET, _add, _bwd_gates, _cols, _join, _Launcher, _load, _store
from .triton_utils import LOG2E, cdiv

S = tl.constexpr(8)   # states per lane: d_state 16 over two lanes


@triton.jit
def _fresh(x):
    """x, as a value the compiler cannot prove equal to x (a non-pure move): the first half's states
    are computed again instead of being kept live (common-subexpression elimination would keep them)."""
    if INTERPRET:
        return x
    else:   # x + 0: exact but for the sign of zero, so ptxas may not fold it (a move it would)
        return tl.inline_asm_elementwise("add.f32 $0, $1, 0f00000000;", "=r,r", [x], dtype=tl.float32,
                                         is_pure=False, pack=1)


@triton.jit
def _fresh_i(x):
    """An int32 the compiler cannot prove equal to x (here 0): loads at offsets made with it are not
    merged with earlier loads of the same addresses."""
    if INTERPRET:
        return x
    else:
        return tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def _pair_sum(x, lanes):
    """Sum of a lane's value and its partner's (the other half of the channel's states)."""
    return x + tl.gather(x, lanes ^ 1, 0)


@triton.jit
def _rs_round(v, lanes, M: tl.constexpr, H: tl.constexpr):
    """One butterfly round: a lane with bit M set keeps the upper H values, its partner the lower."""
    hi = (lanes & M) != 0
    out = ()
    for q in tl.static_range(H):
        send = tl.where(hi, v[q], v[q + H])
        keep = tl.where(hi, v[q + H], v[q])
        out = out + (keep + tl.gather(send, lanes ^ M, 0),)
    return out


@triton.jit
def _rs_round_upper(v, lanes, M: tl.constexpr, H: tl.constexpr):
    """A butterfly round without selects: every lane keeps its upper H values and sends the lower.
    Right when a lane's slot q + H and its partner's slot q hold the same state (PERM's slot order)."""
    out = ()
    for q in tl.static_range(H):
        out = out + (v[q + H] + tl.gather(v[q], lanes ^ M, 0),)
    return out


@triton.jit
def _reduce_scatter16(db, dc, lanes, PERM: tl.constexpr):
    """db, dc: 8 (32,) vectors each (one per state slot). Each lane gets one (state, dB or dC) summed
    over the 16 lanes of its parity (`_scatter_target` says which). PERM: the first round halves the
    slots with no selects (lanes with bit 16 hold their states in the other order), and dB / dC are
    split last (one pair): 14 selects per step instead of 30."""
    if PERM:
        v = ()
        for k in tl.static_range(S):
            v = v + (db[k], dc[k])
        v = _rs_round_upper(v, lanes, 16, 8)
    else:
        v = _rs_round(db + dc, lanes, 16, 8)
    v = _rs_round(v, lanes, 8, 4)
    v = _rs_round(v, lanes, 4, 2)
    v = _rs_round(v, lanes, 2, 1)
    return v[0]


@triton.jit
def _scatter_target(r, PERM: tl.constexpr):
    """(state within the lane's half, is dC) that `_reduce_scatter16` leaves in the lane of channel r."""
    if PERM:
        return 4 * (1 - (r >> 3) % 2) + 2 * ((r >> 2) % 2) + (r >> 1) % 2, r % 2 == 1
    else:
        return r % 8, r >= 8


@triton.jit
def _steps8(x, lanes, up):
    """Native (32, 4) tile (lane 2r+p: channel r, steps 4p..4p+3) -> 8 per-step vectors, each
    holding the lane's channel's value at that step (both lanes of a channel)."""
    x0, x1, x2, x3 = _cols(x, 32)
    o0, o1 = tl.gather(x0, lanes ^ 1, 0), tl.gather(x1, lanes ^ 1, 0)
    o2, o3 = tl.gather(x2, lanes ^ 1, 0), tl.gather(x3, lanes ^ 1, 0)
    return (tl.where(up, o0, x0), tl.where(up, o1, x1), tl.where(up, o2, x2), tl.where(up, o3, x3),
            tl.where(up, x0, o0), tl.where(up, x1, o1), tl.where(up, x2, o2), tl.where(up, x3, o3))


@triton.jit
def _native(v, up):
    """8 per-step vectors -> the native (32, 4) tile."""
    return _join(tl.where(up, v[4], v[0]), tl.where(up, v[5], v[1]), tl.where(up, v[6], v[2]),
                 tl.where(up, v[7], v[3]), 32)


@triton.jit
def _bc_step(base, t, o, sw):
    """B (or C, transposed: (batch, L, 16)) at step t for the lane's 8 state slots: 8 vectors from two
    16-byte loads per lane (`sw`: 4 where the lane's slots 0-3 hold states 4-7, else 0)."""
    x0, x1, x2, x3 = _cols(tl.load(base + (t * 16 + sw + o)).to(tl.float32), 32)
    x4, x5, x6, x7 = _cols(tl.load(base + (t * 16 + (4 - sw) + o)).to(tl.float32), 32)
    return x0, x1, x2, x3, x4, x5, x6, x7


@triton.jit
def _advance(h, a2, dl, w, bs):
    """One step forward: h_t = exp2(a2 dl) h_{t-1} + B_t (dl u); returns h_t and the decays."""
    hn = ()
    an = ()
    for k in tl.static_range(S):
        a = tl.exp2(a2[k] * dl)
        an = an + (a,)
        hn = hn + (h[k] * a + bs[k] * w,)
    return hn, an


@triton.jit
def _dot(x, y, lanes):
    acc = x[0] * y[0]
    for k in tl.static_range(1, S):
        acc += x[k] * y[k]
    return _pair_sum(acc, lanes)


@triton.jit
def _back(ga, dA, h_prev, h, a, dl, w, dy, u, bs, cs, a_nat, lanes, PERM: tl.constexpr):
    """One step back. `ga` carries a_{t+1} g_{t+1}, so g_t = C_t dy_t + ga; returns a_t g_t (the
    next carry), dA, du (without D), d(delta) (before the softplus) and the lane's share of
    dB_t / dC_t (reduce-scattered)."""
    gan = ()
    dAn = ()
    v = ()
    vc = ()
    gb = tl.zeros_like(dl)
    dd = tl.zeros_like(dl)
    for k in tl.static_range(S):
        gk = ga[k] + cs[k] * dy
        gak = gk * a[k]
        gdec = gak * h_prev[k]
        dAn = dAn + (dA[k] + gdec * dl,)
        gb += gk * bs[k]
        dd += gdec * a_nat[k]
        gan = gan + (gak,)
        v = v + (gk * w,)
        vc = vc + (h[k] * dy,)
    gb = _pair_sum(gb, lanes)
    dd = _pair_sum(dd, lanes)
    return gan, dAn, gb * dl, dd + gb * u, _reduce_scatter16(v, vc, lanes, PERM)


@triton.jit(do_not_specialize=["s_an"])
def _scan_bwd_lanes_kernel(
    u, delta, A, BT, CT, D, z, delta_bias, dout, chunk_states, dlast, seg_adj, seg_dsum,
    du, ddelta, dA, dB, dC, dD, dz, dbias,
    dim, L, SEG, s_an, s_ad, s_ub, s_ud, s_db, s_dd, s_zb, s_zd, s_gb, s_gd,
    NSEG: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr, EVEN: tl.constexpr, PERM: tl.constexpr,
):
    pid_d = tl.program_id(0)
    seg = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    start = seg * SEG
    end = tl.minimum(start + SEG, L)
    lanes = tl.arange(0, 32)
    r = lanes // 2
    p = lanes % 2
    up = p == 1
    jj = tl.arange(0, 4)
    ch = pid_d * 16 + r
    mc = ch < dim
    # the lane's slot k holds state p * 8 + (k ^ sw) (PERM: lanes 16-31 swap their two groups of 4)
    sw = (lanes >= 16).to(tl.int32) * 4 if PERM else lanes * 0   # a multiple of 4 to the compiler: 16-byte loads
    sw2 = sw[:, None]
    a_nat = ()
    a2 = ()
    for k in tl.static_range(S):
        av = _load(A + ch * s_ad + (p * S + (k ^ sw)) * s_an, mc, EVEN)
        a_nat = a_nat + (av,)
        a2 = a2 + (av * LOG2E,)
    # B and C transposed and padded to whole chunks, (batch, steps, 16): a lane's 8 states at step t
    # are 32 contiguous bytes (no mask needed)
    n_chunks = tl.cdiv(L, 8)
    bt_p = BT + b * n_chunks * 128 + (p * S)[:, None] + jj[None, :]
    ct_p = CT + b * n_chunks * 128 + (p * S)[:, None] + jj[None, :]
    bias = _load(delta_bias + ch, mc, EVEN) if HAS_BIAS else tl.zeros_like(a_nat[0])
    dv = _load(D + ch, mc, EVEN) if HAS_D else tl.zeros_like(a_nat[0])
    # native tiles: lane 2r+p, steps 4p..4p+3 of the chunk
    col = (4 * p)[:, None] + jj[None, :]
    u_off = b * s_ub + ch[:, None] * s_ud + col
    d_off = b * s_db + ch[:, None] * s_dd + col
    z_off = b * s_zb + ch[:, None] * s_zd + col
    g_off = b * s_gb + ch[:, None] * s_gd + col
    # dB / dC: after the reduce-scatter lane 2r+p holds one state's dB or dC
    n_out, is_c = _scatter_target(r, PERM)
    bc_p = (tl.where(is_c, dC, dB) + (b * 16 + p * 8 + n_out) * L)[:, None] + jj[None, :]
    st_base = chunk_states + b * n_chunks * 16 * dim + ch
    g = ()
    for k in tl.static_range(S):
        if HAS_DLAST:
            g = g + (_load(dlast + b * dim * 16 + ch * 16 + p * S + (k ^ sw), mc, EVEN),)
        else:
            g = g + (tl.zeros_like(a_nat[0]),)
    for i in tl.static_range(NSEG - 1):   # what the later segments send back, decayed over those between
        j = NSEG - 1 - i
        slot = b * NSEG + j
        mj = mc & (seg + 0 * lanes < j)
        ds = tl.load(seg_dsum + slot * dim + ch, mask=mj, other=0.0)
        gs = ()
        for k in tl.static_range(S):
            g_in = tl.load(seg_adj + (slot * 16 + p * S + (k ^ sw)) * dim + ch, mask=mj, other=0.0)
            gs = gs + (g[k] * tl.exp2(a2[k] * ds) + g_in,)
        g = gs
    dA_acc = ()
    for k in tl.static_range(S):
        dA_acc = dA_acc + (tl.zeros_like(a_nat[0]),)
    dD_acc = tl.zeros((32, 4), tl.float32)
    dbias_acc = tl.zeros((32, 4), tl.float32)
    seg_chunks = tl.cdiv(end - start, 8)
    for cc in range(0, seg_chunks):
        c = start // 8 + seg_chunks - 1 - cc
        t0 = c * 8
        m = mc[:, None] & (t0 + col < end)
        ma = (t0 + jj[None, :] + 0 * lanes[:, None]) < end
        mb = (t0 + 4 + jj[None, :] + 0 * lanes[:, None]) < end
        # per-(channel, step) math, once per element on the native tile
        uv, dl, dsp, dy, dzc = _bwd_gates(u + u_off + t0, delta + d_off + t0, dout + g_off + t0, z + z_off + t0, m,
                                          bias[:, None], HAS_BIAS, SOFTPLUS, HAS_Z, EVEN)
        dD_acc += dy * uv
        U = _steps8(uv, lanes, up)
        DL = _steps8(dl, lanes, up)
        W = _steps8(dl * uv, lanes, up)
        DY = _steps8(dy, lanes, up)
        h_s = ()
        for k in tl.static_range(S):
            h_s = h_s + (_load(st_base + (c * 16 + p * S + (k ^ sw)) * dim, mc, EVEN),)
        # first half forward: only h_3 (and y, for dz) stays
        h0, _ = _advance(h_s, a2, DL[0], W[0], _bc_step(bt_p, t0, 0, sw2))
        h1, _ = _advance(h0, a2, DL[1], W[1], _bc_step(bt_p, t0 + 1, 0, sw2))
        h2, _ = _advance(h1, a2, DL[2], W[2], _bc_step(bt_p, t0 + 2, 0, sw2))
        h3, _ = _advance(h2, a2, DL[3], W[3], _bc_step(bt_p, t0 + 3, 0, sw2))
        h4, a4 = _advance(h3, a2, DL[4], W[4], _bc_step(bt_p, t0 + 4, 0, sw2))
        h5, a5 = _advance(h4, a2, DL[5], W[5], _bc_step(bt_p, t0 + 5, 0, sw2))
        h6, a6 = _advance(h5, a2, DL[6], W[6], _bc_step(bt_p, t0 + 6, 0, sw2))
        h7, a7 = _advance(h6, a2, DL[7], W[7], _bc_step(bt_p, t0 + 7, 0, sw2))
        if HAS_Z:
            y = (_dot(h0, _bc_step(ct_p, t0, 0, sw2), lanes), _dot(h1, _bc_step(ct_p, t0 + 1, 0, sw2), lanes),
                 _dot(h2, _bc_step(ct_p, t0 + 2, 0, sw2), lanes), _dot(h3, _bc_step(ct_p, t0 + 3, 0, sw2), lanes),
                 _dot(h4, _bc_step(ct_p, t0 + 4, 0, sw2), lanes), _dot(h5, _bc_step(ct_p, t0 + 5, 0, sw2), lanes),
                 _dot(h6, _bc_step(ct_p, t0 + 6, 0, sw2), lanes), _dot(h7, _bc_step(ct_p, t0 + 7, 0, sw2), lanes))
            ud = uv * dv[:, None] if HAS_D else tl.zeros_like(uv)
            _store(dz + z_off + t0, dzc * (_native(y, up) + ud), m, EVEN)
        # second half back (B and C read again at offsets the compiler cannot match: L1 hits, not registers)
        o = _fresh_i(lanes * 0)[:, None] * 16   # a multiple of 16 to the compiler: the loads stay 16-byte
        g, dA_acc, du7, dd7, bc7 = _back(g, dA_acc, h6, h7, a7, DL[7], W[7], DY[7], U[7],
                                   _bc_step(bt_p, t0 + 7, o, sw2), _bc_step(ct_p, t0 + 7, o, sw2), a_nat, lanes, PERM)
        g, dA_acc, du6, dd6, bc6 = _back(g, dA_acc, h5, h6, a6, DL[6], W[6], DY[6], U[6],
                                   _bc_step(bt_p, t0 + 6, o, sw2), _bc_step(ct_p, t0 + 6, o, sw2), a_nat, lanes, PERM)
        g, dA_acc, du5, dd5, bc5 = _back(g, dA_acc, h4, h5, a5, DL[5], W[5], DY[5], U[5],
                                   _bc_step(bt_p, t0 + 5, o, sw2), _bc_step(ct_p, t0 + 5, o, sw2), a_nat, lanes, PERM)
        g, dA_acc, du4, dd4, bc4 = _back(g, dA_acc, h3, h4, a4, DL[4], W[4], DY[4], U[4],
                                   _bc_step(bt_p, t0 + 4, o, sw2), _bc_step(ct_p, t0 + 4, o, sw2), a_nat, lanes, PERM)
        _add(bc_p + t0 + 4, _join(bc4, bc5, bc6, bc7, 32), mb, EVEN)
        # first half again (its states were not kept: the decays' inputs made opaque), then back
        h0, a0 = _advance(h_s, a2, _fresh(DL[0]), W[0], _bc_step(bt_p, t0, o, sw2))
        h1, a1 = _advance(h0, a2, _fresh(DL[1]), W[1], _bc_step(bt_p, t0 + 1, o, sw2))
        h2, a2_ = _advance(h1, a2, _fresh(DL[2]), W[2], _bc_step(bt_p, t0 + 2, o, sw2))
        h3, a3 = _advance(h2, a2, _fresh(DL[3]), W[3], _bc_step(bt_p, t0 + 3, o, sw2))
        g, dA_acc, du3, dd3, bc3 = _back(g, dA_acc, h2, h3, a3, DL[3], W[3], DY[3], U[3],
                                   _bc_step(bt_p, t0 + 3, o, sw2), _bc_step(ct_p, t0 + 3, o, sw2), a_nat, lanes, PERM)
        g, dA_acc, du2, dd2, bc2 = _back(g, dA_acc, h1, h2, a2_, DL[2], W[2], DY[2], U[2],
                                   _bc_step(bt_p, t0 + 2, o, sw2), _bc_step(ct_p, t0 + 2, o, sw2), a_nat, lanes, PERM)
        g, dA_acc, du1, dd1, bc1 = _back(g, dA_acc, h0, h1, a1, DL[1], W[1], DY[1], U[1],
                                   _bc_step(bt_p, t0 + 1, o, sw2), _bc_step(ct_p, t0 + 1, o, sw2), a_nat, lanes, PERM)
        g, dA_acc, du0, dd0, bc0 = _back(g, dA_acc, h_s, h0, a0, DL[0], W[0], DY[0], U[0],
                                   _bc_step(bt_p, t0, o, sw2), _bc_step(ct_p, t0, o, sw2), a_nat, lanes, PERM)
        _add(bc_p + t0, _join(bc0, bc1, bc2, bc3, 32), ma, EVEN)
        dut = _native((du0, du1, du2, du3, du4, du5, du6, du7), up)
        if HAS_D:
            dut += dy * dv[:, None]
        ddt = _native((dd0, dd1, dd2, dd3, dd4, dd5, dd6, dd7), up)
        if SOFTPLUS:
            ddt *= dsp
        if not EVEN:
            ddt = tl.where(m, ddt, 0.0)
        dbias_acc += ddt
        _store(du + u_off + t0, dut, m, EVEN)
        _store(ddelta + d_off + t0, ddt, m, EVEN)
    for k in tl.static_range(S):
        tl.atomic_add(dA + ch * s_ad + (p * S + (k ^ sw)) * s_an, dA_acc[k], mask=mc, sem="relaxed")
    if HAS_D:
        tl.atomic_add(dD + ch, tl.sum(dD_acc, axis=1), mask=mc, sem="relaxed")
    if HAS_BIAS:
        tl.atomic_add(dbias + ch, tl.sum(dbias_acc, axis=1), mask=mc, sem="relaxed")


_launch = _Launcher(_scan_bwd_lanes_kernel)


def transposed_chunks(x: torch.Tensor) -> torch.Tensor:
    """(batch, 16, L) -> (batch, whole chunks of 8 steps, 16), zero-padded: what the kernel reads."""
    batch, n, L = x.shape
    out = torch.zeros(batch, cdiv(L, 8) * 8, n, dtype=x.dtype, device=x.device)
    out[:, :L].copy_(x.transpose(1, 2))
    return out


def launch_bwd_lanes(grid, u, delta, A, B, C, *rest, **meta):
    _launch(grid, u, delta, A, transposed_chunks(B), transposed_chunks(C), *rest, **meta)
