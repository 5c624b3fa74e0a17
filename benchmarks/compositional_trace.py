"""Per-tick traces of a place / stack subtask, the evidence behind docs/agent.md's "Why place and
stack fail":

- closed loop (default): the agent (oracle planner, no world model) drives; prints the tool, held cube
  and bowl positions, the gripper opening and the policy's command;
- `--teacher`: the scripted expert drives and the policy only predicts (teacher forcing); prints, around
  each release the expert makes in a place / stack subtask, its gripper label beside the policy's whole
  predicted chunk of gripper commands;
- `--teacher-yaw`: teacher forcing over the first ticks of each episode, where the expert turns the hand
  to square it with the cube's faces; prints the expert's yaw rate beside the policy's, and the hand's yaw
  relative to the cube's faces (mod 90 degrees) at the closed-loop grasp.

    python benchmarks/compositional_trace.py --task PutGreenInBowl --seed 5000 \\
        --policy benchmarks/results/compositional_train/full --cube green_cube
    python benchmarks/compositional_trace.py --teacher --task PutGreenInBowlThenPressButton --seeds 3
    python benchmarks/compositional_trace.py --teacher-yaw --task PutGreenInBowl --seeds 6
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


@dataclass
class TraceConfig:
    task: str = "PutGreenInBowl"
    seed: int = 5000
    policy: Path = Path("benchmarks/results/compositional_train/full")
    cube: str = "green_cube"  # the object whose position is printed
    every: int = 3  # print every n-th tick of the place / stack subtask
    teacher: bool = False  # the expert drives, the policy predicts
    teacher_yaw: bool = False  # the expert drives its first ticks, the policy predicts the yaw rate
    seeds: int = 1  # --teacher: episodes seed .. seed + seeds - 1
    n_points: int = 1024
    image_size: int = 128


def _places(subtask: str) -> bool:
    from vla_stack.sim.tasks import subtask_skill

    return subtask_skill(subtask) in ("place", "stack")


def teacher_forced_yaw(cfg: TraceConfig, policy, env, ticks: int = 6) -> float:
    """Returns the policy's mean |yaw rate| where the expert turns at its limit (rad per tick)."""
    import numpy as np

    from vla_stack import schema

    turning = []
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        obs, info = env.reset(seed=seed)
        policy.reset()
        cells = []
        for _ in range(ticks):
            label = np.asarray(env.unwrapped.expert_action(), np.float32)
            chunk = policy.predict_chunk(obs[schema.OBS_POINTS], obs[schema.OBS_COLORS], obs[schema.OBS_STATE],
                                         info[schema.INFO_SUBTASK])
            cells.append(f"{label[5]:+.2f}/{chunk[0, 5]:+.3f}")
            if abs(label[5]) > 0.15:
                turning.append(abs(float(chunk[0, 5])))
            obs, _, _, _, info = env.step(label)
        print(f"seed {seed}: hand {np.degrees(env.scene.hand_yaw_off_faces(cfg.cube)):+.0f} deg off the {cfg.cube}'s faces "
              f"after {ticks} expert ticks; yaw rate expert/policy per tick: {' '.join(cells)}")
    return float(np.mean(turning)) if turning else float("nan")


