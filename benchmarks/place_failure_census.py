"""How a policy's place episodes fail, counted over seeds: the evidence behind docs/policy.md's
"DAgger's share of every batch".

The policy drives with the true subtask (its recorded chunk execution). Per episode: success; every grasp's
hand yaw off the cube's faces (0 = square, 45 = across two edges); every drop in transport (the cube leaves
the hand while the policy commands closed, its bottom higher than a pick lifts it, sim/facts.py LIFT_M);
and, over the place subtask while the cube is held within 2 cm of the bowl's centre, the lowest tool-centre
height (the scripted expert lets go at 3.7 cm +- 0.8, sim/expert.py).

    python benchmarks/place_failure_census.py                       # shipped expert, 2 tasks x 6 seeds
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

CUBE_OF = {"PutRedInBowl": "red_cube", "PutGreenInBowl": "green_cube"}


@dataclass
class CensusConfig:
    policy: Path = Path("shipped/policy")
    tasks: tuple[str, ...] = ("PutRedInBowl", "PutGreenInBowl")
    seed: int = 5000
    seeds: int = 6
    n_points: int = 1024
    image_size: int = 128
    name: str = "place_failure_census"


def episode(policy, env, seed: int, cube: str) -> dict:
    from vla_stack import schema
    from vla_stack.sim.facts import LIFT_M
    from vla_stack.sim.scene import CUBE_HALF

    obs, info = env.reset(seed=seed)
    policy.reset()
    scene, facts = env.unwrapped.scene, env.unwrapped.facts
    held_before, grasps, drops, lowest_in_bowl = "nothing", [], [], None
    while True:
        sub = str(info[schema.INFO_SUBTASK])
        action = policy.step(obs[schema.OBS_POINTS], obs[schema.OBS_COLORS], obs[schema.OBS_STATE], sub)
        obs, _, terminated, truncated, info = env.step(action)
        held = facts.holding()
        if held != "nothing" and held_before == "nothing":
            grasps.append(round(float(np.degrees(scene.hand_yaw_off_faces(held))), 1))
        lifted = scene.body_pos(cube)[2] - CUBE_HALF > LIFT_M
        if held_before != "nothing" and held == "nothing" and action[6] < 0 and lifted:
            drops.append({"tick": env.unwrapped.steps, "subtask": sub, "cube_z_m": round(float(scene.body_pos(cube)[2]), 3)})
        if held == cube and "bowl" in sub and np.linalg.norm(scene.body_pos(cube)[:2] - scene.body_pos("bowl")[:2]) < 0.02:
            z = float(scene.tcp_pos()[2])
            lowest_in_bowl = z if lowest_in_bowl is None else min(lowest_in_bowl, z)
        held_before = held
        if terminated or truncated:
            return {"seed": seed, "success": bool(terminated), "grasp_yaw_off_faces_deg": grasps, "drops": drops,
                    "lowest_tcp_z_holding_over_bowl_m": None if lowest_in_bowl is None else round(lowest_in_bowl, 4),
                    "ticks": env.unwrapped.steps}


def main(cfg: CensusConfig) -> Path:
    from vla_stack import bench, sim, text
    from vla_stack.policy import ActionExpert

    import torch

    torch.set_num_threads(1)  # the same rollouts on any machine (a different sum order can change an episode)
    text.default_encoder()("open the drawer")  # MiniLM before any EGL context
    policy = ActionExpert.load(cfg.policy)
    rows, metrics = {}, {}
    for task in cfg.tasks:
        env = sim.make(task, n_points=cfg.n_points, image_size=cfg.image_size)
        try:
            eps = [episode(policy, env, s, CUBE_OF[task]) for s in range(cfg.seed, cfg.seed + cfg.seeds)]
        finally:
            env.close()
        rows[task] = eps
        lows = [e["lowest_tcp_z_holding_over_bowl_m"] for e in eps if e["lowest_tcp_z_holding_over_bowl_m"] is not None]
        metrics[f"success_rate_{task}"] = round(float(np.mean([e["success"] for e in eps])), 3)
        metrics[f"episodes_with_a_drop_in_transport_{task}"] = sum(bool(e["drops"]) for e in eps)
        metrics[f"first_grasp_yaw_off_faces_median_deg_{task}"] = float(np.median(
            [abs(e["grasp_yaw_off_faces_deg"][0]) for e in eps if e["grasp_yaw_off_faces_deg"]]))
        metrics[f"episodes_holding_over_bowl_{task}"] = len(lows)
        if lows:
            metrics[f"lowest_tcp_z_holding_over_bowl_median_m_{task}"] = round(float(np.median(lows)), 4)
        for e in eps:
            print(task, e)
    bench.print_table([{"metric": k, "value": v} for k, v in metrics.items()], title=f"place failures of {cfg.policy}")
    return bench.write_results(cfg.name, metrics, details={"config": {k: str(v) for k, v in vars(cfg).items()},
                                                           "episodes": rows})


if __name__ == "__main__":
    import tyro

    main(tyro.cli(CensusConfig))
