"""Multi-GPU (DDP) scaling of the action expert's training (issue 10).

For each world size N it runs the single-GPU training command unchanged under the
launcher, `torchrun --standalone --nproc_per_node=N -m vla_stack.cli train policy ...`
(NCCL on GPUs with NVLink multicast off, gloo on the CPU), for `warmup_steps + steps`
steps, and reads from the run's TensorBoard scalars how long the `steps` after the
warm-up took: start-up (imports, dataset load, NCCL set-up) and the warm-up (allocator,
autotuning, DDP's first buckets) are excluded. Weak scaling: every rank keeps
`batch_size` windows, so the global batch is N x batch_size.

    samples/s at N   = N x batch_size x steps / (time of the timed steps)
    efficiency at N  = samples/s at N / (N x samples/s at 1)
    replicas at N    = train.py's check_replicas: parameter fingerprints of every rank equal

The data is a folder of scripted-expert demos it records first (`vla policy demos`, small
settings), a synthetic dataset with the real feature layout (`--data-source synthetic`, no
simulator needed), or `--dataset PATH`.

    python benchmarks/ddp_scaling.py                               # GPUs: 1, 2, 4 where they exist
    python benchmarks/ddp_scaling.py --device cpu --world-sizes 1 2 --data-source synthetic  # gloo

Writes `ddp_scaling.json` through bench.write_results (`ddp_scaling_cpu.json` on the CPU,
whose metric names say `proc_cpu`, never `gpu`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import tyro

from vla_stack import bench
from vla_stack.policy.torchrun import run_torchrun

#: NVLink multicast can put a shared host's GPUs out of service (device README, KINDS.md): always off.
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


@dataclass
class DdpScalingConfig:
    world_sizes: tuple[int, ...] = (1, 2, 4)
    """processes to launch; on GPUs the sizes above the GPU count are skipped (and listed as skipped)"""
    device: Literal["auto", "cuda", "cpu"] = "auto"
    dataset: Path | None = None
    """an existing dataset (or folder of datasets); default: record one into work_dir"""
    data_source: Literal["demos", "synthetic"] = "demos"
    demo_tasks: tuple[str, ...] = ("PickRedCube", "OpenDrawer")
    demo_episodes: int = 8
    n_points: int = 1024
    synthetic_episodes: int = 8
    synthetic_length: int = 60
    warmup_steps: int = 20
    """steps run before the clock starts"""
    steps: int = 100
    """timed steps after the warm-up"""
    batch_size: int = 32
    """windows per process per step (the global batch grows with N)"""
    history: int = 8
    train_args: str = ""
    """more `vla train policy` flags for every world size, one string: --train-args="--model.d-model 64"""
    threads_per_proc: int = 0
    """OMP/torch threads per rank, the same for every N (0: 1 on the CPU, 4 on GPUs)"""
    work_dir: Path = Path("runs/ddp_scaling")
    out_dir: Path | None = None
    """where the result JSON goes (default benchmarks/results)"""
    timeout_s: float = 900.0
    """per launch; a launch that outlives it prints every process's Python stacks and is killed"""
    retries_after_hang: int = 0
    """relaunch a world size that hung this many times (each hang still reported with its stacks)"""


def resolve_device(cfg: DdpScalingConfig) -> str:
    import torch

    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA GPU is visible")
    return cfg.device


def runnable_sizes(cfg: DdpScalingConfig, device: str) -> tuple[list[int], list[int]]:
    """(sizes to run, sizes skipped for want of GPUs)."""
    if cfg.warmup_steps < 1 or cfg.steps < 1 or cfg.batch_size < 1:
        raise ValueError(f"warmup_steps, steps and batch_size must be >= 1 (the clock starts at the end of step "
                         f"warmup_steps), got {cfg.warmup_steps}, {cfg.steps}, {cfg.batch_size}")
    bad = [n for n in cfg.world_sizes if n < 1]
    if bad or not cfg.world_sizes:
        raise ValueError(f"world_sizes must be positive integers, got {cfg.world_sizes}")
    if 1 not in cfg.world_sizes:
        raise ValueError(f"world_sizes {cfg.world_sizes} lacks 1: the scaling efficiency needs the 1-process rate")
    if device != "cuda":
        return sorted(set(cfg.world_sizes)), []
    import torch

    gpus = torch.cuda.device_count()
    return sorted({n for n in cfg.world_sizes if n <= gpus}), sorted({n for n in cfg.world_sizes if n > gpus})


