"""A/B on the CPU: does ending a place only after the hand has backed off teach a policy to let go?

Two arms, identical but for where the place subtask ends in the demonstrations:
- `one_frame_release`: the old sim semantics (done the tick the cube is let go: one open-gripper frame
  per demonstration under the place text), reproduced by switching `Subtask.released_object` off;
- `backed_off_release`: the current semantics (done once the hand is 5 cm clear).

Each arm records the same demo seeds of one pick-and-place task, trains the same small PointNet action
expert for the same number of steps from the same seed, and is then measured on unseen seeds:
- release probe (teacher forcing: the scripted expert drives, the policy only predicts), while the cube is
  held under the place text: the share of the expert's releases where the policy also commands open within
  6 ticks, and of the carrying ticks before them where it opens too early (measured, this probe did not
  separate the arms: once the expert starts opening, the fingers' opening is in the policy's state);
- closed loop (the policy drives, given the true subtask): the share of episodes where the cube ends up
  let go inside the bowl (same criterion for both arms: the cube in the bowl and not held).

    python benchmarks/release_ablation.py            # ~30 min on 2 CPU cores
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from compositional_trace import _places
from small_policy_ab import ExpertABConfig, record_and_train, write_ab_results

os.environ.setdefault("MUJOCO_GL", "egl")

ARMS = ("one_frame_release", "backed_off_release")
RELEASE_WINDOW = 6  # ticks: the expert holds the gripper open this long before it backs off


@dataclass
class ReleaseAblationConfig(ExpertABConfig):
    task: str = "PutRedInBowl"
    cube: str = "red_cube"
    work_dir: Path = Path("runs/release_ablation")
    name: str = "release_ablation"


@contextlib.contextmanager
def release_semantics(arm: str):
    """`one_frame_release` switches the back-off condition off (the sim before session 4)."""
    from vla_stack.sim.skills import Subtask

    original = Subtask.released_object
    if arm == "one_frame_release":
        Subtask.released_object = lambda self: None
    try:
        yield
    finally:
        Subtask.released_object = original


def open_frames_per_episode(dataset: Path) -> float:
    """Frames whose label opens the gripper while the annotated subtask is a place / stack."""
    import pyarrow.parquet as pq

    from vla_stack.datasets import layout
    from vla_stack.datasets.arrow_io import read_strings

    texts = read_strings(dataset / layout.SUBTASKS_PATH, "subtask", layout.SUBTASK_INDEX)
    count, episodes = 0, set()
    for f in sorted((dataset / "data").rglob("*.parquet")):
        t = pq.read_table(f).to_pydict()
        for a, s, e in zip(t[layout.ACTION], t[layout.SUBTASK_INDEX], t[layout.EPISODE_INDEX]):
            count += _places(texts[s]) and a[6] > 0
            episodes.add(e)
    return count / max(1, len(episodes))


def release_probe(policy, cfg: ReleaseAblationConfig) -> tuple[float, float]:
    """Teacher forcing, under the place text: the share of the expert's releases where the policy also
    commands open within `RELEASE_WINDOW` ticks of the expert's first open tick, and the share of the
    carrying ticks before it where the policy opens too early."""
    from vla_stack import schema
    from vla_stack.agent.rollout import make_env
    from vla_stack.sim.registration import max_episode_steps

    env = make_env(cfg.task, "panda", cfg.recipe.n_points, cfg.recipe.image_size)
    caught = releases = early = carrying = 0
    try:
        for seed in range(1000, 1000 + cfg.probe_seeds):
            obs, info = env.reset(seed=seed)
            policy.reset()
            released_at, opened = None, False
            for t in range(max_episode_steps(len(env.task.subtasks))):
                sub = info[schema.INFO_SUBTASK]
                if sub == schema.DONE_TOKEN:
                    break
                label = np.asarray(env.expert_action(), np.float32)
                chunk = policy.predict_chunk(obs[schema.OBS_POINTS], obs[schema.OBS_COLORS], obs[schema.OBS_STATE], sub)
                policy_opens = bool(chunk[0, 6] > 0)
                if _places(sub):
                    if released_at is None and label[6] > 0:
                        released_at = t  # the expert lets go now
                    if released_at is None:
                        early, carrying = early + policy_opens, carrying + 1
                    elif t < released_at + RELEASE_WINDOW:
                        opened = opened or policy_opens
                obs, _, terminated, truncated, info = env.step(label)
                if terminated or truncated:
                    break
            if released_at is not None:
                caught, releases = caught + opened, releases + 1
    finally:
        env.close()
    return caught / max(1, releases), early / max(1, carrying)


def closed_loop(policy, cfg: ReleaseAblationConfig) -> float:
    """The policy drives with the true subtask; success: the cube let go inside the bowl."""
    from vla_stack import schema
    from vla_stack.agent.rollout import make_env
    from vla_stack.sim.registration import max_episode_steps

    env = make_env(cfg.task, "panda", cfg.recipe.n_points, cfg.recipe.image_size)
    done = 0
    try:
        for seed in range(2000, 2000 + cfg.eval_episodes):
            obs, info = env.reset(seed=seed)
            policy.reset()
            for _ in range(max_episode_steps(len(env.task.subtasks))):
                sub = info[schema.INFO_SUBTASK]
                if sub == schema.DONE_TOKEN:
                    break
                action = policy.step(obs[schema.OBS_POINTS], obs[schema.OBS_COLORS], obs[schema.OBS_STATE], sub)
                obs, _, terminated, truncated, info = env.step(action)
                if env.facts.holds(cfg.cube, "in bowl") and env.facts.holding() == "nothing":
                    done += 1
                    break
                if terminated or truncated:
                    break
    finally:
        env.close()
    return done / cfg.eval_episodes


def run_arm(arm: str, cfg: ReleaseAblationConfig) -> dict:
    from vla_stack.policy import ActionExpert

    out = Path(cfg.work_dir) / arm
    t0 = time.monotonic()
    with release_semantics(arm):  # in this process: the recorder runs here, not in workers
        final = record_and_train(cfg.task, out, cfg.recipe, cfg.reuse)
    policy = ActionExpert.load(final, execution="ensemble")
    recall, early = release_probe(policy, cfg)
    return {"open_frames_per_demo": open_frames_per_episode(out / "demos" / cfg.task),
            "release_probe": recall, "early_open_rate": early,
            "closed_loop_released_in_bowl": closed_loop(policy, cfg), "wall_s": time.monotonic() - t0}


def main(cfg: ReleaseAblationConfig) -> Path:
    from vla_stack import text

    text.default_encoder()("open the drawer")  # MiniLM before any EGL context
    rows = {arm: run_arm(arm, cfg) for arm in ARMS}
    metrics = {}
    for arm, r in rows.items():
        metrics[f"open_frames_per_demo_{arm}"] = round(r["open_frames_per_demo"], 2)
        metrics[f"release_probe_open_rate_{arm}"] = round(r["release_probe"], 3)
        metrics[f"early_open_rate_while_carrying_{arm}"] = round(r["early_open_rate"], 3)
        metrics[f"closed_loop_released_in_bowl_rate_{arm}"] = round(r["closed_loop_released_in_bowl"], 3)
        metrics[f"wall_s_{arm}"] = round(r["wall_s"], 1)
    print(f"{'arm':22} {'open frames/demo':>17} {'opens at release':>17} {'opens early':>12} {'closed loop':>12}")
    for arm, r in rows.items():
        print(f"{arm:22} {r['open_frames_per_demo']:17.2f} {r['release_probe']:17.3f} {r['early_open_rate']:12.3f} "
              f"{r['closed_loop_released_in_bowl']:12.3f}")
    path = write_ab_results(cfg, metrics, rows)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    import tyro

    main(tyro.cli(ReleaseAblationConfig))
