"""A/B on the CPU: does a fine-tune that adds shape harmonics learn to use them, and does a faster learning
rate for the added weights help?

Why: two GPU fine-tunes of the shipped expert with `--add-shape-harmonics` left the added weights near zero
(largest |w| 0.018; `benchmarks/results/compositional_s10/README.md`), while the same small policy trained
with them from the start picks 11 of 12 (`shape_harmonics_ablation.json`). Here that small PointNet policy
is trained without them (`base`, as `shape_harmonics_ablation.py`'s `without` arm), then fine-tuned from
`base` on the same demos with them added, the added weights learning at the base rate (`lr_x1`) or faster
(`lr_x30`, `TrainConfig.new_weights_lr_mult`). Each is measured as `yaw_turn_ablation.py` measures its arms.

    python benchmarks/shape_harmonics_finetune_ab.py      # ~30 min on 2 CPU cores
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from small_policy_ab import ExpertABConfig, finetune_small, record_and_train, write_ab_results
from yaw_turn_ablation import arm_columns, arm_metrics, expert_turn_rate, measure

os.environ.setdefault("MUJOCO_GL", "egl")

ARMS = {"lr_x1": 1.0, "lr_x30": 30.0}  # TrainConfig.new_weights_lr_mult of the fine-tunes


@dataclass
class ShapeHarmonicsFinetuneABConfig(ExpertABConfig):
    task: str = "PickRedCube"
    cube: str = "red_cube"
    work_dir: Path = Path("runs/shape_harmonics_finetune_ab")
    name: str = "shape_harmonics_finetune_ab"
    expert_turn_rad_per_tick: float = 0.2  # the scripted expert's largest turn (sim/expert.py)
    finetune_steps: int = 750
    finetune_lr: float = 3e-4  # the GPU fine-tunes' rate


def largest_shape_weight(final: Path) -> float:
    from vla_stack.policy.checkpoint import SHAPE_HARMONICS_KEYS, load_checkpoint

    model, _ = load_checkpoint(final)
    return max(float(p.detach().abs().max()) for n, p in model.named_parameters() if n.startswith(SHAPE_HARMONICS_KEYS))


def main(cfg: ShapeHarmonicsFinetuneABConfig) -> Path:
    from vla_stack import bench, text

    text.default_encoder()("open the drawer")  # MiniLM before any EGL context
    rows = {}
    with expert_turn_rate(cfg.expert_turn_rad_per_tick):  # demos and probe labels
        t0 = time.monotonic()
        base = record_and_train(cfg.task, Path(cfg.work_dir) / "base", cfg.recipe, cfg.reuse)
        rows["base"] = {**measure(base, cfg), "largest_shape_weight": 0.0, "wall_s": time.monotonic() - t0}
        demos = Path(cfg.work_dir) / "base" / "demos" / cfg.task
        for arm, mult in ARMS.items():
            t0 = time.monotonic()
            final = finetune_small(base, demos, Path(cfg.work_dir) / arm, cfg.recipe, cfg.finetune_steps,
                                   cfg.finetune_lr, cfg.reuse, add_shape_harmonics=True, new_weights_lr_mult=mult)
            rows[arm] = {**measure(final, cfg), "largest_shape_weight": largest_shape_weight(final),
                         "wall_s": time.monotonic() - t0}
    metrics = {}
    for arm, r in rows.items():
        metrics.update(arm_metrics(arm, r))
        metrics[f"largest_abs_shape_weight_{arm}"] = round(r["largest_shape_weight"], 4)
    bench.print_table([{"arm": arm, **arm_columns(r), "largest |shape weight|": f"{r['largest_shape_weight']:.3f}"}
                       for arm, r in rows.items()],
                      title=f"{cfg.task}: base ({cfg.recipe.steps} CPU steps, no harmonics), then {cfg.finetune_steps} "
                            f"fine-tune steps adding them at lr {cfg.finetune_lr} x {list(ARMS.values())}")
    return write_ab_results(cfg, metrics, rows)


if __name__ == "__main__":
    import tyro

    main(tyro.cli(ShapeHarmonicsFinetuneABConfig))