def make_dataset(cfg: DdpScalingConfig, work: Path) -> tuple[Path, dict]:
    if cfg.dataset is not None:
        if not Path(cfg.dataset).exists():
            raise FileNotFoundError(f"--dataset {cfg.dataset} does not exist")
        return Path(cfg.dataset), {"source": "given", "path": str(cfg.dataset)}
    root = work / f"data_{cfg.data_source}"
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    if cfg.data_source == "synthetic":
        from vla_stack.datasets.layout import DatasetSpec
        from vla_stack.datasets.synthetic import write_synthetic

        write_synthetic(root, DatasetSpec(n_points=cfg.n_points, cameras={}), episodes=cfg.synthetic_episodes,
                        length=cfg.synthetic_length)
        info = {"source": "synthetic", "episodes": cfg.synthetic_episodes, "length": cfg.synthetic_length}
    else:
        cmd = [sys.executable, "-m", "vla_stack.cli", "policy", "demos", "--out", str(root), "--tasks",
               *cfg.demo_tasks, "--episodes", str(cfg.demo_episodes), "--n-points", str(cfg.n_points)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"demo recording failed ({' '.join(cmd)}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        info = {"source": "vla policy demos", "tasks": list(cfg.demo_tasks), "episodes_per_task": cfg.demo_episodes,
                "command": " ".join(cmd[1:])}
    info.update(path=str(root), n_points=cfg.n_points, seconds=round(time.perf_counter() - t0, 1))
    return root, info


def text_cache_env(dataset: Path, work: Path) -> dict[str, str]:
    """Embed the subtask texts once here, so N ranks do not each load MiniLM (and GPU boxes
    without it can run); a VLA_TEXT_CACHE already set (carried to a GPU box) is kept."""
    if os.environ.get("VLA_TEXT_CACHE"):
        return {}
    from vla_stack import text
    from vla_stack.policy.text_cache import TextCacheConfig, collect_texts

    enc = text.TextEncoder()
    enc(collect_texts(TextCacheConfig(dataset=dataset, include_sim_tasks=False)))
    path = work / "text_cache.safetensors"
    enc.save(path)
    return {"VLA_TEXT_CACHE": str(path.resolve())}


