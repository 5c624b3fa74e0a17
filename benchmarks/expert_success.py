"""Scripted-expert success on every task of every split, both arms, several workspace yaws.

Every held-out item must be solvable by the expert, or the split measures nothing. Runs
episodes in a process pool (state-only observations: the expert uses privileged state) and
writes `benchmarks/results/expert_success.json` with one row per (task, robot).

    python benchmarks/expert_success.py --seeds 50 --workers 16
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import time
from collections import defaultdict

import numpy as np

YAWS = (-np.pi / 2, -np.pi / 4, 0.0, np.pi / 4, np.pi / 2)
ROBOTS = ("panda", "ur5e")


def run_episode(job: tuple) -> dict:
    """One episode (or one chain of 5 tasks) with the scripted expert."""
    kind, name, robot, seed, yaw = job
    from vla_stack.sim.env import TabletopEnv
    from vla_stack.sim.registration import max_episode_steps
    from vla_stack.sim.tasks import get_task, load_splits

    if kind == "task":
        env = TabletopEnv(task=name, robot=robot, workspace_yaw=yaw, obs_keys=("state",), randomize_visuals=False)
        env.reset(seed=seed)
        limit = max_episode_steps(len(env.task.subtasks))
        info, steps = {}, 0
        for steps in range(1, limit + 1):
            _, _, term, _, info = env.step(env.expert_action())
            if term:
                break
        return {"kind": kind, "name": name, "robot": robot, "seed": seed, "yaw": yaw,
                "success": bool(info["success"]), "steps": steps, "subtask_index": info["subtask_index"]}
    chain = load_splits()["chains"][int(name)]
    env = TabletopEnv(task=chain[0]["task"], robot=robot, workspace_yaw=yaw, obs_keys=("state",), randomize_visuals=False)
    env.reset(seed=seed)
    completed = 0
    for item in chain:
        env.set_task(item["task"], item["instruction"])
        ok = env.progress.done
        for _ in range(max_episode_steps(len(get_task(item["task"]).subtasks))):
            if ok:
                break
            _, _, ok, _, _ = env.step(env.expert_action())
        if not ok:
            break
        completed += 1
    return {"kind": kind, "name": f"chain{name}", "robot": robot, "seed": seed, "yaw": yaw,
            "success": completed == len(chain), "completed": completed, "steps": 0, "subtask_index": completed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50, help="episodes per (task, robot); yaws cycle over seeds")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--tasks", default="", help="comma-separated subset (default: every task in a split)")
    ap.add_argument("--robots", default=",".join(ROBOTS))
    ap.add_argument("--no-chains", action="store_true")
    ap.add_argument("--name", default="expert_success", help="result file name")
    args = ap.parse_args()

    from vla_stack import bench
    from vla_stack.sim.tasks import load_splits, split_task_names

    split_of: dict[str, list[str]] = defaultdict(list)
    for split in ("train", "heldout_compositions", "heldout_paraphrases"):
        for n in split_task_names(split):
            split_of[n].append(split)
    names = args.tasks.split(",") if args.tasks else list(split_of)
    robots = args.robots.split(",")
    jobs = [("task", n, r, s, YAWS[s % len(YAWS)]) for n, r, s in itertools.product(names, robots, range(args.seeds))]
    if not args.no_chains and not args.tasks:
        n_chains = len(load_splits()["chains"])
        jobs += [("chain", str(c), r, s, YAWS[s % len(YAWS)]) for c, r, s in
                 itertools.product(range(n_chains), robots, range(max(args.seeds // 5, 2)))]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(run_episode, jobs, chunksize=4)
    wall = time.perf_counter() - t0

    rows, metrics = [], {}
    groups: dict[tuple, list] = defaultdict(list)
    for r in results:
        groups[(r["kind"], r["name"], r["robot"])].append(r)
    for (kind, name, robot), rs in groups.items():
        succ = float(np.mean([r["success"] for r in rs]))
        row = {"task": name, "robot": robot, "splits": "+".join(split_of.get(name, ["chains"])),
               "episodes": len(rs), "success_rate": succ}
        if kind == "task":
            row["mean_steps"] = float(np.mean([r["steps"] for r in rs if r["success"]] or [0]))
            by_yaw = defaultdict(list)
            for r in rs:
                by_yaw[round(r["yaw"], 3)].append(r["success"])
            row["worst_yaw_success"] = float(min(np.mean(v) for v in by_yaw.values()))
            row["failed_seeds"] = ",".join(str(r["seed"]) for r in rs if not r["success"])[:60]
        else:
            row["avg_chain_len"] = float(np.mean([r["completed"] for r in rs]))
        rows.append(row)
        metrics[f"{name}_{robot}_success_rate"] = succ
    task_rows = [r for r in rows if not r["task"].startswith("chain")]
    metrics["min_task_success_rate"] = float(min(r["success_rate"] for r in task_rows))
    metrics["mean_task_success_rate"] = float(np.mean([r["success_rate"] for r in task_rows]))
    chain_rows = [r for r in rows if r["task"].startswith("chain")]
    if chain_rows:
        metrics["expert_avg_chain_len"] = float(np.mean([r["avg_chain_len"] for r in chain_rows]))
    metrics["episodes"] = len(results)
    metrics["wall_s"] = wall
    bench.print_table(rows, title=f"scripted expert success ({len(results)} episodes, {wall:.0f} s, {args.workers} workers)")
    path = bench.write_results(args.name, metrics, details={"rows": rows, "yaws_rad": list(YAWS), "seeds": args.seeds})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
