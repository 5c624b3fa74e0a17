"""Rollouts in the task suite: training frames for grounding, and closed-loop execution.

Training frames come from the scripted expert on `train` tasks; each frame stores the
observation (points, colours, proprio) and, as labels only, every fact of the grammar read
from simulator state plus the true entity positions. Perturbations (drawer pushed back,
drawer opened at reset) are mixed in so the grounding sees undone work too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from vla_stack import schema

from . import suite
from .grounding import Fact

OBS_KEYS = (schema.OBS_POINTS, schema.OBS_COLORS, schema.OBS_STATE)


def sim_name(display: str) -> str:
    return display.replace(" ", "_")


CUBES = ("red_cube", "green_cube", "blue_cube")


def fact_truth(checker, f: Fact) -> bool:
    """A planner fact read from the simulator's predicates (labels only)."""
    if f.relation == "held" and not f.a:
        return checker.holding() != "nothing"
    if f.relation == "lifted" and not f.a:
        return any(checker.holds(c, "lifted") for c in CUBES)
    return checker.holds(*fact_key_value(f))


def fact_key_value(f: Fact) -> tuple[str, str]:
    """Inverse of suite.fact_of: the simulator's (key, value) for a fact."""
    a, b = sim_name(f.a), sim_name(f.b)
    return {
        "hand_empty": ("holding", "nothing"),
        "held": ("holding", a),
        "lifted": (a, "lifted"),
        "in": (a, f"in {b}"),
        "on": (a, f"on {b}"),
        "pushed_toward": (a, f"pushed toward {b}"),
        "open": ("drawer", "open"),
        "closed": ("drawer", "closed"),
        "pressed": ("button", "pressed"),
    }[f.relation]


@dataclass
class EnvConfig:
    robot: str = "panda"
    image_size: int = 128
    n_points: int = 1024
    max_steps: int = 400  # per subtask budget is generous: the expert needs ~60-120 steps


def make_env(task: str, cfg: EnvConfig, **kw):
    os.environ.setdefault("MUJOCO_GL", "egl")
    from vla_stack import sim

    return sim.make(task, robot=cfg.robot, image_size=cfg.image_size, n_points=cfg.n_points, obs_keys=OBS_KEYS, **kw)


def label_frame(env, facts: list[Fact]) -> tuple[np.ndarray, np.ndarray]:
    """(fact truth values (F,), entity positions (E, 3)) from privileged simulator state."""
    u = env.unwrapped
    truth = np.array([fact_truth(u.facts, f) for f in facts], np.float32)
    pos = np.stack([u.scene.body_pos(sim_name(e)) for e in suite.GROUNDED_ENTITIES]).astype(np.float32)
    return truth, pos


def collect_frames(tasks: list[str], seeds: list[int], cfg: EnvConfig, every: int = 4,
                   perturb_prob: float = 0.3, settle_steps: int = 12, workers: int = 1, log=print) -> dict[str, np.ndarray]:
    """Expert rollouts -> arrays: points, colors, labels (per-point segment), state, truth,
    positions, start (index of the episode's first frame). One task per worker process."""
    jobs = [(task, seeds, cfg, every, perturb_prob, settle_steps) for task in tasks]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_collect_task_job, jobs)
    else:
        parts = [_collect_task(*j, log=log) for j in jobs]
    out, offset = {}, 0
    for part in parts:
        part["start"] = part["start"] + offset
        offset += len(part["start"])
        for k, v in part.items():
            out.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def _collect_task_job(job: tuple) -> dict[str, np.ndarray]:
    return _collect_task(*job)


def _collect_task(task: str, seeds: list[int], cfg: EnvConfig, every: int, perturb_prob: float, settle_steps: int,
                  log=print) -> dict[str, np.ndarray]:
    from .point_labels import point_labels

    facts = suite.all_facts()
    out = {k: [] for k in ("points", "colors", "labels", "state", "truth", "positions", "start")}
    env = make_env(task, cfg)
    u = env.unwrapped
    for seed in seeds:
        rng = np.random.default_rng(seed)
        obs, info = env.reset(seed=seed, options={"drawer_open_at_reset": bool(rng.random() < 0.25)})
        start = len(out["points"])
        perturb_at = int(rng.integers(20, 150)) if rng.random() < perturb_prob else -1
        settle = 0
        for t in range(cfg.max_steps):
            if t % every == 0 or info[schema.INFO_SUBTASK_DONE] or settle:
                truth, pos = label_frame(env, facts)
                labels = point_labels(u.scene.model, u.scene.data, obs[schema.OBS_POINTS])
                for k, v in ((("points", obs[schema.OBS_POINTS]), ("colors", obs[schema.OBS_COLORS]),
                              ("labels", labels), ("state", obs[schema.OBS_STATE]), ("truth", truth),
                              ("positions", pos), ("start", start))):
                    out[k].append(v)
            if info[schema.INFO_SUCCESS]:
                # keep recording a little after success (the expert holds still): the final
                # facts ("red cube on green cube") otherwise get one positive frame per episode
                settle += 1
                if settle > settle_steps:
                    break
            if t == perturb_at and u.scene.drawer_opening() > 0.05:
                u.set_drawer_opening(0.0)
            obs, _, _, _, info = env.step(u.expert_action())
        log(f"  {task} seed {seed}: {t + 1} steps, success={info[schema.INFO_SUCCESS]}, frames={len(out['points'])}")
    env.close()
    return {k: np.stack(v) if k != "start" else np.array(v, np.int64) for k, v in out.items()}
