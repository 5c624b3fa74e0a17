"""Kernel benchmark (H100/H200): every Triton kernel beside its PyTorch reference, same run.

Reports time, achieved GB/s over the *minimum* bytes (each input read once, each output
written once; scratch and re-reads do not count) and that as a fraction of the measured
device-to-device copy bandwidth (bytes read + bytes written of a 1 GiB `copy_`).

Targets (issue 4): streaming step >= 90% of copy bandwidth at batch 8192 and <= 15 us at
batch 1 under CUDA-graph replay; selective scan (16, 1024, 512, 16) forward >= 50% and
forward+backward >= 30% of copy bandwidth; FPS 1024 of 8192 points x 16 clouds >= 10x the
vectorized PyTorch version.

    python benchmarks/kernel_speed.py [--quick] [--sweep] [--only-scan] [--profile-host]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import triton
import triton.testing

from vla_stack import bench
from vla_stack.kernels import (farthest_point_sample_ref, knn_ref, point_ops_triton, selective_scan_ref,
                               selective_scan_triton, selective_state_update_ref, state_update_triton)

GB = 1e9


def median_ms(fn, warmup=25, rep=200) -> float:
    return float(triton.testing.do_bench(fn, warmup=warmup, rep=rep, return_mode="median"))


def host_us(fn, calls: int = 30) -> float:
    """Host time per call (Python, autograd, launches) with the GPU running behind: the queue
    never fills at this count, so nothing waits on the device until the final sync."""
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    dt = (time.perf_counter() - t) / calls
    torch.cuda.synchronize()
    return dt * 1e6


def copy_bandwidth_gbs() -> float:
    n = 1 << 28   # 1 GiB of float32
    src, dst = torch.randn(n, device="cuda"), torch.empty(n, device="cuda")
    ms = median_ms(lambda: dst.copy_(src))
    return 2 * n * 4 / (ms * 1e-3) / GB


def graph_of(fn, steps: int = 1):
    fn()                                    # compile / warm up outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(steps):
            fn()
    return g


#: metric name -> call, timed as CUDA-graph replays at the end of the run: a failed capture can leave
#: the allocator or stream unusable, so nothing else runs after these.
LATER_GRAPHS = {}


def graph_ms(fn) -> float:
    """Median time of `fn` replayed from a CUDA graph (GPU time without host gaps); NaN if the
    capture fails (reported, the run goes on)."""
    try:
        return median_ms(graph_of(fn).replay)
    except Exception as e:  # noqa: BLE001
        print(f"graph capture failed: {type(e).__name__}: {str(e)[:200]}")
        return float("nan")


def step_inputs(b, d=512, n=16):
    r = lambda *s: torch.randn(*s, device="cuda")  # noqa: E731
    return dict(state=r(b, d, n), x=r(b, d), dt=r(b, d), A=-torch.rand(d, n, device="cuda"), B=r(b, n), C=r(b, n),
                D=r(d), z=r(b, d), dt_bias=r(d))


def step_bytes(b, d=512, n=16) -> int:
    return 4 * (2 * b * d * n + 4 * b * d + 2 * b * n + d * n + 2 * d)   # state r+w; x, dt, z, out; B, C; A; D, bias


def bench_step(copy_gbs, rows, metrics, batches):
    for b in batches:
        x = step_inputs(b)
        out = torch.empty_like(x["x"])
        tri = lambda: state_update_triton.selective_state_update_triton(**x, out=out)  # noqa: E731
        ref = lambda: selective_state_update_ref(**x)  # noqa: E731
        g1 = graph_of(tri)
        t_graph = median_ms(g1.replay)
        g20 = graph_of(tri, 20)
        t_graph_loop = median_ms(g20.replay) / 20
        t_eager = median_ms(tri)
        t_ref = median_ms(ref)
        t_ref_graph = median_ms(graph_of(ref).replay)
        gbs = step_bytes(b) / (t_graph * 1e-3) / GB
        rows.append(dict(kernel="step", size=f"b={b}", triton_ms=t_graph, ref_ms=t_ref, speedup=t_ref / t_graph,
                         GBps=gbs, frac_copy=gbs / copy_gbs))
        metrics.update({f"step_b{b}_triton_graph_us": t_graph * 1e3, f"step_b{b}_triton_graph_20steps_per_step_us": t_graph_loop * 1e3,
                        f"step_b{b}_triton_eager_us": t_eager * 1e3, f"step_b{b}_ref_eager_us": t_ref * 1e3,
                        f"step_b{b}_ref_graph_us": t_ref_graph * 1e3, f"step_b{b}_triton_GBps": gbs,
                        f"step_b{b}_triton_frac_copy": gbs / copy_gbs, f"step_b{b}_min_bytes": step_bytes(b)})


def scan_inputs(b, L, d, n, dtype):
    r = lambda *s: torch.randn(*s, device="cuda")  # noqa: E731
    x = dict(u=r(b, d, L), delta=r(b, d, L) * 0.5 - 1, A=-torch.rand(d, n, device="cuda") * 4, B=r(b, n, L),
             C=r(b, n, L), D=r(d), z=r(b, d, L), delta_bias=r(d) * 0.2)
    return {k: v.to(dtype) if k in ("u", "delta", "B", "C", "z") else v for k, v in x.items()}


def scan_bytes(b, L, d, n, es, backward: bool) -> int:
    small = 4 * (d * n + 2 * d)                          # A, D, delta_bias
    fwd = es * (4 * b * d * L + 2 * b * n * L) + small   # u, delta, z, out; B, C
    if not backward:
        return fwd
    # one function: inputs u, delta, z, B, C, dout (+ A, D, bias) read once; out, du, ddelta, dz, dB, dC (+ dA, dD, dbias) written once
    return es * (8 * b * d * L + 4 * b * n * L) + 2 * small


def bench_scan(copy_gbs, rows, metrics, b, L, d, n, dtype, ref_too: bool):
    tag = f"scan_b{b}_L{L}_d{d}_n{n}_{str(dtype).split('.')[-1]}"
    es = torch.tensor([], dtype=dtype).element_size()
    x = scan_inputs(b, L, d, n, dtype)
    S = selective_scan_triton
    xr = {k: v.requires_grad_() if v.is_floating_point() else v for k, v in scan_inputs(b, L, d, n, dtype).items()}
    out = S.selective_scan_triton(**xr)
    dout = torch.randn_like(out)
    params = list(xr.values())

    def fwd_bwd(fn):
        o = fn(**xr)
        torch.autograd.grad(o, params, dout)

    # the same calls launched through Triton's `kernel[grid](...)` and through the cached binaries
    for fast, sfx in ((False, "_jitlaunch"), (True, "")):
        S.FAST_LAUNCH = fast
        t_fwd = median_ms(lambda: S.selective_scan_triton(**x))
        t_fb = median_ms(lambda: fwd_bwd(S.selective_scan_triton))
        with torch.no_grad():
            h_fwd = host_us(lambda: S.selective_scan_triton(**x))
        h_fb = host_us(lambda: fwd_bwd(S.selective_scan_triton))
        metrics.update({f"{tag}_fwd_host{sfx}_us": h_fwd, f"{tag}_fwdbwd_host{sfx}_us": h_fb,
                        f"{tag}_fwd{sfx}_triton_ms": t_fwd, f"{tag}_fwdbwd{sfx}_triton_ms": t_fb})
    # the two halves alone: the training forward (saves a state every CHUNK steps) and the backward kernel
    kw = dict(softplus_on=True, **{k: v.detach() for k, v in xr.items()})
    _, _, states = S._fwd(**kw, save_states=True)
    t_fwd_train = median_ms(lambda: S._fwd(**kw, save_states=True))
    t_bwd = median_ms(lambda: S._bwd(dout, None, kw["u"], kw["delta"], kw["A"], kw["B"], kw["C"], kw["D"], kw["z"],
                                     kw["delta_bias"], True, states))
    bwd_args = (dout, None, kw["u"], kw["delta"], kw["A"], kw["B"], kw["C"], kw["D"], kw["z"], kw["delta_bias"], True)
    t_fb_kernels = median_ms(lambda: S._bwd(*bwd_args, S._fwd(**kw, save_states=True)[2]))   # no autograd
    # GPU time alone: the same kernels replayed from CUDA graphs, timed last (see main)
    LATER_GRAPHS.update({f"{tag}_fwd_graph_triton_ms": lambda: S.selective_scan_triton(**x),
                         f"{tag}_fwd_train_graph_triton_ms": lambda: S._fwd(**kw, save_states=True),
                         f"{tag}_bwd_kernel_graph_triton_ms": lambda: S._bwd(*bwd_args, states),
                         f"{tag}_fwdbwd_kernels_only_graph_triton_ms":
                             lambda: S._bwd(*bwd_args, S._fwd(**kw, save_states=True)[2])})
    metrics.update({f"{tag}_fwd_train_triton_ms": t_fwd_train, f"{tag}_bwd_kernel_triton_ms": t_bwd,
                    f"{tag}_fwdbwd_kernels_only_triton_ms": t_fb_kernels})
    bf, bfb = scan_bytes(b, L, d, n, es, False), scan_bytes(b, L, d, n, es, True)
    g_f, g_fb = bf / (t_fwd * 1e-3) / GB, bfb / (t_fb * 1e-3) / GB
    metrics.update({f"{tag}_fwd_GBps": g_f, f"{tag}_fwd_frac_copy": g_f / copy_gbs,
                    f"{tag}_fwdbwd_GBps": g_fb, f"{tag}_fwdbwd_frac_copy": g_fb / copy_gbs,
                    f"{tag}_fwd_min_bytes": bf, f"{tag}_fwdbwd_min_bytes": bfb})
    rf = rfb = float("nan")
    if ref_too:
        with torch.no_grad():
            rf = median_ms(lambda: selective_scan_ref(**x), warmup=1, rep=1)
        rfb = median_ms(lambda: fwd_bwd(selective_scan_ref), warmup=1, rep=1)
        metrics.update({f"{tag}_fwd_ref_ms": rf, f"{tag}_fwdbwd_ref_ms": rfb,
                        f"{tag}_fwd_speedup_vs_ref": rf / t_fwd, f"{tag}_fwdbwd_speedup_vs_ref": rfb / t_fb})
    rows.append(dict(kernel="scan fwd", size=tag[5:], triton_ms=t_fwd, ref_ms=rf, speedup=rf / t_fwd, GBps=g_f,
                     frac_copy=g_f / copy_gbs))
    rows.append(dict(kernel="scan fwd+bwd", size=tag[5:], triton_ms=t_fb, ref_ms=rfb, speedup=rfb / t_fb, GBps=g_fb,
                     frac_copy=g_fb / copy_gbs))


# (BLOCK_D, chunk length T, num_warps) of the time-parallel forward, timed at the target size
CHUNKED_CONFIGS = [(16, 32, 4), (32, 32, 4), (16, 128, 4)]


def bench_scan_chunked(copy_gbs, rows, metrics, details, b=16, L=1024, d=512, n=16):
    """The associative-scan forward (kernels/selective_scan_chunked.py) beside the sequential one,
    inference forward at the target size; its output is checked against the sequential kernel's."""
    from vla_stack.kernels import selective_scan_chunked as SC

    x = scan_inputs(b, L, d, n, torch.float32)
    want = selective_scan_triton.selective_scan_triton(**x)
    times = {}
    for c in CHUNKED_CONFIGS:
        kw = dict(block_d=c[0], chunk=c[1], num_warps=c[2])
        try:
            diff = rel_diff(SC.selective_scan_chunked(**x, **kw)[0], want)
        except Exception as e:  # noqa: BLE001 - out of registers/shared memory
            times[str(c)] = f"failed: {type(e).__name__}"
            continue
        times[str(c)] = try_ms(lambda: SC.selective_scan_chunked(**x, **kw)) if diff < 1e-4 else f"wrong: {diff:.1e}"
    details["scan_chunked_fwd_ms_by_config"] = times
    print("chunked forward", times)
    if not any(isinstance(v, float) for v in times.values()):
        return
    best = min((v, k) for k, v in times.items() if isinstance(v, float))
    tag = f"scan_b{b}_L{L}_d{d}_n{n}_float32"
    gbs = scan_bytes(b, L, d, n, 4, False) / (best[0] * 1e-3) / GB
    metrics.update({f"{tag}_fwd_chunked_best_ms": best[0], f"{tag}_fwd_chunked_frac_copy": gbs / copy_gbs})
    details["scan_chunked_best_config"] = best[1]
    rows.append(dict(kernel=f"scan fwd, associative-scan kernel {best[1]}", size=tag[5:], triton_ms=best[0],
                     ref_ms=float("nan"), speedup=float("nan"), GBps=gbs, frac_copy=gbs / copy_gbs))


