"""`vla eval planner`: plan accuracy and closed-loop plan success per split.

Closed loop: the scripted expert executes whatever subtask the *planner* issues; the
planner's done head decides when it is complete and asks for the next one, until it says
DONE. An episode succeeds when the planner says DONE and the simulator's privileged task
predicate agrees, within the step budget. At every planner call the answer is also
compared with the simulator's own current subtask (next-subtask accuracy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from vla_stack import bench, schema

from . import suite
from .learned import LearnedPlanner
from .plan_search import plan_instruction
from .rollouts import EnvConfig, make_env


@dataclass
class EvalPlannerConfig:
    checkpoint: str = "runs/planner"
    splits: tuple[str, ...] = suite.SPLITS
    seeds: int = 2  # closed-loop episodes per (instruction) item
    max_steps: int = 500
    replan_every: int = 10  # steps between re-checks of the plan against the scene
    threads: int = 1
    workers: int = 1  # episode processes
    name: str = "planner_eval"  # results file: benchmarks/results/<name>.json
    env: EnvConfig = field(default_factory=EnvConfig)


def run_episode(planner: LearnedPlanner, task: str, instruction: str, seed: int, cfg: EvalPlannerConfig,
                env=None, perturb=None) -> dict:
    """One closed-loop episode. `perturb(env, step)` may change the scene mid-episode (and
    return the new observation). Besides asking at subtask completion, the loop re-asks every
    `cfg.replan_every` steps, so work undone mid-subtask is noticed without waiting."""
    from .suite import sim_subtask

    own_env = env is None
    env = env or make_env(task, cfg.env)
    obs, info = env.reset(seed=seed)
    u = env.unwrapped
    planner.reset(instruction)
    history: list[str] = []
    sub = planner.next_subtask(obs, history)
    issued, calls, agree = [sub], 1, int(sub == u.current_subtask)
    steps = 0
    while sub != schema.DONE_TOKEN and steps < cfg.max_steps:
        action = u.expert.act(sim_subtask(sub), len(issued), u.steps)
        obs, _, _, _, info = env.step(action)
        steps += 1
        if perturb is not None:
            obs = perturb(env, steps) or obs
        done = planner.subtask_done(obs, sub)
        if done or steps % cfg.replan_every == 0:
            if done:
                history.append(sub)
            new = planner.next_subtask(obs, history)
            if done:  # a decision point of the interface: score it against the simulator
                calls += 1
                agree += int(new == u.current_subtask)
            if new != sub:
                issued.append(new)
            sub = new
    if own_env:
        env.close()
    return {"success": sub == schema.DONE_TOKEN and bool(u.progress.done), "said_done": sub == schema.DONE_TOKEN,
            "env_success": bool(u.progress.done), "steps": steps, "issued": issued,
            "next_subtask_correct": agree, "next_subtask_calls": calls}


_WORKER: dict = {}


def _episode_job(job: tuple) -> dict:
    """One (split, task, instruction, seed) episode in a worker process (planner loaded once)."""
    import torch

    split, task, instruction, seed, cfg = job
    if "planner" not in _WORKER:
        torch.set_num_threads(cfg.threads)
        _WORKER["planner"] = LearnedPlanner.load(cfg.checkpoint)
    r = run_episode(_WORKER["planner"], task, instruction, seed, cfg)
    return r | {"split": split, "task": task, "instruction": instruction, "seed": seed}


def main(cfg: EvalPlannerConfig) -> int:
    import multiprocessing as mp

    import torch

    torch.set_num_threads(cfg.threads)
    planner = LearnedPlanner.load(cfg.checkpoint)
    jobs, plan_ok = [], {}
    for split in cfg.splits:
        examples = suite.examples(split)
        plan_ok[split] = sum(tuple(plan_instruction(planner.decoder, ex.instruction, planner.catalog)) == ex.plan
                             for ex in examples) / len(examples)
        jobs += [(split, ex.task, ex.instruction, 5000 + s, cfg) for ex in examples for s in range(cfg.seeds)]
    t0 = time.time()
    results = []

    def log(r):
        results.append(r)
        print(f"[{len(results)}/{len(jobs)}] {r['split']} {r['task']} seed {r['seed']}: "
              f"{'success' if r['success'] else 'FAIL'} in {r['steps']} steps ({r['instruction']!r})", flush=True)

    if cfg.workers > 1:
        with mp.get_context("spawn").Pool(cfg.workers) as pool:
            for r in pool.imap_unordered(_episode_job, jobs):
                log(r)
    else:
        for j in jobs:
            log(_episode_job(j))
    metrics, details, rows = {}, {}, []
    for split in cfg.splits:
        eps = sorted((r for r in results if r["split"] == split), key=lambda r: (r["task"], r["instruction"], r["seed"]))
        n = len(eps)
        succ = sum(r["success"] for r in eps) / n
        nxt = sum(r["next_subtask_correct"] for r in eps) / max(1, sum(r["next_subtask_calls"] for r in eps))
        metrics |= {f"{split}_whole_plan_accuracy": plan_ok[split], f"{split}_next_subtask_accuracy": nxt,
                    f"{split}_closed_loop_success": succ,
                    f"{split}_env_success": sum(r["env_success"] for r in eps) / n, f"{split}_episodes": n}
        details[split] = eps
        rows.append({"split": split, "instructions": len({r["instruction"] for r in eps}), "episodes": n,
                     "whole_plan_acc": plan_ok[split], "next_subtask_acc": nxt, "closed_loop_success": succ})
    metrics["eval_wall_s"] = round(time.time() - t0, 1)
    bench.print_table(rows, "planner evaluation (scripted expert executes the planner's subtasks)")
    path = bench.write_results(cfg.name, metrics, details={"episodes": details, "config": repr(cfg)})
    print(f"results written to {path}")
    return 0
