"""`vla policy demos`: scripted-expert demonstrations for policy training, many tasks in
parallel processes, optionally with DART-style noise injection.

Why noise: a behaviour-cloned policy drifts a little off the expert's states and was never
shown how to come back (closed loop it stopped 2-3 cm beside small targets). With
`--noise-pos-m > 0` the *executed* action is the expert's plus temporally correlated noise
while the *recorded label* stays the expert's clean action for the state actually reached,
so the data holds corrections from slightly-off states (Laskey et al., DART, 2017).

Writes one dataset per task under `out/<task>/` (LeRobot-v3 layout, no camera videos: the
policy reads points, colours and state); `vla train policy --dataset out` reads the folder
of datasets as one (see `multi_dataset.py`). Episode k of a task uses env seed `seed + k`
(discarded failures included), so evaluation seeds (`vla eval --seed`, default 1000) stay
apart from the training demos' seeds as long as `seed + attempts < 1000`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_stack import schema

SINGLE_SKILL_TRAIN_TASKS = ("PickRedCube", "PickBlueCube", "OpenDrawer", "CloseDrawer", "PressButton",
                            "PushBlueTowardBowl", "PushRedTowardButton")
POLICY_OBS_KEYS = (schema.OBS_POINTS, schema.OBS_COLORS, schema.OBS_STATE)


@dataclass
class DemosConfig:
    out: Path = Path("data/policy_demos")  # one dataset per task: out/<task>/
    tasks: tuple[str, ...] = SINGLE_SKILL_TRAIN_TASKS
    episodes: int = 100  # kept (successful) episodes per task
    seed: int = 0  # episode attempt k of a task resets the env with seed + k
    robot: str = "panda"
    n_points: int = 1024
    image_size: int = 128
    max_steps: int = 0  # per episode (0: the env's own time limit)
    noise_pos_m: float = 0.0  # stationary std of the executed translation noise per tick (0: clean demos)
    noise_rot_rad: float = 0.0  # same for the rotation
    noise_corr: float = 0.8  # AR(1) coefficient of the noise from tick to tick (drifts, not jitter)
    noisy_fraction: float = 0.5  # share of episodes recorded with noise (the rest clean)
    random_start_fraction: float = 0.0  # share of episodes that start from a random hover pose (sim/start_pose.py)
    max_attempts_factor: float = 3.0  # give up on a task after episodes * this many attempts
    workers: int = 0  # processes (0: one per task, at most the CPU count)
    overwrite: bool = False


class CorrelatedNoise:
    """AR(1) noise with the given stationary std per component: n_t = c n_{t-1} + sqrt(1-c^2) s e_t."""

    def __init__(self, std: np.ndarray, corr: float, rng: np.random.Generator):
        self.std, self.corr, self.rng = np.asarray(std, np.float64), float(corr), rng
        self.value = self.rng.normal(0.0, 1.0, self.std.shape) * self.std  # start in the stationary state

    def __call__(self) -> np.ndarray:
        e = self.rng.normal(0.0, 1.0, self.std.shape) * self.std
        self.value = self.corr * self.value + np.sqrt(1.0 - self.corr ** 2) * e
        return self.value


def executed_action(label: np.ndarray, noise: CorrelatedNoise | None) -> np.ndarray:
    """The clean expert label plus noise on translation and rotation (never on the gripper)."""
    if noise is None:
        return label
    a = label.astype(np.float64).copy()
    a[:6] += noise()
    return schema.validate_action(a.astype(np.float32))


def record_episode(env, writer, seed: int, max_steps: int, noise: CorrelatedNoise | None,
                   start_rng: np.random.Generator | None = None) -> tuple[int, bool]:
    """One episode into the writer's buffer: labels are the expert's actions for the states reached.
    With `start_rng`, recording begins after an unrecorded move to a random hover pose."""
    from vla_stack.datasets.record import frame_from_step
    from vla_stack.sim.start_pose import reset_maybe_away

    obs, info = reset_maybe_away(env, seed, start_rng)
    writer.start_episode(info[schema.INFO_INSTRUCTION])
    success, steps = False, 0
    for steps in range(1, max_steps + 1):
        label = schema.validate_action(np.asarray(env.unwrapped.expert_action(), np.float32))
        next_obs, _, terminated, truncated, info_after = env.step(executed_action(label, noise))
        writer.add_frame(frame_from_step(obs, label, info, info_after, writer.spec))
        obs, info = next_obs, info_after
        success = bool(info_after[schema.INFO_SUCCESS])
        if terminated or truncated:
            break
    return steps, success


def check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise schema.SchemaError(f"{name}: must be in [0, 1], got {value}")


def record_task(task: str, cfg: DemosConfig) -> dict:
    """Record `cfg.episodes` successful episodes of one task into cfg.out/task; returns a summary."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import vla_stack.sim as sim
    from vla_stack.datasets.layout import DatasetSpec
    from vla_stack.datasets.writer import DatasetWriter

    env = sim.make(task, robot=cfg.robot, n_points=cfg.n_points, image_size=cfg.image_size,
                   obs_keys=POLICY_OBS_KEYS)
    limit = cfg.max_steps or env.spec.max_episode_steps or 400
    spec = DatasetSpec(fps=20, robot_type=cfg.robot, n_points=cfg.n_points, cameras={})
    writer = DatasetWriter.create(Path(cfg.out) / task, spec, overwrite=cfg.overwrite)
    std = np.array([cfg.noise_pos_m] * 3 + [cfg.noise_rot_rad] * 3)
    rng = np.random.default_rng([cfg.seed, sum(map(ord, task))])
    kept = attempts = noisy_kept = away_kept = 0
    lengths, t0 = [], time.perf_counter()
    try:
        while kept < cfg.episodes:
            if attempts >= cfg.episodes * cfg.max_attempts_factor:
                raise RuntimeError(f"{task}: only {kept} of {cfg.episodes} episodes succeeded in {attempts} attempts")
            noisy = std.any() and rng.random() < cfg.noisy_fraction
            noise = CorrelatedNoise(std, cfg.noise_corr, rng) if noisy else None
            away = cfg.random_start_fraction > 0 and rng.random() < cfg.random_start_fraction
            steps, success = record_episode(env, writer, cfg.seed + attempts, limit, noise, rng if away else None)
            attempts += 1
            if not success:
                writer.discard_episode()
                continue
            writer.save_episode(success=True)
            kept += 1
            noisy_kept += bool(noisy)
            away_kept += bool(away)
            lengths.append(steps)
    finally:
        env.close()
    return {"task": task, "episodes": kept, "noisy_episodes": noisy_kept, "random_start_episodes": away_kept,
            "attempts": attempts, "frames": int(sum(lengths)), "mean_steps": float(np.mean(lengths)) if lengths else 0.0,
            "seeds": [cfg.seed, cfg.seed + attempts - 1], "wall_s": time.perf_counter() - t0}


