"""Does the shape harmonic read a cube's yaw from a real cloud? (policy/shape_harmonics.py)

At reset of each pick task (seeds 0..), correlate Im Z_4 of the subtask's object channel with sin(4 x the
hand's yaw off the cube's faces) (`Scene.hand_yaw_off_faces`), with and without the densest-cluster
restriction, side by side on the same clouds. A |correlation| near 1 means the turn the expert makes is
in the input; the sign is a convention the network absorbs.

    python benchmarks/shape_harmonics_signal.py        # ~1 min on the CPU
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

CUBES = {"PickRedCube": "red_cube", "PickBlueCube": "blue_cube"}


@dataclass
class ShapeHarmonicsSignalConfig:
    seeds: int = 40
    n_points: int = 1024
    image_size: int = 128
    name: str = "shape_harmonics_signal"


def readings(task: str, cube: str, cfg: ShapeHarmonicsSignalConfig) -> dict[str, np.ndarray]:
    """Per seed: the hand's yaw off the faces, Im Z_4 with and without the cluster restriction, marked spread."""
    import torch

    from vla_stack import schema
    from vla_stack.agent.rollout import make_env
    from vla_stack.policy.config import PolicyConfig
    from vla_stack.policy.geometry import ee_frame
    from vla_stack.policy.object_channels import object_codes, object_masks
    from vla_stack.policy.shape_harmonics import shape_harmonics

    env = make_env(task, "panda", cfg.n_points, cfg.image_size)
    rows = []
    try:
        for seed in range(cfg.seeds):
            obs, info = env.reset(seed=seed)
            t = lambda k: torch.as_tensor(np.asarray(obs[k], np.float32))[None]  # noqa: E731
            codes = torch.as_tensor(object_codes([info[schema.INFO_SUBTASK]], PolicyConfig().marked_objects))
            masks = object_masks(t(schema.OBS_COLORS), codes)
            _, axes, _ = ee_frame(t(schema.OBS_STATE))
            im4 = {}
            for arm, cluster in (("cluster", True), ("all_marked", False)):
                _, v = shape_harmonics(t(schema.OBS_POINTS), masks, axes, cluster=cluster)
                im4[arm] = float(v[0, 1] @ axes[0, 1])  # channel 0 (the named cube), m = 4, along the approach axis
            marked = t(schema.OBS_POINTS)[0][masks[0, :, 0] > 0].numpy()
            rows.append((env.scene.hand_yaw_off_faces(cube), im4["cluster"], im4["all_marked"],
                         float(np.linalg.norm(marked.std(0)))))
    finally:
        env.close()
    r = np.array(rows)
    return {"yaw": r[:, 0], "cluster": r[:, 1], "all_marked": r[:, 2], "spread": r[:, 3]}


def main(cfg: ShapeHarmonicsSignalConfig):
    from vla_stack import bench

    metrics, table = {}, []
    for task, cube in CUBES.items():
        r = readings(task, cube, cfg)
        row = {"task": task, "marked points' spread (m)": f"{r['spread'].mean():.3f}"}
        for arm in ("all_marked", "cluster"):
            corr = float(np.corrcoef(r[arm], np.sin(4 * r["yaw"]))[0, 1])
            metrics[f"corr_im_z4_sin4yaw_{cube}_{arm}"] = round(corr, 3)
            row[f"corr, {arm.replace('_', ' ')}"] = f"{corr:+.2f}"
        metrics[f"marked_spread_m_{cube}"] = round(float(r["spread"].mean()), 3)
        table.append(row)
    bench.print_table(table, title=f"Im Z_4 vs sin(4 x hand yaw off the faces) at reset ({cfg.seeds} seeds per task)")
    return bench.write_results(cfg.name, metrics, details={"config": {k: str(v) for k, v in vars(cfg).items()}})


if __name__ == "__main__":
    import tyro

    main(tyro.cli(ShapeHarmonicsSignalConfig))
