"""Synthetic episodes with the real feature layout, for tests, benchmarks and smoke runs.

Values are deterministic functions of (seed, episode, step) so a test can recompute what
was written and compare exactly; images hold a moving square so codec error is measurable.
"""

from __future__ import annotations

import numpy as np

from vla_stack import schema
from vla_stack.datasets import layout
from vla_stack.datasets.layout import DatasetSpec
from vla_stack.datasets.writer import DatasetWriter

SUBTASKS = ("reach the blue cube", "grasp the blue cube", "place it in the drawer")


def synthetic_frames(spec: DatasetSpec, length: int, *, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(length):
        phase = min(len(SUBTASKS) - 1, 3 * t // max(1, length))
        action = rng.uniform(schema.ACTION_LOW, schema.ACTION_HIGH).astype(np.float32)
        f = {
            layout.STATE: rng.normal(size=spec.state_dim).astype(np.float32),
            layout.ACTION: action,
            "subtask": SUBTASKS[phase],
            layout.SUBTASK_DONE: bool(t + 1 == length or 3 * (t + 1) // length != phase),
            layout.SUCCESS: bool(t == length - 1),
        }
        if spec.n_points:
            f[layout.POINTS] = rng.normal(size=(spec.n_points, 3)).astype(np.float32)
            f[layout.COLORS] = rng.uniform(size=(spec.n_points, 3)).astype(np.float32)
        if spec.depth_shape:
            f[layout.DEPTH] = rng.uniform(0.3, 2.0, size=spec.depth_shape).astype(np.float32)
        for cam, (h, w) in spec.cameras.items():
            img = np.full((h, w, 3), 40, np.uint8)
            y, x = (4 * t) % max(1, h - h // 4), (3 * t) % max(1, w - w // 4)
            img[y:y + h // 4, x:x + w // 4] = (220, 60, 30)
            f[layout.image_key(cam)] = img
        frames.append(f)
    return frames


def write_synthetic(root, spec: DatasetSpec | None = None, *, episodes: int = 3, length: int = 20,
                    seed: int = 0, overwrite: bool = False) -> DatasetWriter:
    spec = spec or DatasetSpec(n_points=64, cameras={"rgb": (32, 32)})
    w = DatasetWriter.create(root, spec, overwrite=overwrite)
    for ep in range(episodes):
        w.start_episode("put the blue cube in the drawer" if ep % 2 == 0 else "open the drawer")
        for f in synthetic_frames(spec, length + ep, seed=seed + ep):
            w.add_frame(f)
        w.save_episode()
    return w
