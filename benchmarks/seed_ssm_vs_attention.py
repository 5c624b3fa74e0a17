"""Seed article experiment 1 ("SSM vs self-attention"), on the project's OWN backbones: the
Mamba stack (`vla_stack.policy` Backbone, streaming `step` with a fixed-size state) against
the causal Transformer baseline (streaming with a KV cache), same width and depth
(the default PolicyConfig: d_model 128, 2 layers), batch 1, one CPU thread.

Three measurements, each in fresh subprocesses so one model's memory never counts for another:
1. streaming: per-step latency, state/cache bytes (from the tensors) and process RSS against
   the number of steps already taken, up to 100,000. Mamba is streamed step by step all the
   way. The Transformer is streamed step by step up to `--stream-exact-max`; beyond, its KV
   cache is prefilled by one parallel pass over the whole sequence (checked in the same run
   to equal the streamed cache), because streaming it there costs O(L^2) in total.
2. parallel (training) form: `Backbone.forward` over L tokens, inference and forward+backward,
   wall time and peak RSS growth. A length is skipped, not faked, when the trend of the
   shorter lengths predicts more than `--max-point-s` seconds or `--max-point-gib` GiB; the
   result says which lengths were skipped and why.
3. delayed recall (the article's synthetic long-range task): a marked symbol, D-1 distractor
   symbols, then a query; the model must name the marked symbol. Both backbones are trained
   on distances 1..`--recall-train-max`, then evaluated at distances up to 16x beyond.

    python benchmarks/seed_ssm_vs_attention.py            # full: ~15 CPU-minutes on one core
    python benchmarks/seed_ssm_vs_attention.py --quick    # seconds (what the tests run)

Writes benchmarks/results/seed_ssm_vs_attention.json and .png (or under --out-dir).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vla_stack import bench
from vla_stack.policy import PolicyConfig
from vla_stack.policy.backbone import Backbone, state_nbytes
from vla_stack.policy.transformer import sinusoidal_position

KINDS = ("mamba", "transformer")


# ----------------------------------------------------------------------------- measuring helpers
def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def used_state_bytes(state: dict) -> int:
    """Bytes the state needs: the KV cache's filled part (its tensors carry up to 2x unused capacity)."""
    total = 0
    for s in state["layers"]:
        if hasattr(s, "length"):
            per_step = s.k[:, :, 0].nbytes + s.v[:, :, 0].nbytes
            total += s.length * per_step
        else:
            total += s.nbytes()
    return total


def make_backbone(kind: str, seed: int = 0) -> tuple[Backbone, PolicyConfig]:
    torch.manual_seed(seed)
    cfg = PolicyConfig(backbone=kind)
    return Backbone(cfg).eval(), cfg


def tokens(length: int, d_model: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, length, d_model, generator=g)


@torch.inference_mode()
def prefill_transformer(net: Backbone, x: torch.Tensor, spare: int = 0) -> dict:
    """The KV cache that streaming x (B, L, d) would leave, computed in one parallel pass per layer.
    `spare` extra capacity so the next `spare` steps do not trigger the cache's doubling.
    (Uses TransformerBlock's private `_heads`: the policy package has no prefill API.)"""
    b, length, d = x.shape
    state = net.init_state(b, x.device, x.dtype)
    h = x + sinusoidal_position(torch.arange(length, device=x.device), d).to(x.dtype)
    for norm, layer, cache in zip(net.norms, net.layers, state["layers"]):
        _, k, v = layer._heads(layer.qkv(norm(h)))
        cache.k = torch.zeros(b, k.shape[1], length + spare, k.shape[3], dtype=x.dtype)
        cache.v = torch.zeros_like(cache.k)
        cache.k[:, :, :length], cache.v[:, :, :length] = k, v
        cache.length = length
        h = h + layer(norm(h))
    state["t"] = length
    return state


