"""`vla eval`: subtask-conditioned evaluation in simulation with gymnasium vector envs.

N envs of a task run in lockstep (SyncVectorEnv, same-step autoreset) with ONE batched
policy call per tick; each env's backbone state and chunk executor are reset when its
episode ends. The policy is given the env's true current subtask text. Writes a success
table as JSON and Markdown, and rollout MP4s of the scene camera.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from vla_stack import bench, schema

from .checkpoint import load_checkpoint, read_config, recorded_execution
from .chunking import ChunkExecutor
from .model import PolicyModel
from .object_channels import codes_for


@dataclass
class EvalConfig:
    checkpoint: Path = Path("runs/policy/final")
    tasks: tuple[str, ...] = ()  # empty: every task of `split`
    split: str = "train"
    episodes: int = 10  # per task
    n_envs: int = 5  # vector envs per task
    robot: str = "panda"
    n_points: int = 512
    image_size: int = 128
    # ensemble | receding | recorded: as validated for the checkpoint (its meta.execution; ensemble if none)
    execution: str = "recorded"
    exec_steps: int = 0  # receding: actions executed per chunk (0: horizon // 2)
    ensemble_decay: float = 0.01  # ensemble: weight exp(-decay * age), age 0 = oldest chunk (ACT)
    max_steps: int = 0  # per episode (0: the env's own time limit)
    videos: int = 1  # MP4s per task (first episodes of env 0)
    out: Path = Path("runs/eval")
    device: str = "auto"
    seed: int = 1000  # different from the data-collection seeds
    workers: int = 1  # tasks evaluated in parallel processes (each loads the checkpoint)
    world_model: Path | None = None  # a world-model checkpoint: condition on its subgoal latents (None: without)
    # when an env's subtask changes: clear its backbone state, its pending chunks (the previous subtask's
    # actions blended into the next ones), both, or neither; recorded: chunks if the checkpoint's
    # meta.execution says clear_on_switch, else none
    reset_on_switch: str = "recorded"  # none | state | chunks | both | recorded


class SubgoalSource:
    """Each env's subgoal latent for its current subtask, predicted by the world model from that
    env's view of the world model's own camera when the subtask starts (as the agent does)."""

    def __init__(self, checkpoint: Path, envs, latent_dim: int, device) -> None:
        from vla_stack.sim.cameras import RendererPool
        from vla_stack.world_model.predictor import WorldModel

        if not latent_dim:
            raise schema.SchemaError(f"eval --world-model {checkpoint}: the policy was trained without subgoals "
                                     "(subgoal_dim 0)")
        self.wm = WorldModel.load(checkpoint, device=device)
        if self.wm.config.latent_dim != latent_dim:
            raise schema.SchemaError(f"eval --world-model {checkpoint}: latent_dim {self.wm.config.latent_dim}, "
                                     f"the policy expects subgoal_dim {latent_dim}")
        self.scenes = [e.unwrapped.scene for e in envs.envs]
        self.pools = [RendererPool(scene.model) for scene in self.scenes]
        self.latents = np.zeros((len(self.scenes), latent_dim), np.float32)
        self.for_subtask: list[str | None] = [None] * len(self.scenes)

    def __call__(self, subtasks: list[str]) -> np.ndarray:
        size, camera = self.wm.config.image_size, self.wm.config.camera
        for i, sub in enumerate(subtasks):
            if sub != self.for_subtask[i] and sub != schema.DONE_TOKEN:
                rgb, depth = self.pools[i].rgbd(self.scenes[i].data, camera, size, size)
                self.latents[i] = self.wm.predict_subgoal(rgb, depth, sub)[1]
                self.for_subtask[i] = sub
        return self.latents

    def forget(self, i: int) -> None:
        """A new episode starts in env i: predict again even if its first subtask is the same text."""
        self.for_subtask[i] = None


def _reset_rows(state: dict, rows: np.ndarray) -> None:
    for layer in state["layers"]:
        if hasattr(layer, "ssm"):
            layer.conv[rows] = 0
            layer.ssm[rows] = 0
        else:
            raise NotImplementedError("per-env reset needs a recurrent backbone")


def _task_list(cfg: EvalConfig) -> list[str]:
    if cfg.tasks:
        return list(cfg.tasks)
    import vla_stack.sim as sim

    splits = sim.load_splits()
    if cfg.split not in splits or cfg.split == "chains":
        raise schema.SchemaError(f"split {cfg.split!r}: expected one of {[s for s in splits if s != 'chains']}")
    return sorted({item["task"] for item in splits[cfg.split]})


def run_task(model: PolicyModel, task: str, cfg: EvalConfig, device, text_encoder) -> dict:
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    import vla_stack.sim as sim

    cfg = with_recorded_execution(cfg, {})   # a model without its checkpoint (training's periodic eval): defaults
    if cfg.reset_on_switch not in ("none", "state", "chunks", "both"):
        raise schema.SchemaError(f"eval --reset-on-switch {cfg.reset_on_switch!r}: expected none | state | chunks | both | "
                                 "recorded")
    n = max(1, min(cfg.n_envs, cfg.episodes))
    fns = [lambda: sim.make(task, robot=cfg.robot, n_points=cfg.n_points, image_size=cfg.image_size) for _ in range(n)]
    envs = SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    limit = cfg.max_steps or envs.envs[0].spec.max_episode_steps or 1000
    recurrent = model.cfg.backbone == "mamba"
    dtype = next(model.parameters()).dtype
    obs, info = envs.reset(seed=[cfg.seed + i for i in range(n)])
    states = model.init_state(n, device) if recurrent else [model.init_state(1, device) for _ in range(n)]
    execs = [ChunkExecutor(model.cfg.horizon, cfg.execution, cfg.exec_steps or None, cfg.ensemble_decay,
                           clear_on_switch=cfg.reset_on_switch in ("chunks", "both"))
             for _ in range(n)]
    subgoals = SubgoalSource(cfg.world_model, envs, model.cfg.subgoal_dim, device) if cfg.world_model else None
    steps = np.zeros(n, int)
    results: list[dict] = []
    started = n
    active = np.ones(n, bool)
    frames: list[list[np.ndarray]] = [[]]
    videos_done = 0
    t0 = time.perf_counter()
    last = [None] * n
    while active.any():
        subtasks = [str(s) for s in info[schema.INFO_SUBTASK]]
        for i in range(n):   # the chunks are dropped by the executor (clear_on_switch)
            if last[i] is not None and subtasks[i] != last[i] and cfg.reset_on_switch in ("state", "both") and recurrent:
                _reset_rows(states, np.array([i]))
            last[i] = subtasks[i]
        texts = torch.from_numpy(text_encoder(subtasks)).to(device, dtype)
        codes = torch.from_numpy(codes_for(model.cfg, subtasks)).to(device, dtype)
        goal = None if subgoals is None else torch.from_numpy(subgoals(subtasks)).to(device, dtype)
        t = lambda k: torch.from_numpy(np.ascontiguousarray(obs[k])).to(device, dtype)  # noqa: E731
        with torch.inference_mode():
            if recurrent:
                chunks = model.step(t(schema.OBS_POINTS), t(schema.OBS_COLORS), t(schema.OBS_STATE), texts, states,
                                    subgoal=goal, objects=codes)
            else:
                chunks = torch.cat([model.step(t(schema.OBS_POINTS)[i:i + 1], t(schema.OBS_COLORS)[i:i + 1],
                                               t(schema.OBS_STATE)[i:i + 1], texts[i:i + 1], states[i],
                                               subgoal=None if goal is None else goal[i:i + 1], objects=codes[i:i + 1])
                                    for i in range(n)])
            chunks = model.normalizer.unnormalize_action(chunks).float().cpu().numpy()
        actions = np.stack([schema.validate_action(execs[i](chunks[i], subtasks[i])) if active[i]
                            else np.zeros(7, np.float32) for i in range(n)])
        if videos_done < cfg.videos and active[0]:
            frames[-1].append(obs[schema.OBS_RGB][0].copy())
        obs, _, term, trunc, info = envs.step(actions)
        steps += 1
        done = (term | trunc | (steps >= limit)) & active
        for i in np.flatnonzero(done):
            final = info["final_info"] if "final_info" in info and info["_final_info"][i] else info
            success = bool(final[schema.INFO_SUCCESS][i])
            results.append({"env": int(i), "success": success, "steps": int(steps[i])})
            if i == 0 and videos_done < cfg.videos:
                _write_video(frames[-1], Path(cfg.out) / "videos" / f"{task}_ep{videos_done}_{'ok' if success else 'fail'}.mp4")
                videos_done += 1
                frames.append([])
            if not (term[i] or trunc[i]):  # our own step limit: reset this env by hand
                o, inf = envs.envs[i].reset()
                for k in obs:
                    obs[k][i] = o[k]
                info[schema.INFO_SUBTASK][i] = inf[schema.INFO_SUBTASK]
            steps[i] = 0
            last[i] = None
            execs[i].reset()
            if subgoals is not None:
                subgoals.forget(i)
            if recurrent:
                _reset_rows(states, np.array([i]))
            else:
                states[i] = model.init_state(1, device)
            if started < cfg.episodes:
                started += 1
            else:
                active[i] = False
    envs.close()
    ok = [r["success"] for r in results]
    return {"episodes": len(ok), "successes": int(sum(ok)), "success_rate": float(np.mean(ok)) if ok else 0.0,
            "mean_steps": float(np.mean([r["steps"] for r in results])), "wall_s": time.perf_counter() - t0,
            "episodes_detail": results}


def _write_video(frames: list[np.ndarray], path: Path, fps: int = 20) -> None:
    if not frames:
        return
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, frames, fps=fps, codec="libx264", macro_block_size=1)


def evaluate_model(model: PolicyModel, cfg: EvalConfig) -> dict:
    from vla_stack import text

    device = next(model.parameters()).device
    tasks = _task_list(cfg)
    table = {"tasks": {}, "config": {k: str(v) for k, v in vars(cfg).items()}}
    for task in tasks:
        table["tasks"][task] = run_task(model, task, cfg, device, text.default_encoder())
        row = table["tasks"][task]
        print(f"[eval] {task}: {row['successes']}/{row['episodes']} ({row['success_rate']:.0%})", flush=True)
    return write_table(table, cfg)


def write_table(table: dict, cfg: EvalConfig) -> dict:
    rates = [r["success_rate"] for r in table["tasks"].values()]
    table["mean_success_rate"] = float(np.mean(rates)) if rates else 0.0
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "success.json").write_text(json.dumps(table, indent=2, default=bench._jsonable) + "\n")
    (out / "success.md").write_text(markdown_table(table))
    return table


def markdown_table(table: dict) -> str:
    lines = ["| task | episodes | successes | success rate | mean steps |", "|---|---:|---:|---:|---:|"]
    for task, r in table["tasks"].items():
        lines.append(f"| {task} | {r['episodes']} | {r['successes']} | {r['success_rate']:.0%} | {r['mean_steps']:.0f} |")
    lines.append(f"| **mean** | | | {table['mean_success_rate']:.0%} | |")
    return "\n".join(lines) + "\n"


def _task_in_worker(cfg: EvalConfig, task: str, device: str) -> dict:
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from vla_stack import text

    torch.set_num_threads(1)
    model, _ = load_checkpoint(cfg.checkpoint, map_location=device)
    row = run_task(model.eval(), task, cfg, torch.device(device), text.default_encoder())
    print(f"[eval] {task}: {row['successes']}/{row['episodes']} ({row['success_rate']:.0%})", flush=True)
    return row


def evaluate_parallel(cfg: EvalConfig, device: str) -> dict:
    """One process per task (spawned: MuJoCo's EGL and CUDA do not survive a fork)."""
    import multiprocessing as mp

    tasks = _task_list(cfg)
    with mp.get_context("spawn").Pool(min(cfg.workers, len(tasks))) as pool:
        rows = pool.starmap(_task_in_worker, [(cfg, t, device) for t in tasks])
    table = {"tasks": dict(zip(tasks, rows)), "config": {k: str(v) for k, v in vars(cfg).items()}}
    return write_table(table, cfg)


def with_recorded_execution(cfg: EvalConfig, meta: dict) -> EvalConfig:
    """`recorded` fields replaced by what the checkpoint recorded, so `vla eval` runs a checkpoint as
    the agent and the benchmarks do unless told otherwise."""
    rec = recorded_execution(meta)
    if cfg.execution == "recorded":
        cfg = replace(cfg, execution=rec.get("execution", "ensemble"), exec_steps=rec.get("exec_steps", 0))
    if cfg.reset_on_switch == "recorded":
        cfg = replace(cfg, reset_on_switch="chunks" if rec.get("clear_on_switch") else "none")
    return cfg


def run(cfg: EvalConfig) -> int:
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = with_recorded_execution(cfg, read_config(cfg.checkpoint)[1])
    print(f"[eval] execution: {cfg.execution}"
          + (f" {cfg.exec_steps or 'horizon // 2'}" if cfg.execution == "receding" else "")
          + f", at a subtask switch reset: {cfg.reset_on_switch}", flush=True)
    if cfg.workers > 1:
        evaluate_parallel(cfg, device)
        return 0
    model, _ = load_checkpoint(cfg.checkpoint, map_location=device)
    evaluate_model(model, cfg)
    return 0