def bench_scan_small_grid(rows, metrics, b=1, L=8192, d=512, n=16):
    """A grid too small to fill the GPU (b * d / BLOCK_D programs): the automatic split into
    segments against one program per sequence, forward and training forward + backward kernels."""
    S = selective_scan_triton
    x = scan_inputs(b, L, d, n, torch.float32)
    kw = {**x, "softplus_on": True}
    dout = torch.randn_like(x["u"])
    fwd_cfg, bwd_cfg = S._config(S.FWD_CONFIG, n, forward=True), S._config(S.BWD_CONFIG, n, forward=False)
    tag = f"scan_b{b}_L{L}_d{d}_n{n}_float32"
    seg = lambda c, n: c[:4] + (n,) + c[5:]   # noqa: E731 - the segment length is field 4
    for name, fc, bc in (("auto_segments", seg(fwd_cfg, 0), seg(bwd_cfg, 0)),
                         ("one_segment", seg(fwd_cfg, L), seg(bwd_cfg, L))):
        t_fwd = median_ms(lambda: S._fwd(**kw, save_states=False, config=fc))
        bwd = lambda: S._bwd(dout, None, x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"],  # noqa: E731
                             x["delta_bias"], True, S._fwd(**kw, save_states=True, config=fc)[2], config=bc)
        t_fb = median_ms(bwd)
        metrics.update({f"{tag}_{name}_fwd_triton_ms": t_fwd, f"{tag}_{name}_fwdbwd_kernels_only_triton_ms": t_fb})
        rows.append(dict(kernel=f"scan fwd ({name})", size=tag[5:], triton_ms=t_fwd, ref_ms=float("nan"),
                         speedup=float("nan"), GBps=float("nan"), frac_copy=float("nan")))
        rows.append(dict(kernel=f"scan fwd+bwd kernels ({name})", size=tag[5:], triton_ms=t_fb, ref_ms=float("nan"),
                         speedup=float("nan"), GBps=float("nan"), frac_copy=float("nan")))