def teacher_forced(cfg: TraceConfig, policy, env) -> int:
    """Returns how many of the expert's place / stack releases the policy's first chunk entry matched."""
    import numpy as np

    from vla_stack import schema
    from vla_stack.sim.registration import max_episode_steps

    matched, errors, labels = 0, [], []
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        obs, info = env.reset(seed=seed)
        policy.reset()
        rows = []
        for t in range(max_episode_steps(len(env.task.subtasks))):
            sub = info[schema.INFO_SUBTASK]
            if sub == schema.DONE_TOKEN:
                break
            label = np.asarray(env.unwrapped.expert_action(), np.float32)
            chunk = policy.predict_chunk(obs[schema.OBS_POINTS], obs[schema.OBS_COLORS], obs[schema.OBS_STATE], sub)
            rows.append((t, sub, float(label[6]), chunk[:, 6], float(env.scene.tcp_pos()[2])))
            if _places(sub):  # the motion the policy would command now (first chunk entry) vs the expert's
                errors.append(np.abs(chunk[0, :3] - label[:3]))
                labels.append(np.abs(label[:3]))
            obs, _, terminated, truncated, info = env.step(label)
            if terminated or truncated:
                break
        releases = [i for i, r in enumerate(rows) if _places(r[1]) and r[2] > 0]
        n_place = sum(_places(r[1]) for r in rows)
        print(f"seed {seed}: {len(releases)} of {n_place} place/stack frames carry an open-gripper label; "
              f"success {bool(info[schema.INFO_SUCCESS])}")
        for i in releases[:1]:
            matched += bool(rows[i][3][0] > 0)
            for t, sub, lab, ch, z in rows[max(0, i - 6): i + 5]:
                print(f"  t={t:3d} {sub!r:40} tool z={z:.3f} expert grip={lab:+.0f} policy chunk grip={np.round(ch, 2)}")
    print(f"place/stack frames: mean |policy - expert| translation per tick (x, y, z) "
          f"{np.round(np.mean(errors, axis=0) * 1000, 1)} mm against mean |expert| {np.round(np.mean(labels, axis=0) * 1000, 1)} mm")
    return matched


def trace(cfg: TraceConfig) -> bool:
    import numpy as np

    from vla_stack import schema, text

    text.default_encoder()("open the drawer")  # MiniLM before any EGL context
    import torch

    torch.set_num_threads(1)
    from vla_stack.agent import Agent, AgentConfig
    from vla_stack.agent.config import sim_safety
    from vla_stack.agent.oracle import OraclePlanner
    from vla_stack.agent.rollout import make_env, run_episode
    from vla_stack.policy import ActionExpert
    from vla_stack.sim.registration import max_episode_steps

    policy = ActionExpert.load(cfg.policy)
    print(f"policy {cfg.policy}: execution {policy.executor.mode}, {policy.executor.exec_steps} step(s) per chunk")
    env = make_env(cfg.task, "panda", cfg.n_points, cfg.image_size, 0.0)
    if cfg.teacher or cfg.teacher_yaw:
        try:
            if cfg.teacher_yaw:
                rate = teacher_forced_yaw(cfg, policy, env)
                print(f"RESULT {cfg.task}: where the expert turns at 0.20 rad per tick, the policy's mean |yaw rate| is {rate:.3f}")
                return rate > 0.1
            matched = teacher_forced(cfg, policy, env)
            print(f"RESULT {cfg.task}: the policy's first chunk entry opened at {matched} of {cfg.seeds} expert releases")
            return matched == cfg.seeds
        finally:
            env.close()
    last = {}
    step = policy.step

    def recording_step(*a, **k):
        last["action"] = step(*a, **k)
        return last["action"]

    policy.step = recording_step
    agent = Agent(OraclePlanner(env), None, policy, AgentConfig(mode="no_world_model", safety=sim_safety(0.0)))

    def on_tick(obs, ai, info):
        sub = info[schema.INFO_SUBTASK]
        if not _places(sub) or ai.tick % cfg.every:
            return
        s, a = env.scene, last.get("action")
        cmd = "-" if a is None else np.round(np.asarray(a)[[0, 1, 2, 6]], 3)
        print(f"t={ai.tick:3d} tool={np.round(s.tcp_pos(), 3)} {cfg.cube}={np.round(s.body_pos(cfg.cube), 3)} "
              f"bowl={np.round(s.body_pos('bowl'), 3)} hand_vs_faces={np.degrees(s.hand_yaw_off_faces(cfg.cube)):+.0f}deg opening={float(obs[schema.OBS_STATE][schema.STATE_GRIPPER][0]):.3f} "
              f"command(dx,dy,dz,grip)={cmd} subtask={sub!r}", flush=True)

    t0 = time.time()
    try:
        r = run_episode(agent, env, env.task.instruction, seed=cfg.seed, on_tick=on_tick, realtime=False,
                        max_steps=max_episode_steps(len(env.task.subtasks)))
    finally:
        agent.close()
        env.close()
    print(f"RESULT {cfg.task} seed {cfg.seed}: success {r.success}, {r.subtasks_completed}/{r.n_subtasks} subtasks, "
          f"{r.steps} steps, {time.time() - t0:.0f} s")
    return r.success


if __name__ == "__main__":
    import tyro

    trace(tyro.cli(TraceConfig))