def train_command(cfg: DdpScalingConfig, n: int, dataset: Path, out: Path, device: str) -> list[str]:
    """The single-GPU `vla train policy` command, behind the launcher."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
            "-m", "vla_stack.cli", "train", "policy", "--dataset", str(dataset), "--out", str(out),
            "--steps", str(cfg.warmup_steps + cfg.steps), "--batch-size", str(cfg.batch_size),
            "--history", str(cfg.history), "--device", device, "--log-every", str(cfg.warmup_steps),
            "--save-every", str(10 ** 9), "--no-progress", "--no-resume", *shlex.split(cfg.train_args)]


def scalars(logdir: Path, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    if tag not in acc.Tags().get("scalars", []):
        raise RuntimeError(f"{logdir}: no TensorBoard scalar {tag!r} (did training log?)")
    return {e.step: e.value for e in acc.Scalars(tag)}


def timed_seconds(rates: dict[int, float], warmup: int, total: int) -> float:
    """Seconds between the end of step `warmup` and the end of step `total`, from train.py's
    `train/steps_per_s` scalar (steps done / seconds since the training loop began)."""
    missing = [s for s in (warmup, total) if s not in rates]
    if missing:
        raise RuntimeError(f"train/steps_per_s has no value at step(s) {missing} (logged: {sorted(rates)})")
    dt = total / rates[total] - warmup / rates[warmup]
    if not dt > 0:
        raise RuntimeError(f"non-positive timed interval {dt} s from steps/s {rates[warmup]} -> {rates[total]}")
    return dt


def run_one(cfg: DdpScalingConfig, n: int, dataset: Path, work: Path, device: str, env: dict) -> dict:
    out = work / f"n{n}"
    cmd = train_command(cfg, n, dataset, out, device)
    t0 = time.perf_counter()
    proc = run_torchrun(cmd, env, cfg.timeout_s, marker=str(out), retries_after_hang=cfg.retries_after_hang, out_dir=out)
    wall = time.perf_counter() - t0
    (work / f"n{n}.log").write_text(proc.stdout + proc.stderr)
    replicas = json.loads((out / "replicas.json").read_text()) if (out / "replicas.json").is_file() else None
    if proc.returncode != 0 and not (replicas and not replicas["identical"]):
        raise RuntimeError(f"world size {n} failed (exit {proc.returncode}); log {work / f'n{n}.log'}:\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    if n > 1 and replicas is None:
        raise RuntimeError(f"world size {n}: no {out / 'replicas.json'}: train.py's replica check did not run")
    total = cfg.warmup_steps + cfg.steps
    dt = timed_seconds(scalars(out / "tb", "train/steps_per_s"), cfg.warmup_steps, total)
    losses = scalars(out / "tb", "train/loss")
    row = {"world_size": n, "global_batch": n * cfg.batch_size, "timed_steps": cfg.steps, "timed_s": dt,
           "steps_per_s": cfg.steps / dt, "samples_per_s": n * cfg.batch_size * cfg.steps / dt,
           "launch_wall_s": wall, "final_loss": losses[max(losses)]}
    if replicas is not None:
        row["replicas_identical"] = int(bool(replicas["identical"]))
        row["replica_checksums"] = replicas["checksums"]
    return row


def child_env(device: str, threads: int, extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **NO_MULTICAST, **extra, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # gloo, and no rank touches a GPU
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # else gloo takes the interface the host name resolves to
    return env


def main(cfg: DdpScalingConfig) -> Path:
    device = resolve_device(cfg)
    sizes, skipped = runnable_sizes(cfg, device)
    if 1 not in sizes:
        raise RuntimeError("world size 1 cannot run")
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    dataset, data_info = make_dataset(cfg, work)
    threads = cfg.threads_per_proc or (1 if device == "cpu" else 4)
    env = child_env(device, threads, text_cache_env(dataset, work))
    unit = "gpu" if device == "cuda" else "proc_cpu"
    rows = []
    for n in sizes:
        print(f"world size {n}: python {' '.join(train_command(cfg, n, dataset, work / f'n{n}', device)[1:])}",
              flush=True)
        rows.append(run_one(cfg, n, dataset, work, device, env))
    base = rows[0]["samples_per_s"]
    metrics: dict[str, float] = {}
    for r in rows:
        n = r["world_size"]
        r["efficiency"] = r["samples_per_s"] / (n * base)
        metrics[f"samples_per_s_{n}{unit}"] = r["samples_per_s"]
        metrics[f"steps_per_s_{n}{unit}"] = r["steps_per_s"]
        if n > 1:
            metrics[f"scaling_efficiency_{n}{unit}"] = r["efficiency"]
            metrics[f"replicas_identical_{n}{unit}"] = r["replicas_identical"]
    bench.print_table([{**{k: v for k, v in r.items() if k != "replica_checksums"},
                        "replicas_identical": r.get("replicas_identical", "n/a")} for r in rows],
                      title=f"DDP scaling, {device}, batch {cfg.batch_size}/process, {cfg.steps} timed steps "
                            f"after {cfg.warmup_steps}" + (f" (skipped, too few GPUs: {skipped})" if skipped else ""))
    train_cfg = json.loads((work / f"n{sizes[0]}" / "train_config.json").read_text())
    path = bench.write_results("ddp_scaling" if device == "cuda" else "ddp_scaling_cpu", metrics, out_dir=cfg.out_dir,
                               details={"config": json.loads(json.dumps(asdict(cfg), default=str)), "device": device,
                                        "rows": rows, "skipped_world_sizes": skipped, "dataset": data_info,
                                        "train_config": train_cfg, "env": {**NO_MULTICAST, "OMP_NUM_THREADS": threads},
                                        "gpus": _gpu_names() if device == "cuda" else [],
                                        "torch": _torch_versions(),
                                        "command_per_world_size": "python " + " ".join(train_command(
                                            cfg, 0, dataset, work / "n<N>", device)[1:]).replace(
                                            "--nproc_per_node=0", "--nproc_per_node=<N>")})
    print(f"wrote {path}")
    return path


def _gpu_names() -> list[str]:
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _torch_versions() -> dict[str, str]:
    import torch

    v = {"torch": torch.__version__}
    if torch.cuda.is_available():
        v["cuda"] = str(torch.version.cuda)
        v["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    return v


if __name__ == "__main__":
    main(tyro.cli(DdpScalingConfig))