def try_ms(fn) -> float | str:
    try:
        return median_ms(fn)
    except Exception as e:  # noqa: BLE001 - some configs run out of registers/shared memory: skip them
        return f"failed: {type(e).__name__}: {str(e)[:80]}"


# d_state -> (forward configs, backward configs). Forward: (BLOCK_D, num_warps, pipeline stages,
# 4-step tiles per iteration, segment length[, flat]); backward: (BLOCK_D, num_warps, stages, 8-step chunks
# per iteration, segment length[, pair, half]). Segment length 1024 = the whole sequence in one program.
# Session 5 adds more warps per program and narrower channel blocks (more programs): Nsight Compute
# showed about 4 warps per SM (6 % occupancy) stalled on their own step chains.
# Session 6 adds the variants (optional 6th/7th fields, kernels/selective_scan_triton.py): forward
# flat = 1 (per-(channel, step) math once per element: BLOCK_D 8 then runs 2 warps per scheduler at
# +15 % instructions instead of +54 %), backward pair (channels per lane) and half (4 live states).
# Session 8: session 6's winners are the defaults (first of each list). Session 10: forward flat = 2 reads
# each row 8 steps (32 bytes) at a time (timed in session 12: the default). Session 13 timed 2 and 4
# segments at this size and two backward variants (reuse_a, bc_partials; commit a3e7702's grid and
# kernel): none won, kernels/README.md.
SWEEP_GRID = {16: ([(16, 1, 4, 2, 1024, 1), (16, 1, 4, 2, 1024), (16, 1, 4, 4, 1024, 1), (16, 1, 3, 2, 1024, 1),
                    (8, 1, 4, 2, 1024, 1), (16, 1, 4, 2, 1024, 2), (16, 1, 4, 4, 1024, 2), (16, 1, 3, 2, 1024, 2),
                    (8, 1, 4, 2, 1024, 2), (16, 1, 4, 8, 1024, 2), (32, 1, 4, 4, 1024, 2), (16, 2, 4, 4, 1024, 2),
                    (8, 1, 4, 4, 1024, 2), (16, 1, 5, 4, 1024, 2)],
                   [(16, 1, 4, 1, 1024, 2, 1), (8, 1, 4, 1, 1024), (8, 1, 4, 1, 1024, 2), (16, 1, 3, 1, 1024, 2, 1),
                    (16, 1, 1, 1, 1024, 0, 0, 1), (16, 1, 1, 1, 512, 0, 0, 1), (16, 1, 1, 1, 256, 0, 0, 1)]),
              64: ([(8, 1, 4, 2, 1024), (8, 1, 4, 2, 1024, 1)], [(4, 1, 3, 1, 1024), (4, 1, 3, 1, 1024, 2, 1)])}


