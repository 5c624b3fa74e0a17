"""Action-expert speed and memory: one streaming tick (encoder + backbone step + head) at
N=512 points, batch-256 throughput on a GPU, and backbone memory against episode length
(Mamba's constant state vs the Transformer's KV cache), side by side in one run.

    python benchmarks/policy_latency.py                  # CPU (targets: tick <= 25 ms)
    python benchmarks/policy_latency.py --device cuda    # GPU (tick <= 2 ms at batch 1; steps/s at 256)

Writes benchmarks/results/policy_latency_<device>.json (+ a PNG of memory vs length).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vla_stack import bench, schema
from vla_stack.policy import ActionExpert, PolicyConfig, PolicyModel
from vla_stack.policy.backbone import Backbone, state_nbytes


def inputs(batch, n, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = (torch.rand(batch, n, 3, generator=g) - 0.5) * 0.8
    cols = torch.rand(batch, n, 3, generator=g)
    state = torch.zeros(batch, schema.STATE_DIM)
    state[:, 0:3] = torch.tensor([0.4, 0.0, 0.3])
    state[:, 4] = 1.0
    text = torch.nn.functional.normalize(torch.randn(batch, 384, generator=g), dim=-1)
    return [t.to(device) for t in (pts, cols, state, text)]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_fn(fn, device, iters, warmup=5):
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), float(np.percentile(times, 90))


@torch.inference_mode()
def tick_latency(cfg: PolicyConfig, device, batch, n_points, iters):
    torch.manual_seed(0)
    model = PolicyModel(cfg).to(device).eval()
    x = inputs(batch, n_points, device)
    state = model.init_state(batch, device)
    return time_fn(lambda: model.step(*x, state), device, iters), sum(p.numel() for p in model.parameters())


def expert_latency(cfg, n_points, iters):
    """The full API call on the CPU: input checks, cached text lookup, tick, chunk execution."""
    torch.manual_seed(0)
    emb = np.random.default_rng(0).normal(size=384).astype(np.float32)
    expert = ActionExpert(PolicyModel(cfg), text_encoder=lambda s: emb)
    pts, cols, st, _ = (t[0].numpy() for t in inputs(1, n_points, torch.device("cpu")))
    return time_fn(lambda: expert.step(pts, cols, st, subtask="pick up the red cube"), torch.device("cpu"), iters)


@torch.inference_mode()
def memory_curve(cfg: PolicyConfig, device, lengths):
    """Backbone state bytes (and GPU allocator bytes) after t ticks; the encoder's memory does not depend on t."""
    net = Backbone(cfg).to(device).eval()
    state = net.init_state(1, device)
    x = torch.randn(1, cfg.d_model, device=device)
    rows, t0 = [], time.perf_counter()
    for t in range(1, max(lengths) + 1):
        net.step(x, state)
        if t in lengths:
            sync(device)
            row = {"steps": t, "state_MiB": state_nbytes(state) / 2**20,
                   "elapsed_s": time.perf_counter() - t0}
            if device.type == "cuda":
                row["cuda_allocated_MiB"] = torch.cuda.memory_allocated() / 2**20
            rows.append(row)
    return rows


@torch.inference_mode()
def graph_and_kernel_checks(model: PolicyModel, device, n_points: int) -> dict:
    """The fast paths compute the same function: CUDA-graph replay vs eager (Triton kernels),
    and eager with Triton vs the PyTorch reference kernels (VLA_KERNELS=reference), 5 ticks."""
    import os

    from vla_stack.policy.cuda_graph import GraphedStep

    ticks = [inputs(4, n_points, device, seed=s) for s in range(5)]
    g = GraphedStep(model, 4, n_points)
    graphed = [g(*x).clone() for x in ticks]
    st = model.init_state(4, device)
    eager = [model.step(*x, st) for x in ticks]
    os.environ["VLA_KERNELS"] = "reference"
    try:
        st = model.init_state(4, device)
        ref = [model.step(*x, st) for x in ticks]
    finally:
        del os.environ["VLA_KERNELS"]
    rel = lambda a, b: float(max((x - y).norm() / y.norm() for x, y in zip(a, b)))  # noqa: E731
    out = {"check_graph_vs_eager_rel_err": rel(graphed, eager), "check_triton_vs_reference_rel_err": rel(eager, ref)}
    print(out)
    return out


def set_cuda_inference_tp(model: PolicyModel, tp: str) -> None:
    """split: the encoder's tensor products with Triton edge contractions on CUDA; e3nn: e3nn's forward."""
    from vla_stack.policy.encoder_equivariant import PointConv

    for m in model.modules():
        if isinstance(m, PointConv):
            m.split_for_cuda_inference = tp == "split"


@torch.inference_mode()
def split_vs_e3nn(model: PolicyModel, device, n_points: int) -> float:
    """Largest relative difference of 5 ticks' chunks between the two tensor-product paths."""
    errs = []
    for tp in ("split", "e3nn"):
        set_cuda_inference_tp(model, tp)
        st = model.init_state(4, device)
        errs.append([model.step(*inputs(4, n_points, device, seed=s), st) for s in range(5)])
    return float(max((a - b).norm() / b.norm() for a, b in zip(*errs)))


