"""Episodes that end on a DONE the simulator does not bear out: the full stack with the learned planner
against the same stack told the sim's true subtask (the oracle planner), same task, seeds and policy.

Why: with the oracle a dropped cube is picked again (the sim's progress goes back); a planner that says
DONE too early ends the episode instead (docs/agent.md, "When in doubt"). CPU:

    python benchmarks/false_done.py --task StackGreenOnBlue --seeds 8 \\
        --policy benchmarks/results/compositional_s14/checkpoint --name false_done

Writes benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
from multiprocessing import Pool
from pathlib import Path

import compositional   # benchmarks/ is first on the path when run as a script
from vla_stack import bench


def summarize(rows: list[dict]) -> dict[str, float]:
    """Per planner: success rate, and the share of episodes that ended on a DONE with the task unfinished."""
    metrics = {}
    for planner in sorted({r["planner_kind"] for r in rows}):
        mine = [r for r in rows if r["planner_kind"] == planner]
        metrics[f"success_{planner}"] = sum(bool(r.get("success")) for r in mine) / len(mine)
        metrics[f"false_done_{planner}"] = sum(bool(r.get("agent_done")) and not r.get("success") for r in mine) / len(mine)
        metrics[f"episodes_{planner}"] = float(len(mine))
    return metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="StackGreenOnBlue")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--policy", default=str(compositional.SHIPPED / "policy"))
    ap.add_argument("--n-points", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--name", default="false_done")
    args = ap.parse_args()
    from vla_stack.sim.tasks import get_task

    cfg = compositional.CompositionalConfig(policy=Path(args.policy), n_points=args.n_points, image_size=128)
    units = [dict(section="false_done", variant="full", split="", task=args.task, instruction=get_task(args.task).instruction,
                  robot="panda", yaw=0, seed=args.seed + s, planner=planner)
             for planner in ("oracle", cfg.planner) for s in range(args.seeds)]
    with Pool(max(1, args.workers)) as pool:
        rows = pool.map(compositional.run_unit, [(u, dataclasses.asdict(cfg)) for u in units])
    for r in rows:
        r["planner_kind"] = "oracle" if r["planner"] == "oracle" else "learned"
    metrics = summarize(rows)
    keep = ("planner_kind", "seed", "success", "steps", "agent_done", "issued", "error")
    path = bench.write_results(args.name, metrics, details=dict(task=args.task, policy=args.policy,
                                                                 episodes=[{k: r.get(k) for k in keep} for r in rows]))
    for k, v in metrics.items():
        print(f"{k}: {v:.3g}")
    print("wrote", path)


if __name__ == "__main__":
    main()
