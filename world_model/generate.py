"""Make world-model triples by running the simulator's scripted expert on a split's tasks.

    python -m vla_stack.world_model.generate --split train --episodes-per-task 8
    python -m vla_stack.world_model.generate --split heldout_compositions --episodes-per-task 6

Each episode is recorded every `stride` control steps plus on every step where a subtask
completes (those frames are the targets). Only completed subtasks become segments. For the
placement probe a segment remembers the cube its text names first (the object the skill
moves: "stack the red cube on the green cube" moves the red one) and where the simulator
has that cube when the subtask completes. Writes `<out_dir>/<camera>/<split>.npz`.
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
from .words import word_tokens

#: "scene" is the camera behind observation["rgb"]; "front" faces the robot across the table
#: and sees what the arm hides from "scene" (a held or just-placed cube).
#: The button cap is red (green once pressed), like two of the cubes: the probe ignores its disc.
BUTTON_EXCLUSION_RADIUS_M = 0.045


@dataclass
class GenerateConfig:
    split: str = "train"
    """A split of vla_stack.sim.load_splits() (train, heldout_compositions, ...)."""
    episodes_per_task: int = 8
    out_dir: Path = DEFAULT_DATA_DIR
    """Writes <out_dir>/<camera>/<split>.npz for each camera."""
    cameras: tuple[str, ...] = ("scene", "front")
    image_size: int = 128
    stride: int = 3
    """Record every stride-th control step (and every subtask end)."""
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


def _render(env, camera: str, size: int):
    """(rgb, depth uint16 mm, intrinsics 3x3, base_T_camera 4x4) of a named fixed camera."""
    import mujoco

    from vla_stack.sim.cameras import extrinsics, intrinsics

    u = env.unwrapped
    m, d = u.scene.model, u.scene.data
    cid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if cid < 0:
        raise schema.SchemaError(f"camera {camera!r}: not in the scene")
    rgb, depth = u._pool().rgbd(d, camera, size, size)  # the env's own reused renderers
    return rgb, _to_uint16_mm(depth), intrinsics(m, cid, size, size).matrix(), extrinsics(d, cid).matrix()


def record_episode(env, seed: int, cfg: GenerateConfig) -> dict | None:
    """Run the expert once; return per-camera frames and completed segments (None if none completed)."""
    _, info = env.reset(seed=seed)
    u = env.unwrapped
    frames = {c: {"rgb": [], "depth": []} for c in cfg.cameras}
    calib = {}

    def snap():
        for c in cfg.cameras:
            rgb, depth, k, ext = _render(env, c, cfg.image_size)
            frames[c]["rgb"].append(rgb)
            frames[c]["depth"].append(depth)
            calib[c] = (k, ext)

    snap()
    n = 1
    button = u.scene.body_pos("button")
    segments = []  # (first frame, last frame, text, cube, cube position at the end)
    seg_first, text = 0, info[schema.INFO_SUBTASK]
    for step in range(100_000):  # the registered TimeLimit (150 steps per subtask + 50) ends it
        _, _, terminated, truncated, info = env.step(u.expert_action())
        done_now = bool(info.get(schema.INFO_SUBTASK_DONE, False))
        if done_now or step % cfg.stride == cfg.stride - 1 or terminated:
            snap()
            n += 1
        if done_now:
            cube = moved_cube(text)
            pos = u.scene.body_pos(cube) if cube else np.full(3, np.nan)
            segments.append((seg_first, n - 1, text, cube, pos))
            seg_first = n - 1  # the end of one subtask is the start of the next
        new_text = info.get(schema.INFO_SUBTASK, text)
        if new_text != text and not done_now:  # re-planned (e.g. a fact was undone): restart the segment
            seg_first = n - 1
        text = new_text
        if terminated or truncated or text == schema.DONE_TOKEN:
            break
    if not segments:
        return None
    return {"frames": frames, "calib": calib, "segments": segments,
            "discs": np.array([[button[0], button[1], BUTTON_EXCLUSION_RADIUS_M]], np.float32),
            "task": info.get(schema.INFO_INSTRUCTION, ""), "success": bool(info.get(schema.INFO_SUCCESS, False))}


def generate(cfg: GenerateConfig) -> list[Path]:
    os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium as gym

    import vla_stack.sim as sim
    from vla_stack.sim import skills

    splits = sim.load_splits()
    if cfg.split not in splits:
        raise schema.SchemaError(f"split {cfg.split!r}: unknown; known: {sorted(splits)}")
    # entries are task names or {"task": name, "instruction": text}; the world model needs the tasks once
    names = [t if isinstance(t, str) else t.get("task") for t in splits[cfg.split] if isinstance(t, (str, dict))]
    tasks = list(dict.fromkeys(n for n in names if n))
    if not tasks:
        raise schema.SchemaError(f"split {cfg.split!r}: no tasks (chains are not supported here)")
    # Embed every subtask text *before* the first EGL context exists: importing triton (which
    # sentence-transformers pulls in through torch._dynamo) after MuJoCo's EGL renderer has
    # started segfaults on this machine (two LLVMs in one process).
    encoder = default_encoder()
    texts_all = [st.text for t in tasks for st in sim.get_task(t).subtasks]
    encoder(texts_all)
    word_tokens(texts_all, encoder)
    per_cam = {c: {"rgb": [], "depth": [], "extrinsics": []} for c in cfg.cameras}
    discs, task_names = [], []
    seg_first, seg_last, seg_text, seg_episode, seg_object, seg_pos = [], [], [], [], [], []
    texts: list[str] = []
    objects = list(skills.CUBE_NAMES)
    intrinsics = {}
    n_frames = 0
    t0 = time.perf_counter()
    for ti, task in enumerate(tasks):
        env = gym.make(f"vla_stack/{task}-v0", robot=cfg.robot, image_size=cfg.image_size, obs_keys=(schema.OBS_STATE,))
        colours = {c: env.unwrapped.scene.model.geom_rgba[env.unwrapped.scene.geom[c], :3].copy() for c in objects}
        for e in range(cfg.episodes_per_task):
            ep = record_episode(env, cfg.seed + 1000 * ti + e, cfg)
            if ep is None:
                print(f"{task} episode {e}: no subtask completed, skipped")
                continue
            episode = len(task_names)
            for c in cfg.cameras:
                per_cam[c]["rgb"] += ep["frames"][c]["rgb"]
                per_cam[c]["depth"] += ep["frames"][c]["depth"]
                intrinsics[c], ext = ep["calib"][c]
                per_cam[c]["extrinsics"].append(ext)
            discs.append(ep["discs"])
            task_names.append(task)
            for first, last, text, cube, pos in ep["segments"]:
                if text not in texts:
                    texts.append(text)
                seg_first.append(n_frames + first)
                seg_last.append(n_frames + last)
                seg_text.append(texts.index(text))
                seg_episode.append(episode)
                seg_object.append(objects.index(cube) if cube else -1)
                seg_pos.append(pos)
            n_new = len(ep["frames"][cfg.cameras[0]]["rgb"])
            n_frames += n_new
            print(f"{task} episode {e}: {n_new} frames, {len(ep['segments'])} subtasks, "
                  f"success={ep['success']} ({time.perf_counter() - t0:.0f}s)", flush=True)
        env.close()
    if not seg_first:
        raise RuntimeError(f"split {cfg.split}: the expert completed no subtask at all")
    word_emb, word_mask = word_tokens(texts, encoder)
    paths = []
    for c in cfg.cameras:
        data = SubgoalEpisodes(
            rgb=np.stack(per_cam[c]["rgb"]), depth_mm=np.stack(per_cam[c]["depth"]), seg_first=np.array(seg_first),
            seg_last=np.array(seg_last), seg_text=np.array(seg_text), seg_episode=np.array(seg_episode),
            seg_object=np.array(seg_object), seg_object_pos=np.array(seg_pos, np.float32), texts=texts,
            text_embeddings=encoder(texts), object_names=objects,
            object_colors=np.stack([colours[o] for o in objects]).astype(np.float32), intrinsics=intrinsics[c],
            extrinsics=np.stack(per_cam[c]["extrinsics"]), exclude_discs=np.stack(discs), split=cfg.split,
            tasks=task_names, camera=c, word_embeddings=word_emb, word_mask=word_mask)
        path = data.save(Path(cfg.out_dir) / c / f"{cfg.split}.npz")
        print(f"wrote {path}: {len(data.rgb)} frames, {len(data.seg_first)} segments, {len(data.pairs())} triples, "
              f"{path.stat().st_size / 1e6:.1f} MB")
        paths.append(path)
    return paths


def main(cfg: GenerateConfig) -> int:
    generate(cfg)
    return 0


if __name__ == "__main__":
    import tyro

    raise SystemExit(main(tyro.cli(GenerateConfig)))