def train_probe(device, n_points: int, steps: int, dataset: str | None) -> dict:
    """Training throughput of `vla train policy` (default GPU config) on a synthetic dataset."""
    import tempfile
    from pathlib import Path

    from vla_stack.policy.train import TrainConfig, train

    tmp = Path(tempfile.mkdtemp())
    if dataset is None:  # (writing needs PyAV; a GPU box without it gets one made here and carried)
        from vla_stack.datasets.layout import DatasetSpec
        from vla_stack.datasets.synthetic import write_synthetic

        dataset = tmp / "data"
        write_synthetic(dataset, DatasetSpec(n_points=n_points, cameras={}), episodes=8, length=60)
    cfg = TrainConfig(dataset=Path(dataset), out=tmp / "run", steps=steps, batch_size=64, history=8,
                      device=device.type, progress=False, save_every=10**9, warmup_steps=5)
    t0 = time.perf_counter()
    train(cfg)
    total = time.perf_counter() - t0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp / "run" / "tb"))
    acc.Reload()
    sps = [e.value for e in acc.Scalars("train/steps_per_s")]
    return {"train_steps_per_s_b64_T8": sps[-1], "train_probe_total_s": total}


def plot(curves: dict, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, rows in curves.items():
        ax.plot([r["steps"] for r in rows], [r["state_MiB"] for r in rows], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("episode length (control ticks)")
    ax.set_ylabel("backbone streaming state (MiB)")
    ax.set_title("Memory vs episode length (batch 1)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n-points", type=int, default=512)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--max-length", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (1: a control loop's own core)")
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--train-steps", type=int, default=0, help="also time N training steps (batch 64, T=8)")
    ap.add_argument("--train-dataset", default=None, help="dataset for --train-steps (default: a synthetic one)")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    mamba, transformer = PolicyConfig(), PolicyConfig(backbone="transformer")
    metrics, rows = {}, []
    import os

    details = {"config": mamba.to_dict(), "n_points": args.n_points, "cpu_threads": args.threads,
               "load_average_at_start": os.getloadavg()}  # the CPU is shared: say how busy it was
    for name, cfg in (("mamba", mamba), ("transformer", transformer), ("pointnet_mamba", PolicyConfig(encoder="pointnet"))):
        (med, p90), params = tick_latency(cfg, device, 1, args.n_points, args.iters)
        metrics[f"tick_{name}_b1_ms"] = med
        metrics[f"tick_{name}_b1_p90_ms"] = p90
        rows.append({"what": f"tick {name} (eager)", "batch": 1, "median_ms": med, "p90_ms": p90, "params": params})
    if device.type == "cpu":
        med, p90 = expert_latency(mamba, args.n_points, args.iters)
        metrics["expert_step_api_b1_ms"] = med
        rows.append({"what": "ActionExpert.step (API)", "batch": 1, "median_ms": med, "p90_ms": p90, "params": ""})
    else:
        from vla_stack.policy.cuda_graph import GraphedStep

        torch.manual_seed(0)
        model = PolicyModel(mamba).to(device).eval()
        metrics.update(graph_and_kernel_checks(model, device, args.n_points))
        # side by side: the encoder's tensor products as they run on CUDA (split, Triton edge contractions;
        # unsuffixed) and e3nn's own forward (`_e3nn_tp`, the CUDA inference path before session 15)
        metrics["check_split_vs_e3nn_tp_rel_err"] = split_vs_e3nn(model, device, args.n_points)
        for tp in ("split", "e3nn"):
            set_cuda_inference_tp(model, tp)
            tag = "" if tp == "split" else "_e3nn_tp"
            for batch in (1, 256):
                g = GraphedStep(model, batch, args.n_points)
                x = inputs(batch, args.n_points, device)
                med, p90 = time_fn(lambda: g(*x), device, args.iters)
                metrics[f"tick_mamba_cudagraph_b{batch}{tag}_ms"] = med
                rows.append({"what": f"tick mamba (CUDA graph, {tp} tensor products)", "batch": batch, "median_ms": med,
                             "p90_ms": p90, "params": ""})
                if batch == 256:
                    metrics[f"robot_steps_per_s_b256{tag}"] = 256 / (med / 1e3)
        set_cuda_inference_tp(model, "split")
        with torch.inference_mode():
            x = inputs(256, args.n_points, device)
            st = model.init_state(256, device)
            med, _ = time_fn(lambda: model.step(*x, st), device, 20)
        metrics["tick_mamba_eager_b256_ms"] = med
        metrics["robot_steps_per_s_b256_eager"] = 256 / (med / 1e3)
        rows.append({"what": "tick mamba (eager)", "batch": 256, "median_ms": med, "p90_ms": "", "params": ""})
    if args.train_steps:
        metrics.update(train_probe(device, args.n_points, args.train_steps, args.train_dataset))
        rows.append({"what": "train step (b64, T=8)", "batch": 64 * 8, "median_ms": 1e3 / metrics["train_steps_per_s_b64_T8"],
                     "p90_ms": "", "params": ""})
    bench.print_table(rows, f"one streaming tick at N={args.n_points} points on {bench.describe_device()}")
    lengths = sorted({1, 10, 100, 1000, 3000, args.max_length})
    curves = {k: memory_curve(c, device, set(lengths)) for k, c in (("mamba", mamba), ("transformer", transformer))}
    for k, rws in curves.items():
        metrics[f"state_{k}_at_{args.max_length}_steps_MiB"] = rws[-1]["state_MiB"]
        metrics[f"state_{k}_at_1_step_MiB"] = rws[0]["state_MiB"]
        metrics[f"backbone_{k}_{args.max_length}_steps_s"] = rws[-1]["elapsed_s"]
    metrics["state_ratio_transformer_over_mamba_at_max"] = (curves["transformer"][-1]["state_MiB"]
                                                          / curves["mamba"][-1]["state_MiB"])
    bench.print_table([{"backbone": k, **r} for k, rws in curves.items() for r in rws], "backbone memory vs episode length")
    details["memory_curves"] = curves
    details["load_average_at_end"] = os.getloadavg()
    details["table"] = rows
    name = f"policy_latency_{device.type}"
    path = bench.write_results(name, metrics, details=details, out_dir=args.out_dir)
    plot(curves, path.with_suffix(".png"))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
