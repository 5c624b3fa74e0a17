"""Mamba-1 selective scan in Triton, forward and backward, wrapped in an autograd Function.

Layout: one program owns (batch b, BLOCK_D channels, one segment of the sequence) and walks
its segment in tiles of four steps, with the (BLOCK_D, dstate) state in float32 registers.
Forward: channels go across lanes first and what is left of the 32 lanes across dstate
(BLOCK_D 16, one warp: two lanes per channel, 8 states each), so the reduction over dstate
for y is in-thread plus one shuffle. Triton picks layouts from the loads, so A is read
through a stride it cannot see (`s_an`, not specialized: its tile takes the default
channel-major layout), and the (dstate, 4) tiles of B and C are broadcast over the channels.
The tile loads are pipelined by Triton (`num_stages`, cp.async into shared memory); an
iteration takes SUB tiles (longer iterations lost on an H100: kernels/README.md).

Segments: one program per (batch, channel block) is about one warp per scheduler on an H100,
too few to hide the recurrence's latency, so the sequence is split into segments run by
separate programs. The recurrence h_t = a_t h_{t-1} + b_t composes: a first pass runs every
segment but the last from a zero state and keeps its end state and its sum of delta (the
segment's decay is exp(A * that sum)); the main pass folds those into its true start state
(a few register ops per earlier segment) and then runs its segment. The backward does the
same in reverse for the adjoint g_t = C_t dy_t + a_{t+1} g_{t+1}. A sequence no longer than
one segment takes the main pass alone.

Per step and state element: one exp2 (A pre-scaled by log2 e) and three FMAs; the
per-(channel, step) softplus and gates use approximate division.

The training forward also saves the state every CHUNK = 8 steps. The backward walks its
segment's chunks last first: it rebuilds the chunk's 8 states in registers from the saved
one, then runs the adjoint back over them. A backward step reduces over both axes
(d(delta), du over dstate; dB, dC over channels), so its layout puts 8 lanes over channels
and 4 over dstate (a contiguity hint on the saved states steers it). dB and dC leave each
program through atomics. An iteration takes CPI chunks (1 is fastest on an H100).

At d_state 16 the default backward is another kernel, `selective_scan_bwd_lanes.py` (two lanes per
channel, the state as a tuple of lane vectors: a layout fixed by hand; 1.36x faster on an H100).

Variants, chosen per launch config (FWD_CONFIG / BWD_CONFIG below; benchmarks/kernel_speed.py --sweep
times them beside the defaults): the forward can do its per-(channel, step) math on flattened
tiles (`_fwd_tile_flat`), so a narrow channel block (more warps per scheduler) stops repeating it
in every lane of a channel; the backward can walk a chunk in two 4-step halves (`HALF`) with fewer
live registers, and take another contiguity hint (`PAIR`: channels per lane, so fewer shuffles for
the dB, dC sums over channels).

Launches go through `_Launcher`: after the first call of a specialization it calls the
compiled binary directly, which took the host time of a fwd+bwd call through autograd from
1212 to 732 us, so the GPU no longer waits between the kernels. kernels/README.md has the
byte counts and timings.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from . import triton_utils
from .triton_utils import LN2, LOG2E, cdiv, next_pow2

INTERPRET = tl.constexpr(os.environ.get("TRITON_INTERPRET", "0") == "1")   # as read when this module loads
CHUNK = 8   # steps between saved states (training forward) = steps rebuilt per backward chunk
MAX_SEGMENTS = 16   # per sequence; longer sequences get longer segments (the carry is unrolled)
# Splitting into segments costs a second pass (about 1.5x the instructions). On an H100 it lost
# at every segment length once there were 512 (batch, channel block) programs, about one warp
# per scheduler (benchmarks/kernel_speed.py --sweep, kernels/README.md), so only a grid smaller than
# SPLIT_BELOW_PROGRAMS is split, into segments of at least MIN_SEGMENT steps. At b=1, L=8192 (32
# programs) the split is 7.4x faster than one segment (session 4); the threshold is an estimate.
SPLIT_BELOW_PROGRAMS = 256
MIN_SEGMENT = 128
# Forward: (BLOCK_D, num_warps, pipeline stages, 4-step tiles per iteration, segment length[, flat]);
# backward: (BLOCK_D, num_warps, pipeline stages, 8-step chunks per iteration, segment length[, pair,
# half, lanes, maxnreg]); segment length 0 = automatic (above). Optional fields default to 0: flat = per-(channel, step)
# math on flattened tiles (_fwd_tile_flat; flat 2 also reads each row 8 steps at a time, SUB even), pair =
# the saved states' contiguity hint (0: BLOCK_D / 8; it picks how many
# channels a lane holds, so how many shuffles the dB/dC and du/d(delta) sums take), half = the
# backward keeps one 4-step half of a chunk live instead of 8 steps (the first half's gates and
# states are computed again: 247 -> 168 registers at BLOCK_D 8, pair 2; BLOCK_D 16 then nearly fits
# in 255), lanes = the backward of selective_scan_bwd_lanes.py (d_state 16 only; BLOCK_D 16, one warp and one
# chunk per iteration whatever the first fields say; 256-step segments even at 512 programs: 0.340 against 0.414
# ms for one segment, session 17; lanes 2: its permuted state slots, 14 selects per step instead of 30 in
# the dB/dC reduce-scatter), maxnreg = a register cap for the lanes kernel (0: the compiler's; it takes all
# 255, so 8 warps per SM; 168 would allow 12 at some spilling: not timed yet). Per padded dstate, the fastest in benchmarks/kernel_speed.py --sweep on an
# H100. Other sizes: BLOCK_D = 256 / dstate.
FWD_CONFIG = {16: (16, 1, 4, 4, 0, 2), 64: (8, 1, 4, 2, 0)}
BWD_CONFIG = {16: (16, 1, 1, 1, 256, 0, 0, 1), 64: (4, 1, 3, 1, 0)}


# Launch the compiled kernels directly (below) instead of through `kernel[grid](...)`; the
# benchmark times both ways in one run (benchmarks/kernel_speed.py, scan host time per call).
FAST_LAUNCH = True


def _key(args):
    """Covers what Triton specializes the arguments on (a tensor's dtype and 16-byte alignment;
    an int's width, == 1 and divisibility by 16, here its value): equal keys, same binary."""
    return tuple(a if type(a) is int else (a.dtype, a.data_ptr() & 15 == 0) for a in args)


class _Launcher:
    """`kernel[grid](*args, **meta)` without Triton's per-call work: binding and specializing
    every argument (about 40 here) and assembling launch options in Python. The first call per
    key goes through Triton (which compiles or finds the binary); later ones call the binary's
    launcher with the same arguments Triton would pass it. The interpreter, launch hooks
    (profilers) and FAST_LAUNCH = False take Triton's path."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.binaries = {}

    def __call__(self, grid, *args, **meta):
        from triton import knobs

        hooks = knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook   # empty HookChains by default
        if INTERPRET or not FAST_LAUNCH or any(h is not None and getattr(h, "calls", True) for h in hooks):
            self.kernel[grid](*args, **meta)
            return
        device = args[0].device.index
        key = (device, _key(args), tuple(meta.items()))
        hit = self.binaries.get(key)
        if hit is None:
            binary = self.kernel[grid](*args, **meta)
            binary = binary.result() if hasattr(binary, "result") else binary
            names = self.kernel.arg_names[len(args):]   # the constexpr parameters, after the runtime ones
            self.binaries[key] = (binary, tuple(meta[n] for n in names))
            return
        binary, constexprs = hit
        binary.run(grid[0], grid[1], grid[2], _current_stream(device), binary.function, binary.packed_metadata,
                   None, None, None, *args, *constexprs)


def _current_stream(device: int):
    """The raw CUDA stream Triton itself launches on (a graph's capture stream, while capturing)."""
    return torch._C._cuda_getCurrentRawStream(device)


def _config(table, dstate: int, forward: bool):
    block_n = next_pow2(dstate)
    default = (max(1, 256 // block_n), 1, 3, 1, 0)
    return table.get(block_n, default)


def _full(config, n: int) -> tuple:
    """A launch config padded with zeros (the optional fields: off / automatic) to n fields."""
    return tuple(config) + (0,) * (n - len(config))


def _segments(L: int, programs: int, seg_len: int) -> tuple[int, int]:
    """(segment length, number of segments) for `programs` (batch, channel block) programs: a
    multiple of CHUNK, at most MAX_SEGMENTS of them; seg_len 0 picks them as explained above."""
    if seg_len == 0:
        n = 1 if programs >= SPLIT_BELOW_PROGRAMS else cdiv(2 * SPLIT_BELOW_PROGRAMS, programs)
        seg_len = max(cdiv(L, n), MIN_SEGMENT)
    seg = min(max(int(seg_len), cdiv(L, MAX_SEGMENTS)), max(L, 1))
    seg = cdiv(seg, CHUNK) * CHUNK
    return seg, cdiv(L, seg)


@triton.jit
def _log2_approx(x):
    """One special-function op (lg2.approx, ~2^-22 absolute error); tl.log / tl.log2 compile to
    a ~20-instruction polynomial. The interpreter has no inline assembly."""
    if INTERPRET:
        return tl.log2(x)
    else:
        return tl.inline_asm_elementwise("lg2.approx.f32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True,
                                         pack=1)


@triton.jit
def _softplus(x):
    """log(1 + e^x), as torch's above the threshold 20."""
    return tl.where(x > 20.0, x, _log2_approx(1.0 + tl.exp2(x * LOG2E)) * LN2)


@triton.jit
def _sigmoid(x):
    return tl.fdiv(1.0, 1.0 + tl.exp(-x))


@triton.jit
def _load(p, mask, EVEN: tl.constexpr):
    if EVEN:
        return tl.load(p).to(tl.float32)
    else:
        return tl.load(p, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _cols(x, R: tl.constexpr):
    """(R, 4) tile -> its 4 columns (register moves)."""
    a, b = tl.split(tl.reshape(x, (R, 2, 2)))
    x0, x2 = tl.split(a)
    x1, x3 = tl.split(b)
    return x0, x1, x2, x3


@triton.jit
def _cols3(x, R: tl.constexpr, N: tl.constexpr):
    """(R, N, 4) tile -> four (R, N) steps."""
    a, b = tl.split(tl.reshape(x, (R, N, 2, 2)))
    x0, x2 = tl.split(a)
    x1, x3 = tl.split(b)
    return x0, x1, x2, x3


@triton.jit
def _join(x0, x1, x2, x3, R: tl.constexpr):
    return tl.reshape(tl.join(tl.join(x0, x2), tl.join(x1, x3)), (R, 4))


@triton.jit
def _over_d(x, R: tl.constexpr, N: tl.constexpr):
    """(N, 4) tile -> (R, N, 4), the same values for every channel."""
    return tl.broadcast_to(x[None, :, :], (R, N, 4))


@triton.jit
def _delta(dl, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    if HAS_BIAS:
        dl += bias[:, None]
    if SOFTPLUS:
        dl = _softplus(dl)
    return dl


@triton.jit
def _store(p, x, mask, EVEN: tl.constexpr):
    if EVEN:
        tl.store(p, x.to(p.dtype.element_ty))
    else:
        tl.store(p, x.to(p.dtype.element_ty), mask=mask)


@triton.jit
def _add(p, x, mask, EVEN: tl.constexpr):
    if EVEN:
        tl.atomic_add(p, x, sem="relaxed")
    else:
        tl.atomic_add(p, x, mask=mask, sem="relaxed")


@triton.jit
def _step(h, a2, dl, w, bv, cv):
    """h_t = exp2(a2 dl) h_{t-1} + B_t (dl u); returns h_t and <h_t, C_t>."""
    h = h * tl.exp2(a2 * dl[:, None]) + bv * w[:, None]
    return h, tl.sum(h * cv, axis=1)


@triton.jit
def _rebuild4(h, a2, dl, w, bt, ct, R: tl.constexpr, N: tl.constexpr):
    """Four steps from state h with the tile's (R, 4) delta and delta*u and (N, 4) B, C:
    the four states and the (R, 4) tile of <h_t, C_t>."""
    d0, d1, d2, d3 = _cols(dl, R)
    w0, w1, w2, w3 = _cols(w, R)
    b0, b1, b2, b3 = _cols3(_over_d(bt, R, N), R, N)
    c0, c1, c2, c3 = _cols3(_over_d(ct, R, N), R, N)
    h0, y0 = _step(h, a2, d0, w0, b0, c0)
    h1, y1 = _step(h0, a2, d1, w1, b1, c1)
    h2, y2 = _step(h1, a2, d2, w2, b2, c2)
    h3, y3 = _step(h2, a2, d3, w3, b3, c3)
    return h0, h1, h2, h3, _join(y0, y1, y2, y3, R)


@triton.jit
def _tile_ptrs(base, b, s_b, rows, s_row, offs_j):
    """Pointers to the (rows, 4) tile at step 0 of batch row b; add t for steps t..t+3."""
    return base + b * s_b + rows[:, None] * s_row + offs_j[None, :]


@triton.jit
def _program(A, delta_bias, dim, dstate, L, SEG, s_an, s_ad, FIRST_SEGMENT: tl.constexpr, HAS_BIAS: tl.constexpr,
             EVEN: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    """What every scan program starts from: its segment [start, end), batch row, channel and
    state offsets and masks, its (BLOCK_D, BLOCK_N) tile of A (also times log2 e, for exp2)
    and its delta bias."""
    pid_d = tl.program_id(0)
    k = tl.program_id(1) + FIRST_SEGMENT
    b = tl.program_id(2).to(tl.int64)
    start = k * SEG
    end = tl.minimum(start + SEG, L)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    md = offs_d < dim
    mn = offs_n < dstate
    mdn = md[:, None] & mn[None, :]
    a_nat = _load(A + offs_d[:, None] * s_ad + offs_n[None, :] * s_an, mdn, EVEN)
    bias = _load(delta_bias + offs_d, md, EVEN) if HAS_BIAS else 0.0
    return pid_d, k, b, start, end, offs_d, offs_n, tl.arange(0, 4), md, mn, mdn, a_nat, a_nat * LOG2E, bias


@triton.jit
def _fwd_tile(h, t, end, u_p, d_p, z_p, o_p, b_p, c_p, a2, bias, dv, md, mn, offs_j,
              HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
              EVEN: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    """Steps t..t+3 (those before `end`): load the tile, run the recurrence, write the gated output."""
    m2 = md[:, None] & (offs_j[None, :] + t < end)
    m2n = mn[:, None] & (offs_j[None, :] + t < end)
    uv, dlv = _load(u_p + t, m2, EVEN), _load(d_p + t, m2, EVEN)
    dl = _delta(dlv, bias, HAS_BIAS, SOFTPLUS)
    if not EVEN:
        dl = tl.where(m2, dl, 0.0)               # steps past the end: a = 1, no input, h unchanged
    _, _, _, h, y = _rebuild4(h, a2, dl, dl * uv, _load(b_p + t, m2n, EVEN), _load(c_p + t, m2n, EVEN),
                              BLOCK_D, BLOCK_N)
    if HAS_D:
        y += uv * dv[:, None]
    if HAS_Z:
        zv = _load(z_p + t, m2, EVEN)
        y *= zv * _sigmoid(zv)
    _store(o_p + t, y, m2, EVEN)
    return h


@triton.jit
def _halves(x, R: tl.constexpr):
    """(R, 8) tile -> its steps 0-3 and 4-7 as two (R, 4) tiles."""
    return tl.split(tl.permute(tl.reshape(x, (R, 2, 4)), (0, 2, 1)))


@triton.jit
def _fwd_tile_flat(h, t, end, u, delta, z, out, u_1, d_1, z_1, o_1, b_p, c_p, a2, bias_1, dv_1, md_1, j_1, mn,
                   offs_w, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                   SOFTPLUS: tl.constexpr, EVEN: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
                   W: tl.constexpr):
    """_fwd_tile with the per-(channel, step) math (softplus, delta*u, D u, the z gate) on the
    flattened (BLOCK_D * W,) tile, once per element, as the backward does: in the state's layout
    every lane of a channel redoes it (BLOCK_D 8: 4 lanes, 4x the softplus and sigmoid MUFU ops),
    which is what made narrower blocks (more warps per scheduler) lose. W = 8 reads and writes each
    row as 8 steps, 32 bytes, a whole sector: Nsight Compute found the 4-step rows using 8.7 of each
    loaded sector's 32 bytes (kernels/README.md); the recurrence then runs over the two halves."""
    m = md_1 & (j_1 + t < end)
    uv = _load(u + u_1 + t, m, EVEN)
    dl = _load(delta + d_1 + t, m, EVEN)
    if HAS_BIAS:
        dl += bias_1
    if SOFTPLUS:
        dl = _softplus(dl)
    if not EVEN:
        dl = tl.where(m, dl, 0.0)                # steps past the end: a = 1, no input, h unchanged
    m2n = mn[:, None] & (offs_w[None, :] + t < end)
    bt, ct = _load(b_p + t, m2n, EVEN), _load(c_p + t, m2n, EVEN)
    shape: tl.constexpr = (BLOCK_D, W)
    if W == 8:
        dl0, dl1 = _halves(tl.reshape(dl, shape), BLOCK_D)
        w0, w1 = _halves(tl.reshape(dl * uv, shape), BLOCK_D)
        b0, b1 = _halves(bt, BLOCK_N)
        c0, c1 = _halves(ct, BLOCK_N)
        _, _, _, h, y0 = _rebuild4(h, a2, dl0, w0, b0, c0, BLOCK_D, BLOCK_N)
        _, _, _, h, y1 = _rebuild4(h, a2, dl1, w1, b1, c1, BLOCK_D, BLOCK_N)
        y = tl.reshape(tl.permute(tl.join(y0, y1), (0, 2, 1)), (BLOCK_D * 8,))
    else:
        _, _, _, h, y = _rebuild4(h, a2, tl.reshape(dl, shape), tl.reshape(dl * uv, shape), bt, ct, BLOCK_D, BLOCK_N)
        y = tl.reshape(y, (BLOCK_D * 4,))
    if HAS_D:
        y += uv * dv_1
    if HAS_Z:
        zv = _load(z + z_1 + t, m, EVEN)
        y *= zv * _sigmoid(zv)
    _store(out + o_1 + t, y, m, EVEN)
    return h


@triton.jit(do_not_specialize=["s_an", "s_one"])
def _scan_fwd_segment_kernel(
    u, delta, A, B, delta_bias, seg_state, seg_dsum,
    dim, dstate, L, SEG, s_an, s_ad, s_one, s_ub, s_ud, s_db, s_dd, s_Bb, s_Bn,
    NSEG: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, EVEN: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, STAGES: tl.constexpr, SUB: tl.constexpr,
):
    """First pass: segment k (all but the last) from a zero state; keeps its end state and
    sum of delta, from which the main pass rebuilds every segment's true start state."""
    pid_d, k, b, start, end, offs_d, offs_n, offs_j, md, mn, mdn, a_nat, a2, bias = _program(
        A, delta_bias, dim, dstate, L, SEG, s_an, s_ad, 0, HAS_BIAS, EVEN, BLOCK_D, BLOCK_N)
    u_p = _tile_ptrs(u, b, s_ub, offs_d, s_ud, offs_j)
    d_p = _tile_ptrs(delta, b, s_db, offs_d, s_dd, offs_j)
    b_p = _tile_ptrs(B, b, s_Bb, offs_n, s_Bn, offs_j)
    h = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dsum = tl.zeros((BLOCK_D, 4), tl.float32)
    for t0 in tl.range(start, end, 4 * SUB, num_stages=STAGES):
        for s in tl.static_range(SUB):
            t = t0 + 4 * s
            m2 = md[:, None] & (offs_j[None, :] + t < end)
            dl = _delta(_load(d_p + t, m2, EVEN), bias, HAS_BIAS, SOFTPLUS)
            if not EVEN:
                dl = tl.where(m2, dl, 0.0)
            bt = _load(b_p + t, mn[:, None] & (offs_j[None, :] + t < end), EVEN)
            _, _, _, h = _states4(h, a2, dl, dl * _load(u_p + t, m2, EVEN), bt, BLOCK_D, BLOCK_N)
            dsum += dl
    slot = b * NSEG + k
    tl.store(seg_state + (slot * dstate + offs_n[None, :]) * dim + offs_d[:, None] * s_one, h, mask=mdn)
    tl.store(seg_dsum + slot * dim + offs_d, tl.sum(dsum, axis=1), mask=md)


@triton.jit(do_not_specialize=["s_an", "s_one"])
def _scan_fwd_kernel(
    u, delta, A, B, C, D, z, delta_bias, out, last_state, chunk_states, seg_state, seg_dsum,
    dim, dstate, L, SEG, s_an, s_ad, s_one,
    s_ub, s_ud, s_db, s_dd, s_Bb, s_Bn, s_Cb, s_Cn, s_zb, s_zd, s_ob, s_od,
    NSEG: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr, SAVE_STATES: tl.constexpr, EVEN: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr, CHUNK: tl.constexpr, STAGES: tl.constexpr, SUB: tl.constexpr, FLAT: tl.constexpr,
):
    pid_d, k, b, start, end, offs_d, offs_n, offs_j, md, mn, mdn, a_nat, a2, bias = _program(
        A, delta_bias, dim, dstate, L, SEG, s_an, s_ad, 0, HAS_BIAS, EVEN, BLOCK_D, BLOCK_N)
    dv = _load(D + offs_d, md, EVEN) if HAS_D else 0.0
    W: tl.constexpr = 8 if FLAT == 2 else 4   # steps per row read (flat 2: a whole 32-byte sector)
    if FLAT:   # the (BLOCK_D, W) tiles flattened, for _fwd_tile_flat
        offs_1 = tl.arange(0, BLOCK_D * W)
        ch_1 = pid_d * BLOCK_D + offs_1 // W
        j_1 = offs_1 % W
        md_1 = ch_1 < dim
        u_1, d_1 = b * s_ub + ch_1 * s_ud + j_1, b * s_db + ch_1 * s_dd + j_1
        z_1, o_1 = b * s_zb + ch_1 * s_zd + j_1, b * s_ob + ch_1 * s_od + j_1
        bias_1 = _load(delta_bias + ch_1, md_1, EVEN) if HAS_BIAS else 0.0
        dv_1 = _load(D + ch_1, md_1, EVEN) if HAS_D else 0.0
    u_p = _tile_ptrs(u, b, s_ub, offs_d, s_ud, offs_j)                 # (BLOCK_D, 4)
    d_p = _tile_ptrs(delta, b, s_db, offs_d, s_dd, offs_j)
    z_p = _tile_ptrs(z, b, s_zb, offs_d, s_zd, offs_j)
    o_p = _tile_ptrs(out, b, s_ob, offs_d, s_od, offs_j)
    offs_w = tl.arange(0, W)
    b_p = _tile_ptrs(B, b, s_Bb, offs_n, s_Bn, offs_w)                  # (BLOCK_N, W)
    c_p = _tile_ptrs(C, b, s_Cb, offs_n, s_Cn, offs_w)
    k_d = k + 0 * offs_d   # the segment index per channel (a vector, so that masks broadcast everywhere)
    h = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    for j in tl.static_range(NSEG - 1):   # start state: earlier segments' ends, each decayed by the later ones
        mj = mdn & (k_d[:, None] > j)
        slot = b * NSEG + j
        h_end = tl.load(seg_state + (slot * dstate + offs_n[None, :]) * dim + offs_d[:, None] * s_one, mask=mj, other=0.0)
        ds = tl.load(seg_dsum + slot * dim + offs_d, mask=md & (k_d > j), other=0.0)
        h = h * tl.exp2(a2 * ds[:, None]) + h_end    # masked (j >= k): h unchanged
    st_p = chunk_states + b * tl.cdiv(L, CHUNK) * dim * dstate + offs_n[None, :] * dim + offs_d[:, None] * s_one
    for t in tl.range(start, end, 4 * SUB, num_stages=STAGES):   # Triton prefetches STAGES - 1 iterations ahead
        for s in tl.static_range(4 * SUB // W):   # SUB 4-step tiles' loads and gates overlap the recurrence
            if SAVE_STATES:
                if ((t + W * s) % CHUNK == 0) & (t + W * s < end):   # W divides CHUNK: no state falls inside a tile
                    tl.store(st_p + ((t + W * s) // CHUNK) * dim * dstate, h, mask=mdn)
            if FLAT:
                h = _fwd_tile_flat(h, t + W * s, end, u, delta, z, out, u_1, d_1, z_1, o_1, b_p, c_p, a2, bias_1,
                                   dv_1, md_1, j_1, mn, offs_w, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, EVEN, BLOCK_D,
                                   BLOCK_N, W)
            else:
                h = _fwd_tile(h, t + 4 * s, end, u_p, d_p, z_p, o_p, b_p, c_p, a2, bias, dv, md, mn, offs_j,
                              HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, EVEN, BLOCK_D, BLOCK_N)
    tl.store(last_state + b * dim * dstate + offs_d[:, None] * dstate + offs_n[None, :] * s_one, h,
             mask=mdn & (k_d[:, None] == NSEG - 1))


@triton.jit
def _adjoint(g, a_next, h_prev, h, a2, a_nat, dl, uf, w, dy, bv, cv):
    """One step back: g_t = C_t dy_t + a_{t+1} g_{t+1}; returns g_t, a_t and the step's
    gradient pieces (du without D, d(delta) before the softplus, dA, dB, dC)."""
    a = tl.exp2(a2 * dl[:, None])
    g = g * a_next + cv * dy[:, None]
    gdec = g * (h_prev * a)
    gb = tl.sum(g * bv, axis=1)
    ddl = tl.sum(gdec * a_nat, axis=1) + gb * uf
    return g, a, gb * dl, ddl, gdec * dl[:, None], tl.sum(g * w[:, None], axis=0), tl.sum(h * dy[:, None], axis=0)


@triton.jit
def _back4(g, a_next, dA_acc, h_prev, h0, h1, h2, h3, a2, a_nat, dl, uf, w, dy, bt, ct,
           R: tl.constexpr, N: tl.constexpr):
    """The adjoint over one 4-step tile, last step first, given the state before the tile and
    its four states. Returns g, a_next, dA_acc and the tile's du (without D), d(delta) (before
    the softplus), dB and dC partial sums."""
    d0, d1, d2, d3 = _cols(dl, R)
    u0, u1, u2, u3 = _cols(uf, R)
    w0, w1, w2, w3 = _cols(w, R)
    q0, q1, q2, q3 = _cols(dy, R)
    b0, b1, b2, b3 = _cols3(_over_d(bt, R, N), R, N)
    c0, c1, c2, c3 = _cols3(_over_d(ct, R, N), R, N)
    g, a_next, du3, dd3, ga, db3, dc3 = _adjoint(g, a_next, h2, h3, a2, a_nat, d3, u3, w3, q3, b3, c3)
    dA_acc += ga
    g, a_next, du2, dd2, ga, db2, dc2 = _adjoint(g, a_next, h1, h2, a2, a_nat, d2, u2, w2, q2, b2, c2)
    dA_acc += ga
    g, a_next, du1, dd1, ga, db1, dc1 = _adjoint(g, a_next, h0, h1, a2, a_nat, d1, u1, w1, q1, b1, c1)
    dA_acc += ga
    g, a_next, du0, dd0, ga, db0, dc0 = _adjoint(g, a_next, h_prev, h0, a2, a_nat, d0, u0, w0, q0, b0, c0)
    dA_acc += ga
    return (g, a_next, dA_acc, _join(du0, du1, du2, du3, R), _join(dd0, dd1, dd2, dd3, R),
            _join(db0, db1, db2, db3, N), _join(dc0, dc1, dc2, dc3, N))


@triton.jit(do_not_specialize=["s_an", "s_one"])
def _scan_bwd_segment_kernel(
    delta, A, C, z, delta_bias, dout, seg_adj, seg_dsum,
    dim, dstate, L, SEG, s_an, s_ad, s_one, s_db, s_dd, s_Cb, s_Cn, s_zb, s_zd, s_gb, s_gd,
    NSEG: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    EVEN: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, STAGES: tl.constexpr,
):
    """First backward pass: segment k (all but the first) runs the adjoint back from zero and
    keeps a_start * g_start and its sum of delta: what the segment before it receives."""
    pid_d, k, b, start, end, offs_d, offs_n, offs_j, md, mn, mdn, a_nat, a2, bias = _program(
        A, delta_bias, dim, dstate, L, SEG, s_an, s_ad, 1, HAS_BIAS, EVEN, BLOCK_D, BLOCK_N)
    d_p = _tile_ptrs(delta, b, s_db, offs_d, s_dd, offs_j)
    z_p = _tile_ptrs(z, b, s_zb, offs_d, s_zd, offs_j)
    g_p = _tile_ptrs(dout, b, s_gb, offs_d, s_gd, offs_j)
    c_p = _tile_ptrs(C, b, s_Cb, offs_n, s_Cn, offs_j)
    g = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    a_next = tl.full((BLOCK_D, BLOCK_N), 1.0, tl.float32)
    dsum = tl.zeros((BLOCK_D, 4), tl.float32)
    n_tiles = tl.cdiv(end - start, 4)
    for i in tl.range(0, n_tiles, num_stages=STAGES):
        t = start + (n_tiles - 1 - i) * 4
        m2 = md[:, None] & (offs_j[None, :] + t < end)
        dl = _delta(_load(d_p + t, m2, EVEN), bias, HAS_BIAS, SOFTPLUS)
        dy = _load(g_p + t, m2, EVEN)
        if HAS_Z:
            zv = _load(z_p + t, m2, EVEN)
            dy *= zv * _sigmoid(zv)
        if not EVEN:
            dl = tl.where(m2, dl, 0.0)
            dy = tl.where(m2, dy, 0.0)
        d0, d1, d2, d3 = _cols(dl, BLOCK_D)
        q0, q1, q2, q3 = _cols(dy, BLOCK_D)
        c0, c1, c2, c3 = _cols3(_over_d(_load(c_p + t, mn[:, None] & (offs_j[None, :] + t < end), EVEN),
                                        BLOCK_D, BLOCK_N), BLOCK_D, BLOCK_N)
        g = g * a_next + c3 * q3[:, None]
        g = g * tl.exp2(a2 * d3[:, None]) + c2 * q2[:, None]
        g = g * tl.exp2(a2 * d2[:, None]) + c1 * q1[:, None]
        g = g * tl.exp2(a2 * d1[:, None]) + c0 * q0[:, None]
        a_next = tl.exp2(a2 * d0[:, None])
        dsum += dl
    slot = b * NSEG + k
    tl.store(seg_adj + (slot * dstate + offs_n[None, :]) * dim + offs_d[:, None] * s_one, g * a_next, mask=mdn)
    tl.store(seg_dsum + slot * dim + offs_d, tl.sum(dsum, axis=1), mask=md)


@triton.jit
def _bwd_gates(u_p, d_p, g_p, z_p, m, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_Z: tl.constexpr,
               EVEN: tl.constexpr):
    """Per-(channel, step) backward math on a tile of pointers: u, delta (after the softplus),
    d softplus / d delta, dy (dout through the gate) and dz per unit of (y + D u); masked steps
    get delta = dy = 0."""
    uv = _load(u_p, m, EVEN)
    r = _load(d_p, m, EVEN)
    if HAS_BIAS:
        r += bias
    if SOFTPLUS:
        dl = _softplus(r)
        dsp = _sigmoid(r)
    else:
        dl = r
        dsp = tl.full(r.shape, 1.0, tl.float32)
    go = _load(g_p, m, EVEN)
    if HAS_Z:
        zv = _load(z_p, m, EVEN)
        sz = _sigmoid(zv)
        dy = go * zv * sz
        dzc = go * sz * (1.0 + zv * (1.0 - sz))
    else:
        dy = go
        dzc = go
    if not EVEN:
        dl = tl.where(m, dl, 0.0)
        dy = tl.where(m, dy, 0.0)
    return uv, dl, dsp, dy, dzc


@triton.jit
def _bwd_tile_gates(u, delta, z, dout, u_1, d_1, z_1, g_1, t, end, md_1, j_1, bias_1, dv_1,
                    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
                    EVEN: tl.constexpr, R: tl.constexpr):
    """The backward's per-(channel, step) math for steps t..t+3, on the flattened (R * 4,) tile:
    there each element is computed once, while in the state's layout every lane of a channel
    would redo its four steps (softplus, two sigmoids: 4x the special-function ops). Returns
    (R, 4) tiles: u, delta, delta*u, dy (dout through the gate), dz per unit of (y + D u),
    d softplus / d delta, D u; and the flat dout*gate*u for dD."""
    m = md_1 & (j_1 + t < end)
    uv, dl, dsp, dy, dzc = _bwd_gates(u + u_1 + t, delta + d_1 + t, dout + g_1 + t, z + z_1 + t, m, bias_1,
                                      HAS_BIAS, SOFTPLUS, HAS_Z, EVEN)
    ud = uv * dv_1 if HAS_D else tl.zeros(uv.shape, tl.float32)
    shape: tl.constexpr = (R, 4)
    return (tl.reshape(uv, shape), tl.reshape(dl, shape), tl.reshape(dl * uv, shape), tl.reshape(dy, shape),
            tl.reshape(dzc, shape), tl.reshape(dsp, shape), tl.reshape(ud, shape), dy * uv)


@triton.jit
def _states4(h, a2, dl, w, bt, R: tl.constexpr, N: tl.constexpr):
    """The four states after h (as _rebuild4, without y)."""
    d0, d1, d2, d3 = _cols(dl, R)
    w0, w1, w2, w3 = _cols(w, R)
    b0, b1, b2, b3 = _cols3(_over_d(bt, R, N), R, N)
    h0 = h * tl.exp2(a2 * d0[:, None]) + b0 * w0[:, None]
    h1 = h0 * tl.exp2(a2 * d1[:, None]) + b1 * w1[:, None]
    h2 = h1 * tl.exp2(a2 * d2[:, None]) + b2 * w2[:, None]
    return h0, h1, h2, h2 * tl.exp2(a2 * d3[:, None]) + b3 * w3[:, None]


@triton.jit
def _bwd_out4(du, ddelta, dB, dC, u_off, d_off, bc_off, t, dut, ddt, dBt, dCt, dy, dsp, dv, m2, m3,
              HAS_D: tl.constexpr, SOFTPLUS: tl.constexpr, EVEN: tl.constexpr):
    """A 4-step tile's du, d(delta) (stored) and dB, dC (atomics); returns d(delta) for d(bias)."""
    if HAS_D:
        dut += dy * dv[:, None]
    if SOFTPLUS:
        ddt *= dsp
    if not EVEN:
        ddt = tl.where(m2, ddt, 0.0)
    _store(du + u_off + t, dut, m2, EVEN)
    _store(ddelta + d_off + t, ddt, m2, EVEN)
    _add(dB + bc_off + t, dBt, m3, EVEN)
    _add(dC + bc_off + t, dCt, m3, EVEN)
    return ddt


@triton.jit(do_not_specialize=["s_an", "s_one"])
def _scan_bwd_kernel(
    u, delta, A, B, C, D, z, delta_bias, dout, chunk_states, dlast, seg_adj, seg_dsum,
    du, ddelta, dA, dB, dC, dD, dz, dbias,
    dim, dstate, L, SEG, s_an, s_ad, s_one,
    s_ub, s_ud, s_db, s_dd, s_Bb, s_Bn, s_Cb, s_Cn, s_zb, s_zd, s_gb, s_gd,
    NSEG: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_DLAST: tl.constexpr, EVEN: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
    PAIR: tl.constexpr, STAGES: tl.constexpr, CPI: tl.constexpr, HALF: tl.constexpr,
):
    """The segment's chunks of 8 steps, last first: rebuild h_1..h_8 in registers from the
    saved state (and y, for dz), then walk back over them. dA, dD, d(bias) accumulate per
    program and go out with one atomic add each at the end."""
    pid_d, k, b, start, end, offs_d, offs_n, offs_j, md, mn, mdn, a_nat, a2, bias = _program(
        A, delta_bias, dim, dstate, L, SEG, s_an, s_ad, 0, HAS_BIAS, EVEN, BLOCK_D, BLOCK_N)
    dv = _load(D + offs_d, md, EVEN) if HAS_D else 0.0
    u_off = b * s_ub + offs_d[:, None] * s_ud + offs_j[None, :]
    d_off = b * s_db + offs_d[:, None] * s_dd + offs_j[None, :]
    z_off = b * s_zb + offs_d[:, None] * s_zd + offs_j[None, :]
    # the same (BLOCK_D, 4) tiles flattened, for the per-(channel, step) math (see _bwd_tile_gates)
    offs_1 = tl.arange(0, BLOCK_D * 4)
    ch_1 = pid_d * BLOCK_D + offs_1 // 4
    j_1 = offs_1 % 4
    md_1 = ch_1 < dim
    u_1 = b * s_ub + ch_1 * s_ud + j_1
    d_1 = b * s_db + ch_1 * s_dd + j_1
    z_1 = b * s_zb + ch_1 * s_zd + j_1
    g_1 = b * s_gb + ch_1 * s_gd + j_1
    bias_1 = _load(delta_bias + ch_1, md_1, EVEN) if HAS_BIAS else 0.0
    dv_1 = _load(D + ch_1, md_1, EVEN) if HAS_D else 0.0
    b_p = _tile_ptrs(B, b, s_Bb, offs_n, s_Bn, offs_j)                # (BLOCK_N, 4)
    c_p = _tile_ptrs(C, b, s_Cb, offs_n, s_Cn, offs_j)
    bc_off = (b * dstate + offs_n[:, None]) * L + offs_j[None, :]                  # (BLOCK_N, 4) into dB, dC
    n_chunks = tl.cdiv(L, 8)
    seg_chunks = tl.cdiv(end - start, 8)
    d_pairs = pid_d * BLOCK_D + tl.max_contiguous(tl.arange(0, BLOCK_D), PAIR)
    st_p = chunk_states + b * n_chunks * dim * dstate + offs_n[None, :] * dim + d_pairs[:, None]
    if HAS_DLAST:
        g = _load(dlast + b * dim * dstate + offs_d[:, None] * dstate + offs_n[None, :] * s_one, mdn, EVEN)
    else:
        g = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    k_d = k + 0 * offs_d   # the segment index per channel (a vector, so that masks broadcast everywhere)
    for i in tl.static_range(NSEG - 1):   # what the later segments send back, each decayed over those between
        j = NSEG - 1 - i
        slot = b * NSEG + j
        mj = mdn & (k_d[:, None] < j)
        g_in = tl.load(seg_adj + (slot * dstate + offs_n[None, :]) * dim + d_pairs[:, None], mask=mj, other=0.0)
        ds = tl.load(seg_dsum + slot * dim + offs_d, mask=md & (k_d < j), other=0.0)
        g = g * tl.exp2(a2 * ds[:, None]) + g_in     # masked (j <= k): g unchanged
    a_next = tl.full((BLOCK_D, BLOCK_N), 1.0, tl.float32)
    dA_acc = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dD_acc = tl.zeros((BLOCK_D * 4,), tl.float32)
    dbias_acc = tl.zeros((BLOCK_D, 4), tl.float32)
    for cc in tl.range(0, tl.cdiv(seg_chunks, CPI), num_stages=STAGES):   # CPI chunks per iteration, last first
        for q in tl.static_range(CPI):
            c = start // 8 + seg_chunks - 1 - (cc * CPI + q)
            t0 = c * 8
            # a chunk before the segment (the last iteration of a ragged count): every mask off
            lim = end if EVEN else tl.where(t0 >= start, end, -(1 << 30))
            t1 = t0 + 4
            m2a = md[:, None] & (offs_j[None, :] + t0 < lim)
            m2b = md[:, None] & (offs_j[None, :] + t1 < lim)
            m3a = mn[:, None] & (offs_j[None, :] + t0 < lim)
            m3b = mn[:, None] & (offs_j[None, :] + t1 < lim)
            if HALF:
                # 1) the first half's gates and h_3 (and y for dz) from the saved state; nothing else of
                # the first half stays live while the second half is walked back
                ua, dla, wa, dya, dza, dspa, uda, dDa = _bwd_tile_gates(
                    u, delta, z, dout, u_1, d_1, z_1, g_1, t0, lim, md_1, j_1, bias_1, dv_1,
                    HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, EVEN, BLOCK_D)
                h_s = tl.load(st_p + c * dim * dstate, mask=mdn & (t0 + 0 * offs_d[:, None] >= start), other=0.0)
                _, _, _, h3, ya = _rebuild4(h_s, a2, dla, wa, _load(b_p + t0, m3a, EVEN), _load(c_p + t0, m3a, EVEN),
                                            BLOCK_D, BLOCK_N)
                if HAS_Z:
                    _store(dz + z_off + t0, dza * (ya + uda), m2a, EVEN)
                ub, dlb, wb, dyb, dzb, dspb, udb, dDb = _bwd_tile_gates(
                    u, delta, z, dout, u_1, d_1, z_1, g_1, t1, lim, md_1, j_1, bias_1, dv_1,
                    HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, EVEN, BLOCK_D)
                dD_acc += dDa + dDb
                # 2) the second half: rebuild h_4..h_7, walk back from h_7 to h_3
                h4, h5, h6, h7, yb = _rebuild4(h3, a2, dlb, wb, _load(b_p + t1, m3b, EVEN),
                                               _load(c_p + t1, m3b, EVEN), BLOCK_D, BLOCK_N)
                if HAS_Z:
                    _store(dz + z_off + t1, dzb * (yb + udb), m2b, EVEN)
                g, a_next, dA_acc, dub, ddb, dBb, dCb = _back4(
                    g, a_next, dA_acc, h3, h4, h5, h6, h7, a2, a_nat, dlb, ub, wb, dyb,
                    _load(b_p + t1, m3b, EVEN), _load(c_p + t1, m3b, EVEN), BLOCK_D, BLOCK_N)
                dbias_acc += _bwd_out4(du, ddelta, dB, dC, u_off, d_off, bc_off, t1, dub, ddb, dBb, dCb, dyb, dspb, dv,
                                       m2b, m3b, HAS_D, SOFTPLUS, EVEN)
                # 3) the first half again: gates and saved state read again after those stores (so the
                # compiler cannot keep step 1's values live instead), rebuilt and walked back
                ua, dla, wa, dya, _, dspa, _, _ = _bwd_tile_gates(
                    u, delta, z, dout, u_1, d_1, z_1, g_1, t0, lim, md_1, j_1, bias_1, dv_1,
                    HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, EVEN, BLOCK_D)
                h_s = tl.load(st_p + c * dim * dstate, mask=mdn & (t0 + 0 * offs_d[:, None] >= start), other=0.0)
                h0, h1, h2, h3 = _states4(h_s, a2, dla, wa, _load(b_p + t0, m3a, EVEN), BLOCK_D, BLOCK_N)
                g, a_next, dA_acc, dua, dda, dBa, dCa = _back4(
                    g, a_next, dA_acc, h_s, h0, h1, h2, h3, a2, a_nat, dla, ua, wa, dya,
                    _load(b_p + t0, m3a, EVEN), _load(c_p + t0, m3a, EVEN), BLOCK_D, BLOCK_N)
                dbias_acc += _bwd_out4(du, ddelta, dB, dC, u_off, d_off, bc_off, t0, dua, dda, dBa, dCa, dya, dspa, dv,
                                       m2a, m3a, HAS_D, SOFTPLUS, EVEN)
            else:
                ua, dla, wa, dya, dza, dspa, uda, dDa = _bwd_tile_gates(
                    u, delta, z, dout, u_1, d_1, z_1, g_1, t0, lim, md_1, j_1, bias_1, dv_1,
                    HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, EVEN, BLOCK_D)
                ub, dlb, wb, dyb, dzb, dspb, udb, dDb = _bwd_tile_gates(
                    u, delta, z, dout, u_1, d_1, z_1, g_1, t1, lim, md_1, j_1, bias_1, dv_1,
                    HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, EVEN, BLOCK_D)
                dD_acc += dDa + dDb
                # 1) rebuild h over the chunk (and y where the gate needs it)
                h_s = tl.load(st_p + c * dim * dstate, mask=mdn & (t0 + 0 * offs_d[:, None] >= start), other=0.0)
                h0, h1, h2, h3, ya = _rebuild4(h_s, a2, dla, wa, _load(b_p + t0, m3a, EVEN), _load(c_p + t0, m3a, EVEN),
                                               BLOCK_D, BLOCK_N)
                h4, h5, h6, h7, yb = _rebuild4(h3, a2, dlb, wb, _load(b_p + t1, m3b, EVEN), _load(c_p + t1, m3b, EVEN),
                                               BLOCK_D, BLOCK_N)
                if HAS_Z:
                    _store(dz + z_off + t0, dza * (ya + uda), m2a, EVEN)
                    _store(dz + z_off + t1, dzb * (yb + udb), m2b, EVEN)
                # 2) walk back: second half of the chunk, then the first (B, C read again: an L1 hit
                # costs less than keeping 8 steps of them in registers)
                g, a_next, dA_acc, dub, ddb, dBb, dCb = _back4(
                    g, a_next, dA_acc, h3, h4, h5, h6, h7, a2, a_nat, dlb, ub, wb, dyb,
                    _load(b_p + t1, m3b, EVEN), _load(c_p + t1, m3b, EVEN), BLOCK_D, BLOCK_N)
                g, a_next, dA_acc, dua, dda, dBa, dCa = _back4(
                    g, a_next, dA_acc, h_s, h0, h1, h2, h3, a2, a_nat, dla, ua, wa, dya,
                    _load(b_p + t0, m3a, EVEN), _load(c_p + t0, m3a, EVEN), BLOCK_D, BLOCK_N)
                if HAS_D:
                    dua += dya * dv[:, None]
                    dub += dyb * dv[:, None]
                if SOFTPLUS:
                    dda *= dspa
                    ddb *= dspb
                if not EVEN:
                    dda = tl.where(m2a, dda, 0.0)
                    ddb = tl.where(m2b, ddb, 0.0)
                dbias_acc += dda + ddb
                _store(du + u_off + t0, dua, m2a, EVEN)
                _store(du + u_off + t1, dub, m2b, EVEN)
                _store(ddelta + d_off + t0, dda, m2a, EVEN)
                _store(ddelta + d_off + t1, ddb, m2b, EVEN)
                _add(dB + bc_off + t0, dBa, m3a, EVEN)
                _add(dB + bc_off + t1, dBb, m3b, EVEN)
                _add(dC + bc_off + t0, dCa, m3a, EVEN)
                _add(dC + bc_off + t1, dCb, m3b, EVEN)
    tl.atomic_add(dA + offs_d[:, None] * s_ad + offs_n[None, :] * s_an, dA_acc, mask=mdn, sem="relaxed")
    if HAS_D:
        tl.atomic_add(dD + offs_d, tl.sum(tl.reshape(dD_acc, (BLOCK_D, 4)), axis=1), mask=md, sem="relaxed")
    if HAS_BIAS:
        tl.atomic_add(dbias + offs_d, tl.sum(dbias_acc, axis=1), mask=md, sem="relaxed")


_launch_fwd_segment, _launch_fwd = _Launcher(_scan_fwd_segment_kernel), _Launcher(_scan_fwd_kernel)
_launch_bwd_segment, _launch_bwd = _Launcher(_scan_bwd_segment_kernel), _Launcher(_scan_bwd_kernel)


def _even(dim, dstate, L, block_d, seg):
    return dim % block_d == 0 and dstate == next_pow2(dstate) and L % seg == 0


def _strides(u, delta, B, C, z, g):
    return (u.stride(0), u.stride(1), delta.stride(0), delta.stride(1), B.stride(0), B.stride(1),
            C.stride(0), C.stride(1), 0 if z is None else z.stride(0), 0 if z is None else z.stride(1),
            g.stride(0), g.stride(1))


def _segment_scratch(batch, n_seg, dim, dstate, device):
    """Per segment: the state (or adjoint) it hands on and its sum of delta."""
    new = triton_utils.new_output
    return new((batch, n_seg, dstate, dim), torch.float32, device), new((batch, n_seg, dim), torch.float32, device)


def _fwd(u, delta, A, B, C, D, z, delta_bias, softplus_on: bool, save_states: bool, config=None):
    batch, dim, L = u.shape
    dstate = A.shape[1]
    block_d, warps, stages, sub, seg_len, flat = _full(config or _config(FWD_CONFIG, dstate, forward=True), 6)
    if flat not in (0, 1, 2) or (flat == 2 and sub % 2):
        raise ValueError(f"forward scan config {config}: flat must be 0, 1 or 2, and flat 2 (8-step rows) needs an even SUB")
    seg, n_seg = _segments(L, cdiv(dim, block_d) * batch, seg_len)
    out = triton_utils.new_output(u.shape, u.dtype, u.device)
    last = triton_utils.new_output((batch, dim, dstate), torch.float32, u.device)
    states = (triton_utils.new_output((batch, cdiv(L, CHUNK), dstate, dim), torch.float32, u.device)
              if save_states else last)
    dummy = u
    even = _even(dim, dstate, L, block_d, seg) and seg % (4 * sub) == 0   # no tile of 4 * sub steps crosses the end
    flags = dict(HAS_BIAS=delta_bias is not None, SOFTPLUS=softplus_on, EVEN=even,
                 BLOCK_D=block_d, BLOCK_N=next_pow2(dstate), STAGES=stages, SUB=sub, num_warps=warps)
    bias = dummy if delta_bias is None else delta_bias
    seg_state, seg_dsum = _segment_scratch(batch, n_seg, dim, dstate, u.device) if n_seg > 1 else (dummy, dummy)
    if n_seg > 1:
        _launch_fwd_segment((cdiv(dim, block_d), n_seg - 1, batch),
            u, delta, A, B, bias, seg_state, seg_dsum, dim, dstate, L, seg, A.stride(1), A.stride(0), 1,
            u.stride(0), u.stride(1), delta.stride(0), delta.stride(1), B.stride(0), B.stride(1),
            NSEG=n_seg, **flags)
    _launch_fwd((cdiv(dim, block_d), n_seg, batch),
        u, delta, A, B, C, dummy if D is None else D, dummy if z is None else z, bias, out, last, states,
        seg_state, seg_dsum, dim, dstate, L, seg, A.stride(1), A.stride(0), 1, *_strides(u, delta, B, C, z, out),
        NSEG=n_seg, HAS_D=D is not None, HAS_Z=z is not None, SAVE_STATES=save_states, CHUNK=CHUNK,
        FLAT=int(flat), **flags)
    return out, last, states


def _bwd(dout, dlast, u, delta, A, B, C, D, z, delta_bias, softplus_on, states, config=None):
    batch, dim, L = u.shape
    dstate = A.shape[1]
    block_d, warps, stages, cpi, seg_len, pair, half, lanes, maxnreg = _full(
        config or _config(BWD_CONFIG, dstate, forward=False), 9)
    assert CHUNK == 8 and states.shape[1] == cdiv(L, 8), "the backward rebuilds 8 steps from each saved state"
    perm = lanes == 2   # lanes 2: its reduce-scatter with the permuted state slots (fewer selects)
    lanes = bool(lanes) and dstate == 16   # the two-lanes-per-channel kernel (selective_scan_bwd_lanes.py)
    if lanes:
        block_d, cpi = 16, 1
    seg, n_seg = _segments(L, cdiv(dim, block_d) * batch, seg_len)
    dout = dout.contiguous()
    new = triton_utils.new_output
    du, ddelta = new(u.shape, u.dtype, u.device), new(delta.shape, delta.dtype, u.device)
    dz = new(z.shape, z.dtype, u.device) if z is not None else None
    # everything summed with atomics starts at zero: one buffer, one launch
    sizes = [dim * dstate, batch * dstate * L, batch * dstate * L, dim, dim]
    dA, dB, dC, dD, dbias = torch.zeros(sum(sizes), dtype=torch.float32, device=u.device).split(sizes)
    dA, dB, dC = dA.view(dim, dstate), dB.view(batch, dstate, L), dC.view(batch, dstate, L)
    dD = dD if D is not None else None
    dbias = dbias if delta_bias is not None else None
    dummy = u
    flags = dict(HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=softplus_on,
                 EVEN=_even(dim, dstate, L, block_d, seg) and (seg // 8) % cpi == 0, BLOCK_D=block_d,
                 BLOCK_N=next_pow2(dstate),
                 STAGES=stages, num_warps=warps)
    zz, bias = dummy if z is None else z, dummy if delta_bias is None else delta_bias
    seg_adj, seg_dsum = _segment_scratch(batch, n_seg, dim, dstate, u.device) if n_seg > 1 else (dummy, dummy)
    if n_seg > 1:
        _launch_bwd_segment((cdiv(dim, block_d), n_seg - 1, batch),
            delta, A, C, zz, bias, dout, seg_adj, seg_dsum, dim, dstate, L, seg, A.stride(1), A.stride(0), 1,
            delta.stride(0), delta.stride(1), C.stride(0), C.stride(1), *_strides(u, delta, B, C, z, dout)[8:],
            NSEG=n_seg, **flags)
    grid = (cdiv(dim, block_d), n_seg, batch)
    args = (u, delta, A, B, C, dummy if D is None else D, zz, bias, dout, states, dummy if dlast is None else dlast,
            seg_adj, seg_dsum, du, ddelta, dA, dB, dC, dummy if dD is None else dD, dummy if dz is None else dz,
            dummy if dbias is None else dbias)
    strides = _strides(u, delta, B, C, z, dout)
    if lanes:   # B, C go transposed (launch_bwd_lanes): no strides of theirs
        from .selective_scan_bwd_lanes import launch_bwd_lanes
        launch_bwd_lanes(grid, *args, dim, L, seg, A.stride(1), A.stride(0), *strides[:4], *strides[8:],
            NSEG=n_seg, HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=softplus_on, HAS_DLAST=dlast is not None, EVEN=flags["EVEN"], PERM=perm, num_warps=1,
            num_stages=stages, **({"maxnreg": maxnreg} if maxnreg else {}))
    else:
        _launch_bwd(grid, *args, dim, dstate, L, seg, A.stride(1), A.stride(0), 1, *strides,
            NSEG=n_seg, HAS_D=D is not None, HAS_DLAST=dlast is not None, PAIR=pair or max(1, block_d // 8), CPI=cpi,
            HALF=bool(half), **flags)
    cast = lambda g, like: None if g is None else g.to(like.dtype)  # noqa: E731
    return du, ddelta, cast(dA, A), cast(dB, B), cast(dC, C), cast(dD, D), dz, cast(dbias, delta_bias)


def _last_contig(t):
    return t if t is None or t.stride(-1) == 1 else t.contiguous()


class SelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus_on):
        out, last, states = _fwd(u, delta, A, B, C, D, z, delta_bias, softplus_on, save_states=True)
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
