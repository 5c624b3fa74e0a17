"""A/B on the CPU: does an expert that turns the hand gradually teach a policy to square it with the cube?

Why: the trained action experts never turn the hand onto a cube's faces (docs/agent.md). The scripted
expert turns at the action limit (0.20 rad per tick), so only 2-5 frames of a demonstration carry the
turn. Arm `gradual_turn` caps the expert's turn at 0.05 rad per tick (the turn spreads over the approach);
`fast_turn` is the expert as it is. Same task, demo seeds, small PointNet policy and CPU training steps;
only the expert's turn rate differs. Measured per arm:
- teacher forcing (seeds 1000+): on ticks where the expert turns (|yaw rate| > 0.02), the share where the
  policy turns the same way by at least a quarter of the expert's rate;
- closed loop (seeds 2000+, true subtask): the hand's yaw off the cube's faces when it first grasps, and
  pick success.

    python benchmarks/yaw_turn_ablation.py
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from small_policy_ab import ExpertABConfig, record_and_train, write_ab_results

os.environ.setdefault("MUJOCO_GL", "egl")

ARMS = {"fast_turn": 0.2, "gradual_turn": 0.05}  # the expert's largest turn per tick, rad


@dataclass
class YawTurnAblationConfig(ExpertABConfig):
    task: str = "PickRedCube"
    cube: str = "red_cube"
    work_dir: Path = Path("runs/yaw_turn_ablation")
    name: str = "yaw_turn_ablation"


@contextlib.contextmanager
def expert_turn_rate(rad_per_tick: float):
    from vla_stack.sim import expert

    original = expert.MAX_YAW_STEP_RAD
    expert.MAX_YAW_STEP_RAD = rad_per_tick
    try:
        yield
    finally:
        expert.MAX_YAW_STEP_RAD = original


def turn_probe(policy, cfg: YawTurnAblationConfig) -> tuple[float, int]:
    """Teacher forcing: (share of the expert's turning ticks the policy follows, number of such ticks)."""
    from vla_stack import schema
    from vla_stack.agent.rollout import make_env

    env = make_env(cfg.task, "panda", cfg.recipe.n_points, cfg.recipe.image_size)
    followed = turning = 0
    try:
        for seed in range(1000, 1000 + cfg.probe_seeds):
            obs, info = env.reset(seed=seed)
            policy.reset()
            while not env.scene.is_grasped(cfg.cube):
                label = np.asarray(env.expert_action(), np.float32)
                chunk = policy.predict_chunk(obs[schema.OBS_POINTS], obs[schema.OBS_COLORS], obs[schema.OBS_STATE],
                                             info[schema.INFO_SUBTASK])
                if abs(label[5]) > 0.02:
                    turning += 1
                    followed += bool(chunk[0, 5] * np.sign(label[5]) >= 0.25 * abs(label[5]))
                obs, _, terminated, truncated, info = env.step(label)
                if terminated or truncated:
                    break
    finally:
        env.close()
    return followed / max(1, turning), turning


def closed_loop(policy, cfg: YawTurnAblationConfig) -> tuple[float, float]:
    """The policy drives: (mean |yaw off the cube's faces| at the first grasp in degrees, pick success)."""
    from vla_stack import schema
    from vla_stack.agent.rollout import make_env
    from vla_stack.sim.registration import max_episode_steps

    env = make_env(cfg.task, "panda", cfg.recipe.n_points, cfg.recipe.image_size)
    offs, done = [], 0
    try:
        for seed in range(2000, 2000 + cfg.eval_episodes):
            obs, info = env.reset(seed=seed)
            policy.reset()
            grasp_off = None
            for _ in range(max_episode_steps(len(env.task.subtasks))):
                action = policy.step(obs[schema.OBS_POINTS], obs[schema.OBS_COLORS], obs[schema.OBS_STATE],
                                     info[schema.INFO_SUBTASK])
                obs, _, terminated, truncated, info = env.step(action)
                if grasp_off is None and env.scene.is_grasped(cfg.cube):
                    grasp_off = abs(np.degrees(env.scene.hand_yaw_off_faces(cfg.cube)))
                if terminated or truncated:
                    break
            done += bool(info[schema.INFO_SUCCESS])
            if grasp_off is not None:
                offs.append(grasp_off)
    finally:
        env.close()
    return (float(np.mean(offs)) if offs else float("nan")), done / cfg.eval_episodes


def measure(final: Path, cfg) -> dict:
    """Both measurements of one arm's checkpoint (`cfg`: task, cube, recipe, probe_seeds, eval_episodes)."""
    from vla_stack.policy import ActionExpert

    policy = ActionExpert.load(final, execution="ensemble")
    followed, turning = turn_probe(policy, cfg)
    off_deg, success = closed_loop(policy, cfg)
    return {"turn_followed": followed, "expert_turning_ticks": turning, "grasp_yaw_off_faces_deg": off_deg,
            "pick_success": success}


def arm_metrics(key: str, r: dict) -> dict:
    """The flat metrics of one measured arm (`measure`'s row plus wall_s), named after `key`."""
    return {f"teacher_forced_turn_followed_rate_{key}": round(r["turn_followed"], 3),
            f"closed_loop_grasp_yaw_off_faces_deg_{key}": round(r["grasp_yaw_off_faces_deg"], 1),
            f"closed_loop_pick_success_rate_{key}": round(r["pick_success"], 3),
            f"wall_s_{key}": round(r["wall_s"], 1)}


def arm_columns(r: dict) -> dict:
    """One measured arm's columns in the printed table."""
    return {"turns followed": f"{r['turn_followed']:.2f}", "yaw off faces at grasp (deg)": f"{r['grasp_yaw_off_faces_deg']:.1f}",
            "pick success": f"{r['pick_success']:.2f}"}


def run_arm(arm: str, cfg: YawTurnAblationConfig) -> dict:
    t0 = time.monotonic()
    with expert_turn_rate(ARMS[arm]):  # demos and probe labels: the recorder runs in this process
        row = measure(record_and_train(cfg.task, Path(cfg.work_dir) / arm, cfg.recipe, cfg.reuse), cfg)
    return {**row, "wall_s": time.monotonic() - t0}


def main(cfg: YawTurnAblationConfig) -> Path:
    from vla_stack import bench, text

    text.default_encoder()("open the drawer")  # MiniLM before any EGL context
    rows = {arm: run_arm(arm, cfg) for arm in ARMS}
    metrics = {}
    for arm, r in rows.items():
        metrics.update(arm_metrics(arm, r))
        metrics[f"expert_turning_ticks_in_probe_{arm}"] = r["expert_turning_ticks"]
    bench.print_table([{"arm": arm, "expert turn (rad/tick)": ARMS[arm], **arm_columns(r)} for arm, r in rows.items()],
                      title=f"{cfg.task}: expert turn rate A/B ({cfg.recipe.episodes} demos, {cfg.recipe.steps} CPU steps per arm)")
    return write_ab_results(cfg, metrics, rows)


if __name__ == "__main__":
    import tyro

    main(tyro.cli(YawTurnAblationConfig))
