"""Linear probe: do an action expert's per-frame features carry the cube's yaw relative to the hand?

Why: trained experts never turn the hand onto a cube's faces (docs/agent.md). Either the features do
not hold the cube's orientation (perception), or they do and the action head never learned to use
it. The probe fits ridge regression from the encoder's token and its vectors expressed in the hand
frame (all invariant) to (sin 4d, cos 4d), d = hand yaw - cube yaw (a cube repeats every 90 deg), on
the first frame of many PutGreenInBowl episodes; held-out R^2, best ridge strength; each checkpoint
beside the same architecture with random weights.

    python benchmarks/yaw_probe.py --frames 1000
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
TRAIN = Path("benchmarks/results/compositional_train")


@dataclass
class YawProbeConfig:
    checkpoints: tuple[Path, ...] = (TRAIN / "full", TRAIN / "pointnet")
    task: str = "PutGreenInBowl"
    cube: str = "green_cube"
    frames: int = 1000  # first frames of episodes, seeds 20000..; the last quarter is held out
    n_points: int = 1024
    image_size: int = 128


def collect(cfg: YawProbeConfig):
    from vla_stack import schema
    from vla_stack.agent.rollout import make_env

    env = make_env(cfg.task, "panda", cfg.n_points, cfg.image_size, 0.0)
    frames, target = [], []
    try:
        for seed in range(20000, 20000 + cfg.frames):
            obs, info = env.reset(seed=seed)
            r = env.scene.tcp_mat()
            d = np.arctan2(r[1, 0], r[0, 0]) - env.scene.body_yaw(cfg.cube)
            target.append([np.sin(4 * d), np.cos(4 * d)])
            frames.append((obs[schema.OBS_POINTS], obs[schema.OBS_COLORS], obs[schema.OBS_STATE], info[schema.INFO_SUBTASK]))
    finally:
        env.close()
    return frames, np.array(target)


def features(model, frames, encoder) -> np.ndarray:
    import torch

    from vla_stack.policy.geometry import ee_frame
    from vla_stack.policy.object_channels import codes_for

    stack = lambda i: torch.from_numpy(np.stack([f[i] for f in frames])).float()  # noqa: E731
    points, colors, state, subtasks = stack(0), stack(1), stack(2), [f[3] for f in frames]
    texts = torch.from_numpy(encoder(subtasks)).float()
    codes = torch.from_numpy(codes_for(model.cfg, subtasks)).float()
    out = []
    with torch.inference_mode():
        for i in range(0, len(frames), 16):
            s = slice(i, i + 16)
            token, vectors = model.encode(points[s], colors[s], state[s], texts[s], objects=codes[s])
            _, axes, _ = ee_frame(state[s])   # the hand's x and z axes
            parts = [token] + [torch.einsum("bvi,bji->bvj", v.float(), axes).flatten(1) for v in vectors if v is not None]
            out.append(torch.cat(parts, -1))
    return torch.cat(out).numpy()


def heldout_r2(x: np.ndarray, y: np.ndarray) -> float:
    n = int(0.75 * len(x))
    x = (x - x[:n].mean(0)) / (x[:n].std(0) + 1e-6)
    best = -np.inf
    for lam in (0.1, 1.0, 10.0, 100.0, 1000.0):
        w = np.linalg.solve(x[:n].T @ x[:n] + lam * np.eye(x.shape[1]), x[:n].T @ y[:n])
        err = ((x[n:] @ w - y[n:]) ** 2).sum() / ((y[n:] - y[n:].mean(0)) ** 2).sum()
        best = max(best, 1 - err)
    return float(best)


def run(cfg: YawProbeConfig) -> dict:
    from vla_stack import bench, text

    encoder = text.default_encoder()
    encoder("open the drawer")  # MiniLM before any EGL context
    import torch

    from vla_stack.policy.checkpoint import load_checkpoint
    from vla_stack.policy.model import PolicyModel

    torch.set_num_threads(2)
    t0 = time.time()
    frames, y = collect(cfg)
    metrics, rows = {}, []
    for path in cfg.checkpoints:
        model, _ = load_checkpoint(path)
        torch.manual_seed(0)
        untrained = PolicyModel(model.cfg, None)
        for label, m in (("trained", model), ("random_weights", untrained)):
            r2 = heldout_r2(features(m.eval(), frames, encoder), y)
            metrics[f"heldout_r2_{Path(path).name}_{label}"] = r2
            rows.append({"checkpoint": str(path), "weights": label, "held-out R^2": f"{r2:.3f}"})
    metrics["frames"] = cfg.frames
    metrics["wall_s"] = time.time() - t0
    bench.print_table(rows, title=f"linear probe of hand-vs-cube yaw (mod 90 deg), {cfg.frames} first frames of {cfg.task}")
    bench.write_results("yaw_probe", metrics, details={"config": {k: [str(p) for p in v] if k == "checkpoints" else v
                                                                  for k, v in vars(cfg).items()}})
    return metrics


if __name__ == "__main__":
    import tyro

    run(tyro.cli(YawProbeConfig))
