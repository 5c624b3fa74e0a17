"""`vla record`: drive a simulated task by teleoperation and write a dataset, episode by episode.

Frame t pairs observation t with the action taken from it; its `subtask` is the subtask the
env reported with observation t (what the action works on), while `subtask_done` and
`next.success` are the flags the env returned *after* the action.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vla_stack import schema
from vla_stack.datasets import layout
from vla_stack.datasets.errors import DatasetError
from vla_stack.datasets.layout import DatasetSpec
from vla_stack.datasets.writer import DatasetWriter

CAMERA_KEYS = (schema.OBS_RGB, schema.OBS_WRIST_RGB)


@dataclass
class RecordConfig:
    """Record teleoperated demonstrations into a LeRobot-v3-compatible dataset."""

    out: Path
    """dataset directory to create (or append to with --resume)"""
    env: str = "PutRedInBowl"
    """task name (`vla sim tasks` lists them) or a full gymnasium id"""
    teleop: Literal["expert", "keyboard", "ros"] = "expert"
    episodes: int = 1
    """episodes to keep (discarded ones are not counted)"""
    max_steps: int = 400
    """steps after which an episode ends (truncation)"""
    robot: Literal["panda", "ur5e"] = "panda"
    image_size: int = 128
    n_points: int = 1024
    fps: int = 20
    seed: int = 0
    """episode k resets the env with seed + k"""
    depth: bool = False
    """also store float32 depth (metres) in the parquet"""
    video_pix_fmt: Literal["yuv420p", "yuv444p"] = "yuv420p"
    """yuv444p: about +5 dB PSNR at the same size, but browsers do not play it (LeRobot/FFmpeg do)"""
    video_crf: int = 18
    """H.264 quality (lower is better and bigger)"""
    review: Literal["auto", "yes", "no"] = "auto"
    """ask keep / discard / re-record after each episode (auto: yes for keyboard and ros)"""
    discard_failed: bool = False
    resume: bool = False
    overwrite: bool = False
    realtime: Literal["auto", "yes", "no"] = "auto"
    """pace steps at fps wall-clock time (auto: yes for keyboard and ros)"""
    progress: bool = True


def make_env(cfg: RecordConfig):
    os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium as gym

    import vla_stack.sim  # noqa: F401  (registers the environments)

    env_id = cfg.env if "/" in cfg.env else f"vla_stack/{cfg.env}-v0"
    if env_id not in gym.registry:
        known = sorted(k.split("/")[1].removesuffix("-v0") for k in gym.registry if k.startswith("vla_stack/"))
        raise DatasetError(f"unknown environment {cfg.env!r}; known tasks: {known}")
    return gym.make(env_id, robot=cfg.robot, image_size=cfg.image_size, n_points=cfg.n_points,
                    render_mode="rgb_array", max_episode_steps=cfg.max_steps)


def spec_from_observation(obs: dict, env, cfg: RecordConfig) -> DatasetSpec:
    cams = {k: tuple(np.asarray(obs[k]).shape[:2]) for k in CAMERA_KEYS if k in obs}
    params = {}
    for name, (intr, extr) in (getattr(env.unwrapped, "cameras", None) or {}).items():
        params[name] = {"intrinsics": {k: getattr(intr, k) for k in ("width", "height", "fx", "fy", "cx", "cy")},
                        "extrinsics": {"rotation": np.asarray(extr.rotation).tolist(),
                                       "translation": np.asarray(extr.translation).tolist()}}
    return DatasetSpec(
        fps=cfg.fps, robot_type=cfg.robot,
        n_points=int(np.asarray(obs[schema.OBS_POINTS]).shape[0]) if schema.OBS_POINTS in obs else 0,
        cameras=cams, depth_shape=tuple(np.asarray(obs[schema.OBS_DEPTH]).shape) if cfg.depth else None,
        camera_params=params, video_pix_fmt=cfg.video_pix_fmt, video_crf=cfg.video_crf,
    )


def frame_from_step(obs: dict, action: np.ndarray, info_before: dict, info_after: dict,
                    spec: DatasetSpec) -> dict:
    """Map schema observation keys + annotations onto dataset feature names."""
    f = {layout.STATE: obs[schema.OBS_STATE], layout.ACTION: action,
         "subtask": info_before[schema.INFO_SUBTASK],
         layout.SUBTASK_DONE: bool(info_after[schema.INFO_SUBTASK_DONE]),
         layout.SUCCESS: bool(info_after[schema.INFO_SUCCESS])}
    if spec.n_points:
        f[layout.POINTS] = obs[schema.OBS_POINTS]
        f[layout.COLORS] = obs[schema.OBS_COLORS]
    if spec.depth_shape:
        f[layout.DEPTH] = obs[schema.OBS_DEPTH]
    for cam in spec.cameras:
        f[layout.image_key(cam)] = obs[cam]
    return f


def run_episode(env, teleop, writer: DatasetWriter, seed: int, max_steps: int, *, realtime: bool,
                progress=None) -> tuple[int, bool]:
    """Record one episode into the writer's buffer; returns (steps, success)."""
    import time

    obs, info = env.reset(seed=seed)
    teleop.reset()
    writer.start_episode(info[schema.INFO_INSTRUCTION])
    success, steps, next_tick = False, 0, time.monotonic()
    for steps in range(1, max_steps + 1):
        action = schema.validate_action(teleop.action(env, obs))
        next_obs, _, terminated, truncated, info_after = env.step(action)
        writer.add_frame(frame_from_step(obs, action, info, info_after, writer.spec))
        obs, info = next_obs, info_after
        success = bool(info_after[schema.INFO_SUCCESS])
        if progress is not None:
            progress.update(1)
            progress.set_postfix_str(f"{info_after[schema.INFO_SUBTASK][:40]}")
        if terminated or truncated or teleop.episode_ended():
            break
        if realtime:
            next_tick += 1.0 / writer.spec.fps
            time.sleep(max(0.0, next_tick - time.monotonic()))
    return steps, success


