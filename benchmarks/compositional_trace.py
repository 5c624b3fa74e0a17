"""Per-tick trace of one episode's place / stack subtask in the agent loop (oracle planner, no world
model): tool, held cube and bowl positions, gripper opening and the policy's command. It is how
docs/agent.md's "Why place and stack fail" was found; the printed log is the evidence.

    python benchmarks/compositional_trace.py --task PutGreenInBowl --seed 5000 \\
        --policy benchmarks/results/compositional_train/full --cube green_cube
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
    n_points: int = 1024
    image_size: int = 128


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
    last = {}
    step = policy.step

    def recording_step(*a, **k):
        last["action"] = step(*a, **k)
        return last["action"]

    policy.step = recording_step
    agent = Agent(OraclePlanner(env), None, policy, AgentConfig(mode="no_world_model", safety=sim_safety(0.0)))

    def on_tick(obs, ai, info):
        sub = info[schema.INFO_SUBTASK]
        if not (sub.startswith("put") or sub.startswith("stack")) or ai.tick % cfg.every:
            return
        s, a = env.scene, last.get("action")
        cmd = "-" if a is None else np.round(np.asarray(a)[[0, 1, 2, 6]], 3)
        print(f"t={ai.tick:3d} tool={np.round(s.tcp_pos(), 3)} {cfg.cube}={np.round(s.body_pos(cfg.cube), 3)} "
              f"bowl={np.round(s.body_pos('bowl'), 3)} opening={float(obs[schema.OBS_STATE][schema.STATE_GRIPPER][0]):.3f} "
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