@torch.inference_mode()
def check_prefill(length: int = 48) -> dict:
    """Prefilled cache == streamed cache, the next step's outputs agree, and the parallel form equals
    streaming (float64): the long-length Transformer figures rest on these."""
    net, cfg = make_backbone("transformer")
    net = net.double()
    x = tokens(length + 1, cfg.d_model, seed=1).double()
    streamed = net.init_state(1, dtype=torch.float64)
    for t in range(length):
        net.step(x[:, t], streamed)
    pre = prefill_transformer(net, x[:, :length], spare=1)
    cache_err = max(float((a.k[:, :, :length] - b.k[:, :, :length]).abs().max()) for a, b in
                    zip(streamed["layers"], pre["layers"]))
    out_err = float((net.step(x[:, length], streamed) - net.step(x[:, length], pre)).abs().max())
    fresh = net.init_state(1, dtype=torch.float64)
    stream_out = torch.stack([net.step(x[:, t], fresh) for t in range(length + 1)], dim=1)
    parallel_err = float((net(x) - stream_out).abs().max())
    return {"check_prefill_cache_max_abs_err": cache_err, "check_prefill_next_step_max_abs_err": out_err,
            "check_parallel_vs_stream_max_abs_err": parallel_err}


# ----------------------------------------------------------------------------- workers (subprocesses)
@torch.inference_mode()
def stream_worker(kind: str, checkpoints: list[int], exact_max: int, timing_steps: int) -> list[dict]:
    """Per-step latency, state bytes and RSS after L steps, for every L in `checkpoints`."""
    torch.set_num_threads(1)
    net, cfg = make_backbone(kind)
    rows = []
    exact = [c for c in checkpoints if c <= exact_max or kind == "mamba"]
    if exact:
        last = max(exact)
        x = tokens(last, cfg.d_model, seed=2)
        state = net.init_state(1)
        times, cpu = np.empty(last), np.empty(last)
        for t in range(last):
            t0, c0 = time.perf_counter(), time.thread_time()
            net.step(x[:, t], state)
            times[t], cpu[t] = time.perf_counter() - t0, time.thread_time() - c0
            if t + 1 in exact:
                window = times[max(0, t + 1 - timing_steps):t + 1] * 1e3
                rows.append({"model": kind, "steps": t + 1, "how": "streamed",
                             "step_cpu_ms_median": float(np.median(cpu[max(0, t + 1 - timing_steps):t + 1] * 1e3)),
                             "step_ms_median": float(np.median(window)), "step_ms_p90": float(np.percentile(window, 90)),
                             "state_bytes_allocated": state_nbytes(state), "state_bytes_used": used_state_bytes(state),
                             "rss_MiB": rss_bytes() / 2**20})
        del state, x
    for length in sorted(set(checkpoints) - set(exact)):
        x = tokens(length + timing_steps, cfg.d_model, seed=2)
        t0 = time.perf_counter()
        state = prefill_transformer(net, x[:, :length], spare=timing_steps)
        prefill_s = time.perf_counter() - t0
        row = {"model": kind, "steps": length, "how": f"prefilled ({prefill_s:.1f} s)",
               "state_bytes_allocated": state_nbytes(state), "state_bytes_used": used_state_bytes(state),
               "rss_MiB": rss_bytes() / 2**20}
        times, cpu = [], []
        for t in range(timing_steps):
            t0, c0 = time.perf_counter(), time.thread_time()
            net.step(x[:, length + t], state)
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.thread_time() - c0) * 1e3)
        row.update(step_cpu_ms_median=float(np.median(cpu)), step_ms_median=float(np.median(times)),
                   step_ms_p90=float(np.percentile(times, 90)))
        rows.append(row)
        del state, x
    return rows