def ask_review(success: bool, steps: int) -> str:
    """k(eep) / d(iscard) / r(e-record) from the terminal; EOF keeps."""
    print(f"episode ended after {steps} steps, success={success}. [k]eep / [d]iscard / [r]e-record? ",
          end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()[:1]
    return answer if answer in ("k", "d", "r") else "k"


def record(cfg: RecordConfig) -> int:
    from tqdm import tqdm

    from vla_stack.datasets.teleop import make_teleop

    if cfg.resume and cfg.overwrite:
        raise DatasetError("--resume and --overwrite contradict each other: pick one")
    interactive = cfg.teleop in ("keyboard", "ros")
    review = interactive if cfg.review == "auto" else cfg.review == "yes"
    realtime = interactive if cfg.realtime == "auto" else cfg.realtime == "yes"
    env = make_env(cfg)
    obs, _ = env.reset(seed=cfg.seed)
    spec = spec_from_observation(obs, env, cfg)
    writer = (DatasetWriter.resume(cfg.out, spec) if cfg.resume
              else DatasetWriter.create(cfg.out, spec, overwrite=cfg.overwrite))
    teleop = make_teleop(cfg.teleop, cfg.fps)
    kept, attempt = 0, writer.num_episodes  # seeds continue after a resume
    bar = tqdm(total=cfg.episodes, desc="episodes", unit="ep", disable=not cfg.progress, file=sys.stderr)
    try:
        while kept < cfg.episodes:
            steps_bar = tqdm(total=cfg.max_steps, desc=f"episode {writer.num_episodes}", unit="step",
                             leave=False, disable=not cfg.progress, file=sys.stderr)
            steps, success = run_episode(env, teleop, writer, cfg.seed + attempt, cfg.max_steps,
                                         realtime=realtime, progress=steps_bar)
            steps_bar.close()
            choice = ask_review(success, steps) if review else ("d" if cfg.discard_failed and not success else "k")
            if choice == "r":
                writer.discard_episode()
                continue  # same seed again
            attempt += 1
            if choice == "d":
                writer.discard_episode()
                print(f"discarded episode ({steps} steps, success={success})", file=sys.stderr)
                continue
            ep = writer.save_episode(success=success)
            kept += 1
            bar.update(1)
            print(f"episode {ep}: {steps} steps, success={success}", file=sys.stderr if cfg.progress else sys.stdout,
                  flush=True)
    finally:
        bar.close()
        teleop.close()
        env.close()
    print(f"{writer.root}: {writer.num_episodes} episodes, {writer.num_frames} frames")
    return 0


def main(cfg: RecordConfig) -> int:
    """CLI entry: dataset errors become one clear line and exit status 1."""
    try:
        return record(cfg)
    except DatasetError as e:
        print(f"vla record: {e}", file=sys.stderr)
        return 1
