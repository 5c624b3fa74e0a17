"""`vla finetune`: continue training a checkpoint on a new dataset (e.g. a new task), the
encoder optionally frozen. The same trainer as `vla train policy`, started from the weights
(and normalization) of `checkpoint`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .train import TrainConfig, train


@dataclass
class FinetuneConfig:
    checkpoint: Path = Path("runs/policy/final")
    dataset: Path = Path("data/new_task")
    # co-training: e.g. the checkpoint's own data beside the new set, so its old skills are not forgotten
    mix_with: tuple[Path, ...] = ()
    mix_weights: tuple[float, ...] = ()  # shares of `dataset`, then each of mix_with (empty: by window counts)
    out: Path = Path("runs/policy_finetuned")
    steps: int = 2000
    batch_size: int = 32
    history: int = 8
    lr: float = 1e-4
    warmup_steps: int = 50
    freeze_encoder: bool = True
    max_points: int = 0
    device: str = "auto"
    seed: int = 0
    progress: bool = True


def run(cfg: FinetuneConfig) -> int:
    train(TrainConfig(dataset=cfg.dataset, mix_with=cfg.mix_with, mix_weights=cfg.mix_weights, out=cfg.out,
                      steps=cfg.steps, batch_size=cfg.batch_size, history=cfg.history, lr=cfg.lr,
                      warmup_steps=cfg.warmup_steps, init_from=cfg.checkpoint, freeze_encoder=cfg.freeze_encoder,
                      max_points=cfg.max_points, device=cfg.device, seed=cfg.seed, progress=cfg.progress,
                      resume=True, save_every=max(1, cfg.steps // 4)))
    return 0
