"""A/B on the CPU: after one DAgger round, does the share of DAgger windows in each batch decide whether a
policy learns to let go in the bowl?

Why: the shipped expert carries the cube into the bowl and holds it there (closed-loop traces, docs/agent.md):
it pushes lower than the expert ever does, a state the demonstrations never show, so it never sees a release
there. A DAgger-only fine-tune taught placing but forgot short skills (`results/compositional_dagger/`); the
aggregate of demos and DAgger, where DAgger was about a quarter of the windows, placed nothing
(`results/compositional_s7/`, `compositional_s10/`). Here, on one place task and a small policy:

- `base`: the small PointNet policy of the expert A/Bs (`small_policy_ab.py`) on the task's demos;
- one DAgger round from `base` (`vla policy dagger`: the policy drives, the expert acts with probability beta
  and labels every tick);
- fine-tunes from `base`, the same steps and rate, that differ only in DAgger's share of every batch
  (`--mix-weights`): none (`demos_only`, the control: more steps, no new states), a quarter (as in the GPU
  recipe's aggregate), a half, all (as session 5's DAgger-only fine-tune).

Each arm is measured closed loop as `release_ablation.py` measures it (the policy drives with the true subtask;
success: the cube let go inside the bowl), on the same unseen seeds.

    python benchmarks/dagger_share_ab.py            # ~40 min on 2 CPU cores
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from release_ablation import closed_loop
from small_policy_ab import ExpertABConfig, finetune_small, record_and_train, write_ab_results

os.environ.setdefault("MUJOCO_GL", "egl")

#: the fine-tune arms: DAgger's share of the windows drawn (demos the rest); a quarter is what the GPU
#: recipe's aggregate held (26,248 of 99,574 frames), one is the DAgger-only fine-tune of session 5
ARMS = {"demos_only": 0.0, "dagger_quarter": 0.25, "dagger_half": 0.5, "dagger_only": 1.0}


@dataclass
class DaggerShareABConfig(ExpertABConfig):
    task: str = "PutRedInBowl"
    cube: str = "red_cube"
    work_dir: Path = Path("runs/dagger_share_ab")
    name: str = "dagger_share_ab"
    dagger_episodes: int = 20
    beta: float = 0.3  # DAgger: probability of executing the expert's action (the GPU recipe's)
    finetune_steps: int = 750
    finetune_lr: float = 3e-4


def collect_dagger(base: Path, cfg: DaggerShareABConfig) -> tuple[Path, dict]:
    from vla_stack.policy.dagger import DaggerConfig, collect_task

    out = Path(cfg.work_dir) / "dagger"
    if cfg.reuse and (out / cfg.task / "meta" / "info.json").is_file():
        return out / cfg.task, {"reused": True}
    row = collect_task(cfg.task, DaggerConfig(checkpoint=base, out=out, tasks=(cfg.task,), episodes=cfg.dagger_episodes,
                                              n_envs=5, beta=cfg.beta, seed=300, n_points=cfg.recipe.n_points,
                                              image_size=cfg.recipe.image_size, max_steps=300, execution="ensemble",
                                              device="cpu", overwrite=True))
    return out / cfg.task, row


def measure(final: Path, cfg: DaggerShareABConfig) -> float:
    from vla_stack.policy import ActionExpert

    return closed_loop(ActionExpert.load(final, execution="ensemble"), cfg)


def main(cfg: DaggerShareABConfig) -> Path:
    from vla_stack import bench, text
    from vla_stack.policy.checkpoint import read_config
    from vla_stack.policy.multi_dataset import WindowMixture

    text.default_encoder()("open the drawer")  # MiniLM before any EGL context
    work = Path(cfg.work_dir)
    t0 = time.monotonic()
    base = record_and_train(cfg.task, work / "base", cfg.recipe, cfg.reuse)
    demos = work / "base" / "demos" / cfg.task
    rows = {"base": {"released_in_bowl": measure(base, cfg), "wall_s": time.monotonic() - t0}}
    t0 = time.monotonic()
    dagger, dagger_row = collect_dagger(base, cfg)
    mix = WindowMixture([demos, dagger], cfg.recipe.history, read_config(base)[0].horizon)
    dagger_info = {**dagger_row, "dagger_windows": int(mix.windows[1]), "demo_windows": int(mix.windows[0]),
                   "wall_s": time.monotonic() - t0}
    for arm, share in ARMS.items():
        t0 = time.monotonic()
        final = finetune_small(base, demos, work / arm, cfg.recipe, cfg.finetune_steps, cfg.finetune_lr, cfg.reuse,
                               mix_with=(dagger,), mix_weights=(1.0 - share, share))
        rows[arm] = {"released_in_bowl": measure(final, cfg), "wall_s": time.monotonic() - t0, "dagger_share": share}
    rows["dagger"] = dagger_info
    metrics = {"dagger_windows": dagger_info["dagger_windows"], "demo_windows": dagger_info["demo_windows"],
               "dagger_share_of_windows_unweighted": round(float(mix.shares[1]), 3)}
    for arm in ("base", *ARMS):
        metrics[f"closed_loop_released_in_bowl_rate_{arm}"] = round(rows[arm]["released_in_bowl"], 3)
        metrics[f"wall_s_{arm}"] = round(rows[arm]["wall_s"], 1)
    bench.print_table([{"arm": arm, "DAgger share of windows": f"{rows[arm].get('dagger_share', 0.0):.2f}",
                        "let go in the bowl": f"{rows[arm]['released_in_bowl']:.2f}"} for arm in ("base", *ARMS)],
                      title=f"{cfg.task}: base ({cfg.recipe.episodes} demos, {cfg.recipe.steps} CPU steps), one DAgger "
                            f"round ({cfg.dagger_episodes} episodes, beta {cfg.beta}), {cfg.finetune_steps} fine-tune "
                            f"steps per arm; {cfg.eval_episodes} closed-loop episodes each")
    return write_ab_results(cfg, metrics, rows)


if __name__ == "__main__":
    import tyro

    main(tyro.cli(DaggerShareABConfig))
