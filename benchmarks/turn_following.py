"""Does the action expert turn the hand when the scripted expert does? Teacher forcing on train tasks.

Why: read tick by tick, the fine-tunes' failing pushes, stacks and drawer openings all sit with the hand
turned the wrong way while every label asks for a full-rate turn (0.2 rad per tick) and the policy commands
about 0.005 (benchmarks/results/compositional_s13/README.md). Here the expert drives (noise-free), so every
state is one the policy was trained on, and each tick where the expert turns at 0.15 rad or more counts as
followed when the policy's first chunk entry turns the same way at a quarter of the expert's rate or more
(yaw_turn_ablation.py's rule). Per skill, for each checkpoint, side by side on the same states.

    python benchmarks/turn_following.py --policies shipped/policy benchmarks/results/compositional_s14/checkpoint
    python benchmarks/turn_following.py --drive policy ...   # the policy drives: its own states, labelled

--drive policy asks the same of the states the policy reaches itself (true subtask given), where the failures
were read.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from vla_stack import bench, schema

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("PickRedCube", "OpenDrawer", "PushBlueTowardBowl", "PushRedTowardButton", "StackRedOnGreen", "PutRedInBowl")
FULL_TURN_RAD = 0.15


def follow_census(policy, task: str, seeds: range, env_kwargs: dict, drive: str = "expert") -> dict[str, list[tuple[float, float]]]:
    """skill -> [(expert yaw, policy yaw)] over the expert's full-rate turning ticks. drive "expert": the
    expert's actions are executed (teacher forcing); "policy": the policy's own (its chunk executor), the
    expert only labels the states the policy reaches, given the true subtask."""
    from vla_stack import sim
    from vla_stack.sim.registration import max_episode_steps
    from vla_stack.sim.tasks import subtask_skill

    env = sim.make(task, **env_kwargs)
    out = defaultdict(list)
    try:
        for seed in seeds:
            obs, info = env.reset(seed=seed)
            policy.reset()
            for _ in range(max_episode_steps(len(env.unwrapped.task.subtasks))):
                sub = str(info[schema.INFO_SUBTASK])
                if sub == schema.DONE_TOKEN:
                    break
                label = np.asarray(env.unwrapped.expert_action(), np.float32)
                chunk = policy.predict_chunk(obs[schema.OBS_POINTS], obs[schema.OBS_COLORS], obs[schema.OBS_STATE], sub)
                if abs(label[5]) >= FULL_TURN_RAD:
                    out[subtask_skill(sub)].append((float(label[5]), float(chunk[0, 5])))
                act = label if drive == "expert" else schema.validate_action(policy.executor(chunk))
                obs, _, terminated, truncated, info = env.step(act)
                if terminated or truncated:
                    break
    finally:
        env.close()
    return out


def summarize(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """(share followed, median |policy yaw| in rad per tick)."""
    e, p = np.array(pairs).T
    return float(np.mean(p * np.sign(e) >= 0.25 * np.abs(e))), float(np.median(np.abs(p)))


def main() -> None:
    from vla_stack import text
    from vla_stack.policy import ActionExpert

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", nargs="+", default=[str(ROOT / "shipped" / "policy")])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--n-points", type=int, default=1024)
    ap.add_argument("--drive", choices=("expert", "policy"), default="expert")
    ap.add_argument("--name", default="")
    args = ap.parse_args()
    text.default_encoder()("open the drawer")   # load once, outside the timed loops
    env_kwargs = dict(n_points=args.n_points, image_size=128)
    metrics, rows, per_policy = {}, [], {}
    prefix = "" if args.drive == "expert" else "closed_loop_"
    for path in args.policies:
        policy = ActionExpert.load(path)
        census = defaultdict(list)
        for task in args.tasks:
            seeds = range(args.seed, args.seed + args.seeds)
            for skill, pairs in follow_census(policy, task, seeds, env_kwargs, args.drive).items():
                census[skill] += pairs
        label = Path(path).parent.name if Path(path).name == "checkpoint" else Path(path).name
        per_policy[label] = path
        for skill, pairs in sorted(census.items()):
            share, median = summarize(pairs)
            metrics[f"{prefix}turn_followed_rate_{skill}_{label}"] = share
            metrics[f"{prefix}turn_policy_median_abs_yaw_rad_{skill}_{label}"] = median
            rows.append(dict(policy=label, skill=skill, turning_ticks=len(pairs), followed=f"{share:.2f}",
                             median_abs_policy_yaw=f"{median:.3f}"))
    details = dict(policies=per_policy, tasks=args.tasks, seeds=list(range(args.seed, args.seed + args.seeds)),
                   full_turn_rad=FULL_TURN_RAD, drive=args.drive, table=rows)
    path = bench.write_results(args.name or ("turn_following" if args.drive == "expert" else "turn_following_closed_loop"),
                               metrics, details=details)
    bench.print_table(rows, title=f"turns ({args.drive} drives): expert at >= 0.15 rad/tick, policy's first chunk entry")
    print("wrote", path)


if __name__ == "__main__":
    main()