def parallel_worker(kind: str, length: int, train: bool) -> dict:
    """One Backbone.forward (and backward) over `length` tokens: seconds and peak RSS growth."""
    torch.set_num_threads(1)
    net, cfg = make_backbone(kind)
    warm = tokens(16, cfg.d_model)
    with torch.inference_mode():
        net(warm)
    if train:
        net(warm.requires_grad_()).sum().backward()
    x = tokens(length, cfg.d_model, seed=3)
    base = peak_rss_bytes()
    rss0 = rss_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    if train:
        out = net(x.requires_grad_())
        out.square().mean().backward()
    else:
        with torch.inference_mode():
            out = net(x)
    wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": wall_s, "cpu_s": cpu_s, "peak_rss_growth_MiB": (max(peak_rss_bytes(), base) - rss0) / 2**20}


def do_work(spec: dict):
    if spec["mode"] == "stream":
        return stream_worker(spec["kind"], spec["checkpoints"], spec["exact_max"], spec["timing_steps"])
    return parallel_worker(spec["kind"], spec["length"], spec["train"])


IN_PROCESS = False  # --quick: workers run here (no interpreter start-up; RSS figures then not isolated)


def run_worker(spec: dict, timeout_s: float) -> dict:
    """Run one worker in a fresh interpreter; {'error': ...} on timeout or crash."""
    if IN_PROCESS:
        return do_work(spec)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return {"error": f"exit {proc.returncode}: {tail[0][:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def extrapolate(points: list[tuple[int, float]], length: int) -> float:
    """Power-law prediction from the last two measured (length, value) points."""
    (l1, v1), (l2, v2) = points[-2], points[-1]
    if v1 <= 0 or v2 <= 0 or l1 == l2:
        return v2 * length / l2
    slope = max(math.log(v2 / v1) / math.log(l2 / l1), 1.0)
    return v2 * (length / l2) ** slope


def parallel_scaling(kind: str, train: bool, lengths: list[int], max_s: float, max_gib: float) -> list[dict]:
    rows, times, mems = [], [], []
    for length in lengths:
        row = {"model": kind, "form": "train (fwd+bwd)" if train else "inference", "length": length}
        if len(times) >= 2:
            t_pred, m_pred = extrapolate(times, length), extrapolate(mems, length) / 1024
            if t_pred > max_s or m_pred > max_gib:
                row["status"] = (f"skipped: predicted {t_pred:.0f} CPU-s, {m_pred:.1f} GiB "
                                 f"(limits {max_s:.0f} s, {max_gib} GiB)")
                rows.append(row)
                continue
        res = run_worker({"mode": "parallel", "kind": kind, "length": length, "train": train},
                         timeout_s=6 * max_s + 120)  # wall clock: the machine may be shared
        if "error" in res:
            row["status"] = f"failed: {res['error']}"
        else:
            row.update(status="measured", cpu_s=res["cpu_s"], wall_s=res["wall_s"],
                       peak_rss_growth_MiB=res["peak_rss_growth_MiB"])
            times.append((length, res["cpu_s"]))
            mems.append((length, max(res["peak_rss_growth_MiB"], 1.0)))
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- delayed recall task
N_SYMBOLS = 8
FEATURES = N_SYMBOLS + 2  # one-hot symbol, "remember this" marker, "answer now" query flag


def recall_batch(batch: int, distance: int, prefix: int, gen: torch.Generator):
    """Sequences of prefix + distance + 1 steps: distractors, the marked symbol at position `prefix`,
    distance - 1 distractors, the query at the end (exactly `distance` steps after the mark)."""
    length = prefix + distance + 1
    symbols = torch.randint(0, N_SYMBOLS, (batch, length), generator=gen)
    x = torch.zeros(batch, length, FEATURES)
    x[:, :, :N_SYMBOLS] = torch.nn.functional.one_hot(symbols, N_SYMBOLS).float()
    x[:, prefix, N_SYMBOLS] = 1.0
    x[:, -1, :N_SYMBOLS] = 0.0
    x[:, -1, N_SYMBOLS + 1] = 1.0
    return x, symbols[:, prefix]


class RecallModel(torch.nn.Module):
    def __init__(self, kind: str, d_model: int):
        super().__init__()
        # language-model step sizes (1e-3..1e-1): memory over hundreds of steps, not the policy's tens
        cfg = PolicyConfig(backbone=kind, d_model=d_model, n_layers=2, n_heads=4, d_state=16,
                           dt_min=1e-3, dt_max=1e-1).validate()
        self.embed = torch.nn.Linear(FEATURES, d_model)
        self.backbone = Backbone(cfg)
        self.readout = torch.nn.Linear(d_model, N_SYMBOLS)

    def forward(self, x):
        return self.readout(self.backbone(self.embed(x))[:, -1])


def train_recall(kind: str, steps: int, train_max: int, eval_distances: list[int], batch: int,
                 eval_batch: int, d_model: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = RecallModel(kind, d_model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    losses, t0 = [], time.perf_counter()
    for _ in range(steps):
        distance = int(torch.randint(1, train_max + 1, (1,), generator=gen))
        prefix = int(torch.randint(0, 8, (1,), generator=gen))
        x, y = recall_batch(batch, distance, prefix, gen)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    train_s = time.perf_counter() - t0
    acc = {}
    eval_gen = torch.Generator().manual_seed(seed + 1000)
    with torch.inference_mode():
        for distance in eval_distances:
            x, y = recall_batch(eval_batch, distance, 4, eval_gen)
            acc[distance] = float((model(x).argmax(-1) == y).float().mean())
    first, last = losses[: max(1, steps // 10)], losses[-max(1, steps // 10):]
    return {"accuracy": acc, "loss_first": statistics.mean(first), "loss_last": statistics.mean(last),
            "train_s": train_s, "params": sum(p.numel() for p in model.parameters())}


# ----------------------------------------------------------------------------- plotting and main
def plot(stream_rows, par_rows, recall, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    axes = axes.ravel()
    colors = {"mamba": "tab:blue", "transformer": "tab:red"}
    for kind in KINDS:
        rows = [r for r in stream_rows if r["model"] == kind]
        ls = [r["steps"] for r in rows]
        axes[0].plot(ls, [r["step_cpu_ms_median"] for r in rows], "o-", color=colors[kind], label=f"{kind} (CPU time)")
        axes[0].plot(ls, [r["step_ms_median"] for r in rows], "x:", color=colors[kind], alpha=0.6,
                     label=f"{kind} (wall clock)")
        axes[1].plot(ls, [r["state_bytes_used"] / 2**20 for r in rows], "o-", color=colors[kind],
                     label=f"{kind}: state tensors")
        axes[1].plot(ls, [r["rss_MiB"] for r in rows], "x--", color=colors[kind], alpha=0.6, label=f"{kind}: process RSS")
        for form, style in (("inference", "o-"), ("train (fwd+bwd)", "s--")):
            pr = [r for r in par_rows if r["model"] == kind and r["form"] == form and r["status"] == "measured"]
            axes[2].plot([r["length"] for r in pr], [r["cpu_s"] for r in pr], style, color=colors[kind],
                         label=f"{kind} {form}")
            skipped = [r for r in par_rows if r["model"] == kind and r["form"] == form and r["status"] != "measured"]
            if skipped and pr:
                axes[2].annotate(f"{form.split()[0]}: last feasible L={pr[-1]['length']:,}",
                                 (pr[-1]["length"], pr[-1]["cpu_s"]), xytext=(-150 if kind == "mamba" else 5, -3),
                                 textcoords="offset points", fontsize=7, color=colors[kind])
        if recall:
            acc = {int(d): a for d, a in recall[kind]["accuracy"].items()}  # (json keys are strings)
            axes[3].plot(list(acc), list(acc.values()), "o-", color=colors[kind], label=kind)
    axes[0].set(xscale="log", yscale="log", xlabel="steps already taken", ylabel="one streaming step (ms, median)",
                title="per-step latency (batch 1, 1 thread)")
    axes[1].set(xscale="log", yscale="log", xlabel="steps already taken", ylabel="MiB",
                title="streaming state vs process RSS")
    axes[2].set(xscale="log", yscale="log", xlabel="sequence length L", ylabel="CPU seconds",
                title="parallel form over L tokens")
    if recall:
        axes[3].axhline(1 / N_SYMBOLS, color="gray", ls=":", label="chance")
        axes[3].axvline(recall["train_max"], color="gray", ls="--", label="longest trained distance")
        axes[3].set(xscale="log", ylim=(0, 1.05), xlabel="distance D (steps)", ylabel="recall accuracy",
                    title="delayed recall")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the tests)")
    ap.add_argument("--max-length", type=int, default=100_000)
    ap.add_argument("--stream-exact-max", type=int, default=10_000,
                    help="stream the Transformer step by step up to here; prefill its cache beyond")
    ap.add_argument("--timing-steps", type=int, default=30)
    ap.add_argument("--max-point-s", type=float, default=150.0, help="skip parallel lengths predicted slower")
    ap.add_argument("--max-point-gib", type=float, default=6.0, help="skip parallel lengths predicted bigger")
    ap.add_argument("--recall-steps", type=int, default=600)
    ap.add_argument("--recall-train-max", type=int, default=32)
    ap.add_argument("--no-recall", action="store_true")
    ap.add_argument("--recall-only", action="store_true", help="only train/evaluate the recall task; print, no result file")
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--name", default="seed_ssm_vs_attention")
    ap.add_argument("--plot-only", default=None, help="redraw the PNG of this result JSON, measure nothing")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.plot_only:  # redraw the figure of a result file (no measuring)
        record = json.loads(Path(args.plot_only).read_text())["details"]
        plot(record["stream"], record["parallel"], record["recall"], Path(args.plot_only).with_suffix(".png"))
        return None
    if args.recall_only:
        out = {k: train_recall(k, args.recall_steps, args.recall_train_max, [1, 4, 16, 64, 256], 64, 256, 64)
               for k in KINDS}
        print(json.dumps(out, indent=1))
        return None
    if args.worker:
        print(json.dumps(do_work(json.loads(args.worker))))
        return None
    global IN_PROCESS
    IN_PROCESS = args.quick
    if args.quick:
        args.max_length, args.stream_exact_max, args.timing_steps = 1_000, 300, 10
        args.max_point_s, args.recall_steps, args.recall_train_max = 5.0, 150, 8
    torch.set_num_threads(1)
    t_start = time.perf_counter()

    checkpoints = sorted({c for c in (1, 10, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000) if c < args.max_length}
                         | {args.max_length})
    stream_rows = []
    for kind in KINDS:
        res = run_worker({"mode": "stream", "kind": kind, "checkpoints": checkpoints, "exact_max": args.stream_exact_max,
                          "timing_steps": args.timing_steps}, timeout_s=3600)
        if isinstance(res, dict) and "error" in res:
            raise SystemExit(f"streaming worker for {kind} failed: {res['error']}")
        stream_rows += res
    bench.print_table(stream_rows, "\nstreaming (batch 1, one thread)")

    par_lengths = sorted({256, 1024, 4096, 16_384, 32_768, 65_536, args.max_length} if not args.quick
                         else {250, args.max_length})
    par_rows = []
    for kind in KINDS:
        for train in (False, True):
            par_rows += parallel_scaling(kind, train, par_lengths, args.max_point_s, args.max_point_gib)
    bench.print_table(par_rows, "\nparallel form (Backbone.forward over L tokens, one thread)")

    checks = check_prefill()
    print("\nchecks:", checks)

    recall = None
    if not args.no_recall:
        eval_distances = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024} & set(range(1, 16 * args.recall_train_max + 1)))
        d_model, batch = (32, 32) if args.quick else (64, 64)
        recall = {"train_max": args.recall_train_max, "steps": args.recall_steps, "d_model": d_model, "batch": batch}
        for kind in KINDS:
            recall[kind] = train_recall(kind, args.recall_steps, args.recall_train_max, eval_distances, batch,
                                        eval_batch=256 if not args.quick else 128, d_model=d_model)
        rows = [{"distance": d, **{f"{k}_acc": recall[k]["accuracy"][d] for k in KINDS}} for d in eval_distances]
        bench.print_table(rows, f"\ndelayed recall (trained on distances 1..{args.recall_train_max})")
        for k in KINDS:
            print(f"{k}: loss {recall[k]['loss_first']:.3f} -> {recall[k]['loss_last']:.3f}, "
                  f"{recall[k]['train_s']:.0f} s, {recall[k]['params']} params")

    metrics = dict(checks)
    for r in stream_rows:
        key = f"{r['model']}_L{r['steps']}"
        metrics[f"stream_{key}_step_ms"] = r["step_ms_median"]
        metrics[f"stream_{key}_step_cpu_ms"] = r["step_cpu_ms_median"]
        metrics[f"stream_{key}_state_bytes"] = r["state_bytes_used"]
        metrics[f"stream_{key}_state_bytes_allocated"] = r["state_bytes_allocated"]
        metrics[f"stream_{key}_rss_MiB"] = r["rss_MiB"]
    top = {k: next(r for r in stream_rows if r["model"] == k and r["steps"] == args.max_length) for k in KINDS}
    metrics["stream_state_ratio_transformer_over_mamba_at_max"] = (top["transformer"]["state_bytes_used"]
                                                                    / top["mamba"]["state_bytes_used"])
    metrics["stream_step_ratio_transformer_over_mamba_at_max"] = (top["transformer"]["step_ms_median"]
                                                                   / top["mamba"]["step_ms_median"])
    metrics["stream_step_cpu_ratio_transformer_over_mamba_at_max"] = (top["transformer"]["step_cpu_ms_median"]
                                                                       / top["mamba"]["step_cpu_ms_median"])
    for r in par_rows:
        form = "train" if r["form"].startswith("train") else "infer"
        if r["status"] == "measured":
            metrics[f"parallel_{form}_{r['model']}_L{r['length']}_cpu_s"] = r["cpu_s"]
            metrics[f"parallel_{form}_{r['model']}_L{r['length']}_wall_s"] = r["wall_s"]
            metrics[f"parallel_{form}_{r['model']}_L{r['length']}_peak_rss_growth_MiB"] = r["peak_rss_growth_MiB"]
    for kind in KINDS:
        for form in ("infer", "train"):
            measured = [r["length"] for r in par_rows if r["model"] == kind and r["status"] == "measured"
                        and r["form"].startswith("train" if form == "train" else "inference")]
            metrics[f"parallel_{form}_{kind}_longest_measured_L"] = max(measured) if measured else 0
    if recall:
        for kind in KINDS:
            for d, a in recall[kind]["accuracy"].items():
                metrics[f"recall_{kind}_D{d}_acc"] = a
    details = {"config": PolicyConfig().to_dict(), "cpu_threads": 1, "workers_in_fresh_processes": not IN_PROCESS,
               "load_average_at_start": os.getloadavg(),
               "stream": stream_rows, "parallel": par_rows, "recall": recall, "quick": args.quick,
               "total_s": time.perf_counter() - t_start}
    path = bench.write_results(args.name, metrics, details=details, out_dir=args.out_dir)
    plot(stream_rows, par_rows, recall, path.with_suffix(".png"))
    print(f"\nwrote {path} and {path.with_suffix('.png')}  ({time.perf_counter() - t_start:.0f} s)")
    return path


if __name__ == "__main__":
    main()
