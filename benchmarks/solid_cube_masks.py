"""Does "the red cube"'s object channel mark the red cube, or the red button cap too, and "the button"'s the
cap, or the red cube too? (policy/object_channels.py)

Runs the scripted expert through red-cube and button tasks and, on every frame, builds the channel three
ways on the same cloud: every red point (the colour test alone), the densest cluster (what the shape
harmonics use), and `solid_cube_masks` (the densest solid cluster for a cube, the flat one for the
button). A frame counts for the cube when the marked points' centroid lies within 4 cm of the red cube's
centre, for the cap when it lies within 5 cm (in the plane) of the button. Also the height (z) span of the red points within 5 cm of each, per frame: what
the solid cluster's 2.2 cm threshold (`object_channels.SOLID_MIN_HEIGHT_M`) separates.

    python benchmarks/solid_cube_masks.py        # ~30 s on the CPU
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

# task -> a subtask text naming the red cube or the button, and its channel (1: the destination). The button
# rows mark it as a checkpoint whose marked_objects list it would (the shipped one's do since session 18).
TASKS = {"StackBlueOnRed": ("stack the blue cube on the red cube", 1),
         "PutRedInBowl": ("put the red cube in the bowl", 0),
         "PushRedTowardButton": ("push the red cube toward the button", 0),
         "PressButton": ("press the button", 0),
         "PutGreenInBowlThenPressButton": ("press the button", 0)}
RULES = ("colour_only", "densest_cluster", "solid_cluster")


@dataclass
class SolidCubeMasksConfig:
    seeds: int = 8
    max_steps: int = 300
    n_points: int = 1024
    image_size: int = 128
    name: str = "solid_cube_masks"


def frames(task: str, cfg: SolidCubeMasksConfig) -> tuple[dict[str, list[str]], dict[str, list[float]]]:
    """Per rule, one verdict per expert frame (cube, cap, other or none); per object, the red points' height span."""
    import torch

    from vla_stack import schema
    from vla_stack.agent.rollout import make_env
    from vla_stack.policy.config import PolicyConfig
    from vla_stack.policy.object_channels import object_codes, object_masks
    from vla_stack.policy.shape_harmonics import densest_cluster

    text, channel = TASKS[task]
    red_code = torch.as_tensor(object_codes(["the red cube"], ("red_cube",)))
    codes = torch.as_tensor(object_codes([text], (*PolicyConfig().marked_objects, "button")))
    env = make_env(task, "panda", cfg.n_points, cfg.image_size)
    scene = env.unwrapped.scene
    out: dict[str, list[str]] = {r: [] for r in RULES}
    spans: dict[str, list[float]] = {"cube": [], "cap": []}
    try:
        for seed in range(cfg.seeds):
            obs, _ = env.reset(seed=seed)
            for _ in range(cfg.max_steps):
                pts = torch.as_tensor(np.asarray(obs[schema.OBS_POINTS], np.float32))[None]
                cols = torch.as_tensor(np.asarray(obs[schema.OBS_COLORS], np.float32))[None]
                plain = object_masks(cols, codes)
                masks = {"colour_only": plain, "densest_cluster": densest_cluster(pts, plain),
                         "solid_cluster": object_masks(cols, codes, pts, solid_cubes=True)}
                cube, button = scene.body_pos("red_cube"), scene.body_pos("button")
                red = pts[0][object_masks(cols, red_code)[0, :, 0] > 0].numpy()
                for name, centre in (("cube", cube), ("cap", button)):
                    near = red[np.linalg.norm(red[:, :2] - centre[:2], axis=1) < 0.05]
                    if len(near):
                        spans[name].append(float(np.ptp(near[:, 2])))
                for rule, m in masks.items():
                    w = m[0, :, channel]
                    if w.sum() == 0:
                        out[rule].append("none")
                        continue
                    c = ((w[:, None] * pts[0]).sum(0) / w.sum()).numpy()
                    out[rule].append("cube" if np.linalg.norm(c - cube) < 0.04 else
                                     "cap" if np.linalg.norm(c[:2] - button[:2]) < 0.05 else "other")
                obs, _, terminated, truncated, _ = env.step(env.unwrapped.expert_action())
                if terminated or truncated:
                    break
    finally:
        env.close()
    return out, spans


def main(cfg: SolidCubeMasksConfig):
    from vla_stack import bench

    metrics, table, spans = {}, [], {"cube": [], "cap": []}
    for task in TASKS:
        verdicts, task_spans = frames(task, cfg)
        for k in spans:
            spans[k] += task_spans[k]
        row = {"task": task, "frames": len(verdicts["solid_cluster"])}
        for rule in RULES:
            v = np.array(verdicts[rule])
            on_cube, on_cap = float((v == "cube").mean()), float((v == "cap").mean())
            metrics[f"{task}_{rule}_on_cube_frac"] = round(on_cube, 3)
            metrics[f"{task}_{rule}_on_cap_frac"] = round(on_cap, 3)
            row[f"{rule.replace('_', ' ')}: cube / cap"] = f"{on_cube:.2f} / {on_cap:.2f}"
        table.append(row)
    for name, v in spans.items():
        lo, hi = np.percentile(v, [5, 95])
        metrics[f"red_{name}_height_span_p05_m"], metrics[f"red_{name}_height_span_p95_m"] = round(lo, 4), round(hi, 4)
    bench.print_table(table, title=f"where the channel lies (the red cube's; the button's in the button rows), expert frames ({cfg.seeds} seeds per task)")
    print("height span of the red points (m, 5th-95th percentile): "
          + ", ".join(f"{k} {metrics[f'red_{k}_height_span_p05_m']}-{metrics[f'red_{k}_height_span_p95_m']}" for k in spans))
    return bench.write_results(cfg.name, metrics, details={"config": {k: str(v) for k, v in vars(cfg).items()}})


if __name__ == "__main__":
    import tyro

    main(tyro.cli(SolidCubeMasksConfig))