def record_all(cfg: DemosConfig) -> list[dict]:
    if not cfg.tasks:
        raise schema.SchemaError("demos: no tasks given")
    check_fraction("demos: random_start_fraction", cfg.random_start_fraction)
    import vla_stack.sim as sim

    unknown = [t for t in cfg.tasks if t not in sim.task_names()]
    if unknown:
        raise schema.SchemaError(f"demos: unknown task(s) {unknown}; known: {sim.task_names()}")
    return per_task(record_task, cfg)


def per_task(fn, cfg) -> list:
    """`fn(task, cfg)` for each of `cfg.tasks`, one process each (up to `cfg.workers`, 0 = cores)."""
    import multiprocessing as mp

    workers = cfg.workers or min(len(cfg.tasks), os.cpu_count() or 1)
    if workers == 1:
        return [fn(t, cfg) for t in cfg.tasks]
    with mp.get_context("spawn").Pool(workers) as pool:  # EGL and CUDA do not survive a fork
        return pool.starmap(fn, [(t, cfg) for t in cfg.tasks])


def run(cfg: DemosConfig) -> int:
    rows = record_all(cfg)
    for r in rows:
        print(f"{r['task']}: {r['episodes']} episodes ({r['noisy_episodes']} noisy, {r['random_start_episodes']} from a "
              f"random start), {r['frames']} frames, {r['attempts']} attempts, seeds {r['seeds'][0]}-{r['seeds'][1]}, "
              f"{r['wall_s']:.0f} s", file=sys.stderr)
    write_summary(rows, Path(cfg.out) / "demos_summary.json")
    return 0


def write_summary(rows: list[dict], path: Path) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2) + "\n")
