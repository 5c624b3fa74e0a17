"""`vla policy dagger`: DAgger data: roll a trained policy out and label every state it reaches
with the scripted expert's action.

Why: behaviour cloning only ever saw the expert's states. Closed loop, the policy drifts
(e.g. descends early) into states the expert never visits, where it confuses cues (low
height meant "above the cube" in the demos). The expert can label any state
(`env.expert_action()`), so the policy's own states get the corrective labels (Ross et al.,
DAgger, 2011). Each tick the expert's action is executed with probability `beta`, else the
policy's; the label is always the expert's. One dataset per task under `out/<task>/`;
train on it together with the demos by putting both into one folder of datasets.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_stack import schema

from .demos import POLICY_OBS_KEYS, SINGLE_SKILL_TRAIN_TASKS, check_fraction, per_task, write_summary


@dataclass
class DaggerConfig:
    checkpoint: Path = Path("runs/policy/final")
    out: Path = Path("data/policy_dagger")  # one dataset per task: out/<task>/
    tasks: tuple[str, ...] = SINGLE_SKILL_TRAIN_TASKS
    episodes: int = 40  # per task, all kept (failures too: their states are the point)
    n_envs: int = 10  # envs per task stepped in lockstep, one batched policy call per tick
    beta: float = 0.3  # per tick: probability of executing the expert's action instead of the policy's
    random_start_fraction: float = 0.0  # share of episodes that start from a random hover pose (sim/start_pose.py)
    seed: int = 300  # episode k resets with seed + k (demos use 0.., `vla eval` 1000..)
    robot: str = "panda"
    n_points: int = 1024
    image_size: int = 128
    max_steps: int = 150
    execution: str = "receding"
    exec_steps: int = 1
    device: str = "auto"
    workers: int = 0  # processes (0: one per task, at most the CPU count)
    overwrite: bool = False


def collect_task(task: str, cfg: DaggerConfig) -> dict:
    os.environ.setdefault("MUJOCO_GL", "egl")
    import torch

    import vla_stack.sim as sim
    from vla_stack import text
    from vla_stack.datasets.layout import DatasetSpec
    from vla_stack.datasets.record import frame_from_step
    from vla_stack.datasets.writer import DatasetWriter
    from vla_stack.sim.start_pose import reset_maybe_away

    from .checkpoint import load_checkpoint
    from .chunking import ChunkExecutor
    from .evaluate import _reset_rows
    from .object_channels import codes_for

    torch.set_num_threads(1)
    device = torch.device(cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    model, _ = load_checkpoint(cfg.checkpoint, map_location=device)
    model.eval()
    if model.cfg.backbone != "mamba":
        raise schema.SchemaError("dagger: needs a recurrent (mamba) backbone for per-env state resets")
    encoder = text.default_encoder()
    n = max(1, min(cfg.n_envs, cfg.episodes))
    envs = [sim.make(task, robot=cfg.robot, n_points=cfg.n_points, image_size=cfg.image_size,
                     obs_keys=POLICY_OBS_KEYS) for _ in range(n)]
    spec = DatasetSpec(fps=20, robot_type=cfg.robot, n_points=cfg.n_points, cameras={})
    writer = DatasetWriter.create(Path(cfg.out) / task, spec, overwrite=cfg.overwrite)
    rng = np.random.default_rng([cfg.seed, sum(map(ord, task))])
    start_rng = np.random.default_rng([cfg.seed, sum(map(ord, task)), 1])  # its own stream: beta's draws stay as they were

    def reset(env, seed: int):
        away = cfg.random_start_fraction > 0 and start_rng.random() < cfg.random_start_fraction
        return reset_maybe_away(env, seed, start_rng if away else None)

    obs, info = zip(*[reset(e, cfg.seed + i) for i, e in enumerate(envs)])
    obs, info = list(obs), list(info)
    states = model.init_state(n, device)
    execs = [ChunkExecutor(model.cfg.horizon, cfg.execution, cfg.exec_steps or None) for _ in range(n)]
    frames: list[list[dict]] = [[] for _ in range(n)]
    instructions = [inf[schema.INFO_INSTRUCTION] for inf in info]
    steps, active, started = np.zeros(n, int), np.ones(n, bool), n
    results, t0 = [], time.perf_counter()
    dtype = next(model.parameters()).dtype
    while active.any():
        stack = lambda k: torch.from_numpy(np.stack([o[k] for o in obs])).to(device, dtype)  # noqa: E731
        subtasks = [str(inf[schema.INFO_SUBTASK]) for inf in info]
        texts = torch.from_numpy(encoder(subtasks)).to(device, dtype)
        codes = torch.from_numpy(codes_for(model.cfg, subtasks)).to(device, dtype)
        with torch.inference_mode():
            chunks = model.step(stack(schema.OBS_POINTS), stack(schema.OBS_COLORS), stack(schema.OBS_STATE), texts,
                                states, objects=codes)
            chunks = model.normalizer.unnormalize_action(chunks).float().cpu().numpy()
        for i in np.flatnonzero(active):
            label = schema.validate_action(np.asarray(envs[i].unwrapped.expert_action(), np.float32))
            mine = schema.validate_action(execs[i](chunks[i]))
            o2, _, term, trunc, inf2 = envs[i].step(label if rng.random() < cfg.beta else mine)
            frames[i].append(frame_from_step(obs[i], label, info[i], inf2, spec))
            steps[i] += 1
            if not (term or trunc or steps[i] >= cfg.max_steps):
                obs[i], info[i] = o2, inf2
                continue
            # an env that stops here keeps its last live observation: a finished one reports subtask "DONE"
            writer.start_episode(instructions[i])
            for f in frames[i]:
                writer.add_frame(f)
            success = bool(inf2[schema.INFO_SUCCESS])
            writer.save_episode(success=success)
            results.append({"success": success, "steps": int(steps[i])})
            frames[i], steps[i] = [], 0
            execs[i].reset()
            _reset_rows(states, np.array([i]))
            if started < cfg.episodes:
                obs[i], info[i] = reset(envs[i], cfg.seed + started)
                instructions[i] = info[i][schema.INFO_INSTRUCTION]
                started += 1
            else:
                active[i] = False
    for e in envs:
        e.close()
    ok = [r["success"] for r in results]
    return {"task": task, "episodes": len(ok), "policy_success_with_beta": float(np.mean(ok)),
            "frames": int(sum(r["steps"] for r in results)), "seeds": [cfg.seed, cfg.seed + started - 1],
            "wall_s": time.perf_counter() - t0}


def collect_all(cfg: DaggerConfig) -> list[dict]:
    check_fraction("dagger: beta", cfg.beta)
    check_fraction("dagger: random_start_fraction", cfg.random_start_fraction)
    return per_task(collect_task, cfg)


def run(cfg: DaggerConfig) -> int:
    rows = collect_all(cfg)
    for r in rows:
        print(f"{r['task']}: {r['episodes']} episodes, {r['frames']} frames, success with beta "
              f"{cfg.beta}: {r['policy_success_with_beta']:.0%}, {r['wall_s']:.0f} s", file=sys.stderr)
    write_summary(rows, Path(cfg.out) / "dagger_summary.json")
    return 0