# --sweep-grid lanes: the two-lanes-per-channel backward only (session 18's variants, untimed when written):
# lanes 2 (permuted state slots: 2,208 sm_90 instructions against 2,368) and register caps (maxnreg 192 / 168 /
# 128: 10 / 12 / 16 warps per SM instead of 8, spilling 200-740 bytes; benchmarks/scan_sass_counts.py).
LANES_GRID = {16: ([selective_scan_triton.FWD_CONFIG[16]],
                   [(16, 1, 1, 1, 256, 0, 0, lanes, maxnreg) for lanes in (1, 2) for maxnreg in (0, 192, 168, 128)]
                   + [(16, 1, 1, 1, 512, 0, 0, 2), (16, 1, 1, 1, 128, 0, 0, 2, 168)])}


def rel_diff(a, b) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def sweeps(details, grid: dict) -> None:
    """Launch-config sweeps of the scan at the target size (and d_state 64); the fastest become
    the defaults for this run (and, by hand, in kernels/selective_scan_triton.py). Every config's
    output, saved states and gradients are compared with the default config's (tested against
    the reference); one that disagrees is reported and never chosen."""
    S = selective_scan_triton
    chosen, worst, wrong = {}, 0.0, []
    for n, (fwd_cfgs, bwd_cfgs) in grid.items():
        x = scan_inputs(16, 1024, 512, n, torch.float32)
        kw = {**x, "softplus_on": True}
        dout = torch.randn_like(x["u"])
        want_out, _, states = S._fwd(**kw, save_states=True)
        bwd_args = lambda: (dout, None, x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"],  # noqa: E731
                            x["delta_bias"], True, states)
        want_grads = S._bwd(*bwd_args())

        def agrees(c, run) -> bool:
            nonlocal worst
            try:
                diff = run()
            except Exception as e:  # noqa: BLE001 - out of registers/shared memory: its timing fails too
                print("config", c, "failed:", type(e).__name__)
                return True
            if diff >= 1e-4:
                wrong.append(f"{c}: relative difference {diff:.2e}")
                return False
            worst = max(worst, diff)
            return True

        def fwd_diff(c):
            got_out, _, got_states = S._fwd(**kw, save_states=True, config=c)   # states: the backward's input
            return max(rel_diff(got_out, want_out), rel_diff(got_states, states))

        def bwd_diff(c):
            return max(rel_diff(g, w) for g, w in zip(S._bwd(*bwd_args(), config=c), want_grads) if g is not None)

        fwd_cfgs = [c for c in fwd_cfgs if agrees(c, lambda: fwd_diff(c))]
        bwd_cfgs = [c for c in bwd_cfgs if agrees(c, lambda: bwd_diff(c))]
        fwd = {str(c): try_ms(lambda: S._fwd(**kw, save_states=False, config=c)) for c in fwd_cfgs}
        fwd_train = {str(c): try_ms(lambda: S._fwd(**kw, save_states=True, config=c)) for c in fwd_cfgs}
        bwd = {str(c): try_ms(lambda: S._bwd(*bwd_args(), config=c)) for c in bwd_cfgs}
        details[f"sweep_scan_n{n}_fwd_ms"], details[f"sweep_scan_n{n}_fwd_train_ms"] = fwd, fwd_train
        details[f"sweep_scan_n{n}_bwd_ms"] = bwd
        for kind, timed in (("fwd", fwd), ("fwd_train", fwd_train), ("bwd", bwd)):
            for c, ms in timed.items():
                print(f"sweep n={n} {kind} {c}: {ms if isinstance(ms, str) else f'{ms:.4f} ms'}")
        best = lambda d: eval(min((k for k, v in d.items() if isinstance(v, float)), key=d.get))  # noqa: E731,S307
        both = {c: fwd[c] + fwd_train[c] for c in fwd if isinstance(fwd[c], float) and isinstance(fwd_train[c], float)}
        S.FWD_CONFIG[n], S.BWD_CONFIG[n] = best(both), best(bwd)   # forward: inference + training forward
        chosen[n] = dict(fwd=S.FWD_CONFIG[n], bwd=S.BWD_CONFIG[n])
        del x, kw, dout, states, want_out, want_grads
    details["sweep_max_rel_diff_vs_default_config"] = worst
    details["sweep_configs_disagreeing_with_default"] = wrong
    for k, v in details.items():
        if k.startswith("sweep_"):
            print(k, v)
    details["chosen"] = chosen
    print("chosen", chosen)


