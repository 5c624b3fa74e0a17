"""Point clouds for the policy from what a robot publishes: depth back-projection, crop, subsample.

The policy wants (N, 3) points in the base frame, cropped to the workspace and of bounded
size. The simulator publishes exactly that; a real camera publishes a depth image (or a
large cloud) in its own frame, so the action expert node brings either into that form here.
"""

from __future__ import annotations

import numpy as np

from vla_stack import schema


def quat_wxyz_to_matrix(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def backproject(depth_m: np.ndarray, k: schema.CameraIntrinsics, extrinsics: schema.CameraExtrinsics,
                rgb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Valid depth pixels -> base-frame points (and their colours in [0, 1])."""
    if depth_m.shape != (k.height, k.width):
        raise schema.SchemaError(f"depth: shape {depth_m.shape} does not match camera_info {k.height}x{k.width}")
    v, u = np.nonzero(np.isfinite(depth_m) & (depth_m > 0))
    z = depth_m[v, u].astype(np.float64)
    cam = np.stack([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z], axis=-1)
    pts = cam @ np.asarray(extrinsics.rotation).T + np.asarray(extrinsics.translation)
    cols = rgb[v, u].astype(np.float32) / 255.0 if rgb is not None else None
    return pts.astype(np.float32), cols


def crop_and_subsample(points: np.ndarray, colors: np.ndarray | None, lo, hi, n_points: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Keep points inside the box [lo, hi]; draw at most n_points of them uniformly."""
    inside = np.all((points >= np.asarray(lo)) & (points <= np.asarray(hi)), axis=1)
    points = points[inside]
    colors = colors[inside] if colors is not None else None
    if len(points) > n_points:
        keep = np.sort(rng.choice(len(points), n_points, replace=False))
        points = points[keep]
        colors = colors[keep] if colors is not None else None
    return points, colors
