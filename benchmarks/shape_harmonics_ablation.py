"""A/B on the CPU: do shape harmonics (policy/shape_harmonics.py) let a policy square the hand with a cube?

Why: neither action expert turned the hand onto a cube's faces before grasping (docs/agent.md), and a
linear probe found the cube's yaw only weakly in their features (`yaw_probe.py`). Shape harmonics hand
the policy the cube's 4-fold angular structure about the approach axis directly. Arms `without` and
`with` train the same small PointNet policy (same demos, seed and CPU steps) and differ only in
`PolicyConfig.shape_harmonics`; they are measured as `yaw_turn_ablation.py` measures its arms:
- teacher forcing (seeds 1000+): the share of the expert's turning ticks the policy follows;
- closed loop (seeds 2000+, true subtask): the hand's yaw off the cube's faces at the first grasp
  (22.5 deg for a random hand) and pick success.

    python benchmarks/shape_harmonics_ablation.py      # ~21 min on 2 CPU cores
    python benchmarks/shape_harmonics_ablation.py --expert-turn-rad-per-tick 0.05 --name shape_harmonics_ablation_gradual
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

from small_policy_ab import ExpertABConfig, record_and_train, write_ab_results
from yaw_turn_ablation import arm_columns, arm_metrics, expert_turn_rate, measure

os.environ.setdefault("MUJOCO_GL", "egl")

ARMS = {"without": False, "with": True}  # PolicyConfig.shape_harmonics


@dataclass
class ShapeHarmonicsAblationConfig(ExpertABConfig):
    task: str = "PickRedCube"
    cube: str = "red_cube"
    work_dir: Path = Path("runs/shape_harmonics_ablation")
    name: str = "shape_harmonics_ablation"
    expert_turn_rad_per_tick: float = 0.2  # the scripted expert's largest turn (sim/expert.py; 0.05: gradual)


def run_arm(arm: str, cfg: ShapeHarmonicsAblationConfig, demos: Path | None) -> dict:
    t0 = time.monotonic()
    recipe = dataclasses.replace(cfg.recipe, shape_harmonics=ARMS[arm])
    with expert_turn_rate(cfg.expert_turn_rad_per_tick):  # demos and probe labels
        row = measure(record_and_train(cfg.task, Path(cfg.work_dir) / arm, recipe, cfg.reuse, demos=demos), cfg)
    return {**row, "wall_s": time.monotonic() - t0}


def main(cfg: ShapeHarmonicsAblationConfig) -> Path:
    from vla_stack import bench, text

    text.default_encoder()("open the drawer")  # MiniLM before any EGL context
    first, second = ARMS
    rows = {first: run_arm(first, cfg, demos=None)}
    rows[second] = run_arm(second, cfg, demos=Path(cfg.work_dir) / first / "demos" / cfg.task)  # the same demos
    metrics = {k: v for arm, r in rows.items() for k, v in arm_metrics(f"{arm}_shape_harmonics", r).items()}
    bench.print_table([{"arm": f"{arm} shape harmonics", **arm_columns(r)} for arm, r in rows.items()],
                      title=f"{cfg.task}: shape harmonics A/B ({cfg.recipe.episodes} demos, {cfg.recipe.steps} CPU steps per arm, "
                            f"expert turning at most {cfg.expert_turn_rad_per_tick} rad/tick)")
    return write_ab_results(cfg, metrics, rows)


if __name__ == "__main__":
    import tyro

    main(tyro.cli(ShapeHarmonicsAblationConfig))