def bench_points(rows, metrics, copy_gbs):
    b, n, m = 16, 8192, 1024
    pts = torch.rand(b, n, 3, device="cuda")
    t = median_ms(lambda: point_ops_triton.farthest_point_sample_triton(pts, m))
    r = median_ms(lambda: farthest_point_sample_ref(pts, m), warmup=5, rep=50)
    metrics.update({"fps_b16_n8192_m1024_triton_ms": t, "fps_b16_n8192_m1024_ref_ms": r,
                    "fps_b16_n8192_m1024_speedup_vs_ref": r / t})
    rows.append(dict(kernel="fps", size=f"b={b} n={n} m={m}", triton_ms=t, ref_ms=r, speedup=r / t, GBps=float("nan"),
                     frac_copy=float("nan")))
    q = pts[:, :1024].contiguous()
    for k in (16, 32):
        t = median_ms(lambda: point_ops_triton.knn_triton(q, pts, k))
        r = median_ms(lambda: knn_ref(q, pts, k))
        metrics.update({f"knn_b16_m1024_n8192_k{k}_triton_ms": t, f"knn_b16_m1024_n8192_k{k}_ref_ms": r,
                        f"knn_b16_m1024_n8192_k{k}_speedup_vs_ref": r / t})
        rows.append(dict(kernel="knn", size=f"b={b} m=1024 n={n} k={k}", triton_ms=t, ref_ms=r, speedup=r / t,
                         GBps=float("nan"), frac_copy=float("nan")))


