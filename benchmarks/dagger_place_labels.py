"""What DAgger would label along a policy's own place and stack episodes, by the expert's off-path rules
(`ScriptedExpert.off_path_phase`, `still_holding`, `time_out_lets_go`; sessions 11-12) against the same expert
without them (as it was before session 11).

The policy drives every tick (beta 0: the states DAgger visits when the policy is in control); at every tick
both experts label the same state (each keeps its own phase machine). Counted over the ticks where the policy
holds the subtask's cube within 5 cm (xy) of where the expert lets go of it, the labels that say: open in place
(gripper open, up at most 5 mm in the tick), open while rising (more: the cube, still held, is lifted out
again), climb with the hand closed, and anything else (hold, lower, close in with the hand closed).

The rules also fire in noisy demonstrations (noise drives the hand off the expert's path), so each expert also
runs `noisy_episodes` episodes of each task alone, with the demonstration recipe's noise (5 mm, 0.03 rad per
tick, AR(1) 0.8): its success rate, now and before.

    python benchmarks/dagger_place_labels.py                        # shipped expert, 3 tasks x 4 seeds
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


@dataclass
class PlaceLabelsConfig:
    policy: Path = Path("shipped/policy")
    tasks: tuple[str, ...] = ("PutRedInBowl", "PutGreenInBowl", "StackRedOnGreen")
    seed: int = 5000
    seeds: int = 4
    n_points: int = 1024
    image_size: int = 128
    noisy_episodes: int = 40  # per task and expert, state only (seeds 0 ..)
    name: str = "dagger_place_labels"


KINDS = ("open_in_place", "open_rising", "climb_closed", "other_closed")


def kind(a: np.ndarray) -> str:
    rising = a[2] > 0.005
    if a[6] > 0:
        return "open_rising" if rising else "open_in_place"
    return "climb_closed" if rising else "other_closed"


def expert_without_off_path_rules(scene, facts):
    from vla_stack.sim.expert import ScriptedExpert

    class Before(ScriptedExpert):   # the expert as it was before session 11
        def off_path_phase(self, place):
            return self.phase

        def still_holding(self):
            return False

        def time_out_lets_go(self, place):
            return True

    return Before(scene, facts)


def episode(policy, env, seed: int) -> dict:
    from vla_stack import schema

    obs, info = env.reset(seed=seed)
    policy.reset()
    u = env.unwrapped
    before = expert_without_off_path_rules(u.scene, u.facts)
    counts = {"ticks_holding_near_release": 0} | {f"{k}_{w}": 0 for w in ("now", "before") for k in KINDS}
    while True:
        sub = str(info[schema.INFO_SUBTASK])
        action = policy.step(obs[schema.OBS_POINTS], obs[schema.OBS_COLORS], obs[schema.OBS_STATE], sub)
        st = None if u.progress.done else u.task.subtasks[u.progress.index]
        labels = {"now": u.expert_action(), "before": before.act(st, u.progress.index, u.steps)}
        release = u.expert.release_point
        placing = st is not None and st.skill in ("place", "stack") and u.facts.holding() == st.object
        if placing and release is not None and np.linalg.norm(u.scene.tcp_pos()[:2] - release[:2]) < 0.05:
            counts["ticks_holding_near_release"] += 1
            for who, a in labels.items():
                counts[f"{kind(a)}_{who}"] += 1
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return {"seed": seed, "success": bool(terminated), **counts}


def noisy_expert_success(task: str, episodes: int, before: bool) -> float:
    from vla_stack import schema
    from vla_stack.policy.demos import CorrelatedNoise, executed_action
    from vla_stack.sim.env import TabletopEnv
    from vla_stack.sim.registration import max_episode_steps

    env = TabletopEnv(task=task, obs_keys=(schema.OBS_STATE,))
    if before:
        env.expert = expert_without_off_path_rules(env.scene, env.facts)
    successes = 0
    for seed in range(episodes):
        noise = CorrelatedNoise(np.array([0.005] * 3 + [0.03] * 3), 0.8, np.random.default_rng(seed))
        env.reset(seed=seed)
        for _ in range(max_episode_steps(len(env.task.subtasks))):
            if env.step(executed_action(np.asarray(env.expert_action(), np.float32), noise))[2]:
                successes += 1
                break
    env.close()
    return successes / episodes


def main(cfg: PlaceLabelsConfig) -> Path:
    import torch

    from vla_stack import bench, sim, text
    from vla_stack.policy import ActionExpert

    torch.set_num_threads(1)  # the same rollouts on any machine
    text.default_encoder()("open the drawer")  # MiniLM before any EGL context
    policy = ActionExpert.load(cfg.policy)
    rows, metrics, table = {}, {}, []
    for task in cfg.tasks:
        env = sim.make(task, n_points=cfg.n_points, image_size=cfg.image_size)
        try:
            eps = [episode(policy, env, s) for s in range(cfg.seed, cfg.seed + cfg.seeds)]
        finally:
            env.close()
        rows[task] = eps
        total = {k: sum(e[k] for e in eps) for k in eps[0] if k not in ("seed", "success")}
        for k, v in total.items():
            metrics[f"{k}_{task}"] = v
        for who in ("now", "before"):
            metrics[f"open_in_place_share_{who}_{task}"] = round(
                total[f"open_in_place_{who}"] / max(total["ticks_holding_near_release"], 1), 3)
            total[f"noisy_expert_success_{who}"] = metrics[f"noisy_expert_success_{who}_{task}"] = round(
                noisy_expert_success(task, cfg.noisy_episodes, before=who == "before"), 3)
        table.append({"task": task, "episodes": len(eps), "successes": sum(e["success"] for e in eps), **total})
    bench.print_table(table, title=f"DAgger labels along {cfg.policy}'s place episodes: now / before")
    return bench.write_results(cfg.name, metrics, details={"config": {k: str(v) for k, v in vars(cfg).items()},
                                                           "episodes": rows})


if __name__ == "__main__":
    import tyro

    main(tyro.cli(PlaceLabelsConfig))
