"""Depth image -> point cloud in the robot base frame: back-project, crop, downsample.

Downsampling is a voxel grid (one point per occupied cell) followed by farthest point
sampling. The fast path uses `fpsample`'s bucket QuickFPS (Rust, kd-tree buckets);
`farthest_point_sample_reference` is the plain numpy algorithm. QuickFPS picks its own
first point and breaks ties differently, so the two are tested to cover the cloud equally
well (covering radius), not index for index. Both are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_stack.schema import CameraExtrinsics, CameraIntrinsics, SchemaError


@dataclass(frozen=True)
class WorkspaceCrop:
    """A cylinder about the base's vertical axis (so the crop is the same for any yaw)."""

    radius_m: float = 0.85
    min_radius_m: float = 0.0
    z_min_m: float = 0.004  # above the table top: the table is removed
    z_max_m: float = 0.6
    remove_table: bool = True

    def mask(self, pts: np.ndarray) -> np.ndarray:
        r2 = pts[:, 0] ** 2 + pts[:, 1] ** 2
        z_lo = self.z_min_m if self.remove_table else -0.01
        return (r2 <= self.radius_m ** 2) & (r2 >= self.min_radius_m ** 2) & (pts[:, 2] >= z_lo) & (pts[:, 2] <= self.z_max_m)


def backproject(depth: np.ndarray, intr: CameraIntrinsics, extr: CameraExtrinsics,
                max_depth_m: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixels with valid depth -> (points (M, 3) base frame, flat pixel indices (M,))."""
    if depth.shape != (intr.height, intr.width):
        raise SchemaError(f"depth: expected shape {(intr.height, intr.width)}, got {depth.shape}")
    z = depth.reshape(-1)
    valid = np.flatnonzero((z > 0) & (z < max_depth_m) & np.isfinite(z))
    u = (valid % intr.width).astype(np.float32)
    v = (valid // intr.width).astype(np.float32)
    zv = z[valid]
    cam = np.stack([(u - intr.cx) * zv / intr.fx, (v - intr.cy) * zv / intr.fy, zv], axis=1)
    pts = cam @ extr.rotation.T.astype(np.float32) + extr.translation.astype(np.float32)
    return pts.astype(np.float32), valid


VOXEL_ABOVE = 4  # use the voxel grid when the crop holds more than this many times n points


def voxel_downsample(pts: np.ndarray, voxel_m: float) -> np.ndarray:
    """Indices of one point per occupied voxel (the first one met, deterministic)."""
    keys = np.floor(pts / voxel_m).astype(np.int64)
    keys -= keys.min(axis=0)
    dims = keys.max(axis=0) + 1
    flat = (keys[:, 0] * dims[1] + keys[:, 1]) * dims[2] + keys[:, 2]
    _, first = np.unique(flat, return_index=True)
    return np.sort(first)


def farthest_point_sample_reference(pts: np.ndarray, n: int) -> np.ndarray:
    """Plain O(N n) farthest point sampling, starting at index 0."""
    idx = np.zeros(n, np.int64)
    dist = np.full(len(pts), np.inf)
    for i in range(1, n):
        dist = np.minimum(dist, np.sum((pts - pts[idx[i - 1]]) ** 2, axis=1))
        idx[i] = int(np.argmax(dist))
    return idx


def farthest_point_sample(pts: np.ndarray, n: int) -> np.ndarray:
    """Fast path (fpsample QuickFPS): same farthest-point criterion as the reference."""
    try:
        import fpsample
    except ImportError:  # keeps working without the compiled package, just slower
        return farthest_point_sample_reference(pts, n)
    return fpsample.bucket_fps_kdline_sampling(np.ascontiguousarray(pts, np.float32), n, h=5, start_idx=0).astype(np.int64)


def downsample(pts: np.ndarray, n: int, voxel_m: float = 0.006, frame_yaw: float = 0.0) -> np.ndarray:
    """Indices of exactly n points: voxel grid, then FPS; pads by repetition if too few.

    QuickFPS's kd-tree splits along the coordinate axes, so its choice depends on the
    frame. Sampling in the layout's own frame (`frame_yaw` = the workspace yaw) makes the
    selection turn with the scene: the cloud of a yaw-rotated episode is the rotated cloud.
    """
    if frame_yaw:
        c, s = np.cos(frame_yaw), np.sin(frame_yaw)
        pts = pts @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float32)  # = R(-yaw) applied to rows
    if len(pts) == 0:
        raise SchemaError("points: the workspace crop is empty (camera sees nothing in the workspace)")
    # the voxel grid only pays off for dense clouds (large images): FPS alone is cheaper below
    keep = voxel_downsample(pts, voxel_m) if voxel_m > 0 and len(pts) > VOXEL_ABOVE * n else np.arange(len(pts))
    if len(keep) < n:
        keep = np.arange(len(pts))  # the voxel grid was too coarse for this view: use every point
    if len(keep) <= n:
        return np.resize(keep, n)
    return keep[farthest_point_sample(pts[keep], n)]


def depth_to_cloud(depth: np.ndarray, rgb: np.ndarray | None, intr: CameraIntrinsics, extr: CameraExtrinsics,
                   n_points: int, crop: WorkspaceCrop = WorkspaceCrop(), voxel_m: float = 0.006,
                   frame_yaw: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, 3) float32 base frame, colors (n, 3) float32 in [0, 1])."""
    pts, pix = backproject(depth, intr, extr)
    m = crop.mask(pts)
    pts, pix = pts[m], pix[m]
    sel = downsample(pts, n_points, voxel_m, frame_yaw)
    colors = np.zeros((n_points, 3), np.float32) if rgb is None else rgb.reshape(-1, 3)[pix[sel]].astype(np.float32) / 255.0
    return pts[sel], colors