def profile_host(calls: int = 20) -> None:
    """cProfile of scan fwd+bwd calls through autograd at the target size: where the host time
    per call goes (Python, autograd, tensor allocation, Triton's launcher)."""
    import cProfile
    import pstats

    S = selective_scan_triton
    x = {k: v.requires_grad_() for k, v in scan_inputs(16, 1024, 512, 16, torch.float32).items()}
    dout = torch.randn_like(x["u"])

    def fwd_bwd():
        torch.autograd.grad(S.selective_scan_triton(**x), list(x.values()), dout)

    for _ in range(5):
        fwd_bwd()
    print(f"host time per fwd+bwd call: {host_us(fwd_bwd, calls):.0f} us")
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fwd_bwd()
    prof.disable()
    torch.cuda.synchronize()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the slow PyTorch scan references")
    ap.add_argument("--sweep", action="store_true", help="first time several (BLOCK_D, warps) scan configs")
    ap.add_argument("--sweep-grid", choices=("all", "lanes"), default="all",
                    help="lanes: only the lanes backward's variants (LANES_GRID)")
    ap.add_argument("--only-scan", action="store_true", help="scan rows only (no step, FPS, kNN)")
    ap.add_argument("--profile-host", action="store_true", help="only profile the host side of scan fwd+bwd calls")
    ap.add_argument("--name", default="kernels")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "benchmarks/kernel_speed.py measures GPU kernels: run it on a CUDA machine"
    if args.profile_host:
        profile_host()
        return
    sys.stdout.reconfigure(line_buffering=True)   # piped on the GPU box: a call cut off still shows its lines
    torch.manual_seed(0)
    rows, metrics, details = [], {}, {"torch": torch.__version__, "triton": triton.__version__}
    copy_gbs = copy_bandwidth_gbs()
    metrics["copy_d2d_GBps"] = copy_gbs
    print(f"device-to-device copy: {copy_gbs:.0f} GB/s")
    if not args.only_scan:
        bench_step(copy_gbs, rows, metrics, [1, 64, 1024, 8192])
    if args.sweep:
        sweeps(details, LANES_GRID if args.sweep_grid == "lanes" else SWEEP_GRID)
    bench_scan(copy_gbs, rows, metrics, 16, 1024, 512, 16, torch.float32, not args.quick)
    bench_scan(copy_gbs, rows, metrics, 16, 1024, 512, 16, torch.bfloat16, False)
    bench_scan(copy_gbs, rows, metrics, 16, 1024, 512, 64, torch.float32, False)
    bench_scan_chunked(copy_gbs, rows, metrics, details)
    bench_scan_small_grid(rows, metrics)
    if not args.only_scan:
        bench_points(rows, metrics, copy_gbs)
    S = selective_scan_triton
    details["configs_used"] = dict(scan_fwd={str(k): v for k, v in S.FWD_CONFIG.items()},
                                   scan_bwd={str(k): v for k, v in S.BWD_CONFIG.items()}, scan_chunk=S.CHUNK,
                                   knn=point_ops_triton.KNN_CONFIG,
                                   step_b8192=state_update_triton._launch_config(8192, 512, 16))
    for name, fn in LATER_GRAPHS.items():
        t = graph_ms(fn)
        if t == t:   # a failed capture (NaN) leaves the metric out
            metrics[name] = t
    details["table"] = rows
    path = bench.write_results(args.name, metrics, details=details)
    bench.print_table(rows, title=f"kernels vs references ({bench.describe_device()}); copy {copy_gbs:.0f} GB/s")
    print("wrote", path)


if __name__ == "__main__":
    main()
