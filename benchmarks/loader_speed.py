"""Training-loader speed: windows per second from `WindowDataset`, with and without workers.

Target (issue 3): at least 2,000 windows/s with workers on this machine, so the action
expert's training is never starved. One window = T steps of history (points, colours,
state) + an H-step action chunk per history step, normalized. Compared side by side in one
run: per-item indexing with the default collate (the usual DataLoader), whole-batch
indexing (`ds[list]` through a BatchSampler, one gather per batch), each with 0 and 2
workers, and the plain reference loop (`reference_window`, re-reads parquet per window).

    python benchmarks/loader_speed.py [--root DATASET] [--episodes 20] [--length 150] [--n-points 1024]
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from vla_stack import bench
from vla_stack.datasets import DatasetReader, DatasetSpec, WindowDataset
from vla_stack.datasets.synthetic import write_synthetic
from vla_stack.datasets.window import reference_window


@dataclass
class LoaderBenchConfig:
    root: Path | None = None
    """an existing dataset; default: write a synthetic one (real feature layout) to a temp dir"""
    episodes: int = 20
    length: int = 150
    n_points: int = 1024
    history: int = 2
    horizon: int = 16
    batch_size: int = 64
    workers: int = 2
    seconds: float = 4.0
    """time budget per configuration"""
    out_dir: Path | None = None


def _rate(loader_iter_fn, seconds: float, per_batch: int) -> float:
    """Windows/s over whole passes of a fresh iterator, after one warm-up batch (worker start-up excluded)."""
    it = loader_iter_fn()
    next(it)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        try:
            batch = next(it)
        except StopIteration:
            it = loader_iter_fn()
            continue
        n += len(batch["action"]) if per_batch else 1
    return n / (time.perf_counter() - t0)


def main(cfg: LoaderBenchConfig) -> None:
    torch.set_num_threads(1)
    tmp = None
    root = cfg.root
    if root is None:
        tmp = tempfile.TemporaryDirectory()
        root = Path(tmp.name) / "ds"
        t0 = time.perf_counter()
        write_synthetic(root, DatasetSpec(n_points=cfg.n_points, cameras={}), episodes=cfg.episodes,
                        length=cfg.length)
        print(f"wrote {cfg.episodes} synthetic episodes in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    ds = WindowDataset(root, history=cfg.history, horizon=cfg.horizon, normalize=True)
    load_s = time.perf_counter() - t0
    item = ds[0]
    window_bytes = sum(v.numel() * v.element_size() for v in item.values())
    rng = np.random.default_rng(0)
    rows, metrics = [], {}

    def single():
        idx = rng.integers(0, len(ds), 1 << 30)
        return ({"action": ds[int(i)]["action"][None]} for i in idx)

    r = _rate(single, cfg.seconds, per_batch=False)
    rows.append({"mode": "ds[i] loop, main process", "workers": 0, "windows_per_s": r})
    metrics["windows_per_s_item_loop"] = r
    for workers in sorted({0, cfg.workers}):
        kw = dict(num_workers=workers, persistent_workers=workers > 0)
        item_loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, drop_last=True, **kw)
        r = _rate(lambda: iter(item_loader), cfg.seconds, per_batch=True)
        rows.append({"mode": "DataLoader, per-item collate", "workers": workers, "windows_per_s": r})
        metrics[f"windows_per_s_item_collate_{workers}w"] = r
        sampler = torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(ds), cfg.batch_size, drop_last=True)
        batch_loader = torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=None, **kw)
        r = _rate(lambda: iter(batch_loader), cfg.seconds, per_batch=True)
        rows.append({"mode": "DataLoader, batched ds[list]", "workers": workers, "windows_per_s": r})
        metrics[f"windows_per_s_batched_{workers}w"] = r
        del item_loader, batch_loader
    reader = DatasetReader(root)
    n_ref, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min(cfg.seconds, 2.0):
        ep = int(rng.integers(reader.num_episodes))
        reference_window(reader, ep, int(rng.integers(reader.episodes[ep]["length"])), cfg.history, cfg.horizon,
                         normalize_with=reader.stats)
        n_ref += 1
    r = n_ref / (time.perf_counter() - t0)
    rows.append({"mode": "reference_window (re-reads parquet)", "workers": 0, "windows_per_s": r})
    metrics["windows_per_s_reference"] = r
    best = max(v for k, v in metrics.items() if k.startswith("windows_per_s_") and k != "windows_per_s_reference")
    for row in rows:
        row["MB_per_s"] = row["windows_per_s"] * window_bytes / 1e6
        row["x_reference"] = row["windows_per_s"] / metrics["windows_per_s_reference"]
    metrics.update(windows_per_s_best=best, dataset_load_s=load_s, window_kb=window_bytes / 1024,
                   frames=len(ds), meets_2000_windows_per_s_target=float(best >= 2000))
    bench.print_table(rows, title=f"WindowDataset(history={cfg.history}, horizon={cfg.horizon}), "
                                  f"{cfg.n_points} points, batch {cfg.batch_size}, {os.cpu_count()} cores")
    print(f"load {load_s:.2f} s for {len(ds)} frames; one window = {window_bytes / 1024:.1f} KiB; best {best:.0f} windows/s")
    path = bench.write_results("loader_speed", metrics, out_dir=cfg.out_dir, details={
        "config": {k: str(v) for k, v in vars(cfg).items()}, "table": rows,
        "note": "2 CPU cores shared with other jobs; rates are lower bounds on a quiet machine",
    })
    print(f"wrote {path}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main(tyro.cli(LoaderBenchConfig))
