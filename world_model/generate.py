"""Make world-model triples by running the simulator's scripted expert on a split's tasks.

    python -m vla_stack.world_model.generate --split train --episodes-per-task 8
    python -m vla_stack.world_model.generate --split heldout_compositions --episodes-per-task 6

Each episode is recorded every `stride` control steps plus on every step where a subtask
completes (those frames are the targets). Only completed subtasks become segments. For the
placement probe a segment remembers the cube its text names first (the object the skill
moves: "stack the red cube on the green cube" moves the red one) and where the simulator
has that cube when the subtask completes. Writes `<out_dir>/<split>.npz`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_stack import schema
from vla_stack.text import default_encoder

from .train import DEFAULT_DATA_DIR
from .triples import DEPTH_SCALE_MM, SubgoalEpisodes

CAMERA = "scene"  # the fixed camera whose image is observation["rgb"]


@dataclass
class GenerateConfig:
    split: str = "train"
    """A split of vla_stack.sim.load_splits() (train, heldout_compositions, ...)."""
    episodes_per_task: int = 8
    out_dir: Path = DEFAULT_DATA_DIR
    image_size: int = 128
    stride: int = 3
    """Record every stride-th control step (and every subtask end)."""
    max_steps: int = 600
    seed: int = 0
    """Episode seeds are seed + 1000 * task number + episode number."""
    robot: str = "panda"


def _cube_words() -> dict[str, str]:
    from vla_stack.sim import skills

    return {skills.OBJECT_WORDS[c]: c for c in skills.CUBE_NAMES}


def moved_cube(subtask_text: str) -> str | None:
    """The first cube the subtask names: the object its skill moves (None: drawer, button)."""
    hits = [(subtask_text.find(w), name) for w, name in _cube_words().items() if w in subtask_text]
    return min(hits)[1] if hits else None


def _to_uint16_mm(depth: np.ndarray) -> np.ndarray:
    return np.clip(np.round(depth * DEPTH_SCALE_MM), 0, 65535).astype(np.uint16)


def record_episode(env, seed: int, cfg: GenerateConfig) -> dict | None:
    """Run the expert once; return frames and completed segments (None if nothing completed)."""
    obs, info = env.reset(seed=seed)
    u = env.unwrapped
    intr, extr = u.cameras[CAMERA]
    frames_rgb, frames_depth = [obs[schema.OBS_RGB]], [_to_uint16_mm(obs[schema.OBS_DEPTH])]
    segments = []  # (first frame, last frame, text, object position at the end)
    seg_first, text = 0, info[schema.INFO_SUBTASK]
    for step in range(cfg.max_steps):
        obs, _, terminated, truncated, info = env.step(u.expert_action())
        done_now = bool(info.get(schema.INFO_SUBTASK_DONE, False))
        if done_now or step % cfg.stride == cfg.stride - 1 or terminated:
            frames_rgb.append(obs[schema.OBS_RGB])
            frames_depth.append(_to_uint16_mm(obs[schema.OBS_DEPTH]))
        if done_now:
            cube = moved_cube(text)
            pos = u.scene.body_pos(cube) if cube else np.full(3, np.nan)
            segments.append((seg_first, len(frames_rgb) - 1, text, cube, pos))
            seg_first = len(frames_rgb) - 1  # the end of one subtask is the start of the next
        new_text = info.get(schema.INFO_SUBTASK, text)
        if new_text != text and not done_now:  # re-planned (e.g. a fact was undone): restart the segment
            seg_first = len(frames_rgb) - 1
        text = new_text
        if terminated or truncated or text == schema.DONE_TOKEN:
            break
    if not segments:
        return None
    return {"rgb": frames_rgb, "depth": frames_depth, "segments": segments, "extrinsics": extr.matrix(),
            "intrinsics": intr.matrix(), "task": info.get(schema.INFO_INSTRUCTION, ""),
            "success": bool(info.get(schema.INFO_SUCCESS, False))}


def generate(cfg: GenerateConfig) -> Path:
    os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium as gym

    import vla_stack.sim as sim
    from vla_stack.sim import skills

    splits = sim.load_splits()
    if cfg.split not in splits:
        raise schema.SchemaError(f"split {cfg.split!r}: unknown; known: {sorted(splits)}")
    tasks = [t for t in splits[cfg.split] if isinstance(t, str)]
    rgb, depth, extrinsics, task_names = [], [], [], []
    seg_first, seg_last, seg_text, seg_episode, seg_object, seg_pos = [], [], [], [], [], []
    texts: list[str] = []
    objects = list(skills.CUBE_NAMES)
    intrinsics = None
    t0 = time.perf_counter()
    for ti, task in enumerate(tasks):
        env = gym.make(f"vla_stack/{task}-v0", robot=cfg.robot, image_size=cfg.image_size, max_episode_steps=cfg.max_steps)
        colours = {c: env.unwrapped.scene.model.geom_rgba[env.unwrapped.scene.geom[c], :3].copy() for c in objects}
        for e in range(cfg.episodes_per_task):
            ep = record_episode(env, cfg.seed + 1000 * ti + e, cfg)
            if ep is None:
                print(f"{task} episode {e}: no subtask completed, skipped")
                continue
            intrinsics = ep["intrinsics"]
            off = len(rgb)
            episode = len(extrinsics)
            rgb += ep["rgb"]
            depth += ep["depth"]
            extrinsics.append(ep["extrinsics"])
            task_names.append(task)
            for first, last, text, cube, pos in ep["segments"]:
                if text not in texts:
                    texts.append(text)
                seg_first.append(off + first)
                seg_last.append(off + last)
                seg_text.append(texts.index(text))
                seg_episode.append(episode)
                seg_object.append(objects.index(cube) if cube else -1)
                seg_pos.append(pos)
            print(f"{task} episode {e}: {len(ep['rgb'])} frames, {len(ep['segments'])} subtasks, "
                  f"success={ep['success']} ({time.perf_counter() - t0:.0f}s)", flush=True)
        env.close()
    if not seg_first:
        raise RuntimeError(f"split {cfg.split}: the expert completed no subtask at all")
    data = SubgoalEpisodes(
        rgb=np.stack(rgb), depth_mm=np.stack(depth), seg_first=np.array(seg_first), seg_last=np.array(seg_last),
        seg_text=np.array(seg_text), seg_episode=np.array(seg_episode), seg_object=np.array(seg_object),
        seg_object_pos=np.array(seg_pos, np.float32), texts=texts, text_embeddings=default_encoder()(texts),
        object_names=objects, object_colors=np.stack([colours[c] for c in objects]).astype(np.float32),
        intrinsics=intrinsics, extrinsics=np.stack(extrinsics), split=cfg.split, tasks=task_names)
    path = data.save(Path(cfg.out_dir) / f"{cfg.split}.npz")
    print(f"wrote {path}: {len(data.rgb)} frames, {len(data.seg_first)} segments, {len(data.pairs())} triples, "
          f"{path.stat().st_size / 1e6:.1f} MB")
    return path


def main(cfg: GenerateConfig) -> int:
    generate(cfg)
    return 0


if __name__ == "__main__":
    import tyro

    raise SystemExit(main(tyro.cli(GenerateConfig)))
