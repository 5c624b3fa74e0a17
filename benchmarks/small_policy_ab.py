"""The small CPU policy that the expert A/Bs (`release_ablation.py`, `yaw_turn_ablation.py`) train per arm:
the same demo seeds, PointNet encoder with object channels and CPU steps in every arm, so only the
scripted expert's behaviour differs between arms."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SmallPolicyRecipe:
    episodes: int = 40  # demonstrations per arm (seeds 0..)
    steps: int = 1500  # training steps per arm
    batch_size: int = 16
    history: int = 8
    lr: float = 1e-3
    n_points: int = 512
    image_size: int = 96
    shape_harmonics: bool = False  # the policy's cube-yaw features (policy/shape_harmonics.py)


@dataclass
class ExpertABConfig:
    """What every expert A/B shares; each benchmark adds its task, work_dir and result name."""

    recipe: SmallPolicyRecipe = field(default_factory=SmallPolicyRecipe)  # demos and CPU training per arm
    probe_seeds: int = 8  # teacher-forced episodes (seeds 1000+)
    eval_episodes: int = 12  # closed-loop episodes (seeds 2000+)
    reuse: bool = False  # measure the arms' checkpoints already in work_dir (same config) instead of retraining


def record_and_train(task: str, out: Path, recipe: SmallPolicyRecipe, reuse: bool = False,
                     demos: Path | None = None) -> Path:
    """Record `task`'s demos in this process (so a patched expert or sim applies) and train on them;
    returns the final checkpoint, or the one already in `out` when `reuse`. `demos`: train on this
    dataset instead (arms that differ only in the policy share one recording)."""
    from vla_stack.policy.config import PolicyConfig
    from vla_stack.policy.demos import DemosConfig, record_task

    final = out / "run" / "final"
    if reuse and (final / "config.json").is_file():
        return final
    if demos is None:
        record_task(task, DemosConfig(out=out / "demos", tasks=(task,), episodes=recipe.episodes, seed=0,
                                      n_points=recipe.n_points, image_size=recipe.image_size, overwrite=True))
        demos = out / "demos" / task
    model = PolicyConfig(encoder="pointnet", object_channels=True, shape_harmonics=recipe.shape_harmonics)
    return train_small(demos, out, recipe, model=model, steps=recipe.steps, lr=recipe.lr)


def finetune_small(base: Path, demos: Path, out: Path, recipe: SmallPolicyRecipe, steps: int, lr: float,
                   reuse: bool = False, **train_args) -> Path:
    """A fine-tune of `base` for an A/B arm (TrainConfig fields in `train_args`, e.g. mix_with); the
    checkpoint already in `out` when `reuse`."""
    final = out / "run" / "final"
    if reuse and (final / "config.json").is_file():
        return final
    return train_small(demos, out, recipe, init_from=base, steps=steps, lr=lr, **train_args)


def train_small(demos: Path, out: Path, recipe: SmallPolicyRecipe, **train_args) -> Path:
    """The A/Bs' CPU training run: the recipe's batch and history, seed 0, no resume."""
    import torch

    from vla_stack.policy.train import TrainConfig, train

    torch.manual_seed(0)
    return train(TrainConfig(dataset=demos, out=out / "run", batch_size=recipe.batch_size, history=recipe.history,
                             warmup_steps=50, device="cpu", save_every=10**9, log_every=250, progress=False,
                             resume=False, seed=0, **train_args))


def write_ab_results(cfg, metrics: dict, rows: dict) -> Path:
    """An A/B's result file: its flat metrics, its config and every arm's full row."""
    from vla_stack import bench

    return bench.write_results(cfg.name, metrics, details={"config": {k: str(v) for k, v in vars(cfg).items()},
                                                           "arms": rows})
