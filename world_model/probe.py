"""The placement probe: where does the subtask's object end up in a (predicted) image?

Segment the object by colour, lift its pixels to 3D with the (predicted) depth and the
camera calibration, and take the median point in the robot base frame. Applied to the
true end frame it gives the probe's own floor (a surface point is not the object centre);
applied to the prediction it says whether the world model put the object in the right place.
"""

from __future__ import annotations

import numpy as np

#: A pixel belongs to the object when its chromaticity is this close (cosine distance) ...
MAX_CHROMA_DISTANCE = 0.02
#: ... and it is coloured enough to carry hue at all (max - min channel, 0..1).
MIN_SATURATION = 0.12
#: Fewer matching pixels than this and the object counts as not visible.
MIN_PIXELS = 4
#: The camera sees a cube's near faces; its centre lies about half a side (the sim's cubes
#: are 4 cm) farther along the viewing ray than the median visible surface point.
CUBE_CENTRE_OFFSET_M = 0.02


def backproject(depth: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Depth (H, W) metres -> points (N, 3) in the base frame; OpenCV pinhole, base_T_camera.

    Pixel centres sit at integer coordinates (the simulator's convention: cx = (W - 1) / 2).
    """
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w]
    keep = depth > 0 if mask is None else (mask & (depth > 0))
    z = depth[keep].astype(np.float64)
    x = (u[keep] - intrinsics[0, 2]) * z / intrinsics[0, 0]
    y = (v[keep] - intrinsics[1, 2]) * z / intrinsics[1, 1]
    cam = np.stack([x, y, z], axis=1)
    return cam @ extrinsics[:3, :3].T + extrinsics[:3, 3]


def colour_mask(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Pixels whose colour direction matches `colour` (shading changes brightness, not direction)."""
    px = rgb.astype(np.float32) / 255.0
    sat = px.max(axis=-1) - px.min(axis=-1)
    c = np.asarray(colour, np.float32)
    cos = (px @ c) / (np.linalg.norm(px, axis=-1) * np.linalg.norm(c) + 1e-6)
    return (1.0 - cos < MAX_CHROMA_DISTANCE) & (sat > MIN_SATURATION)


def locate(rgb: np.ndarray, depth: np.ndarray, colour: np.ndarray, intrinsics: np.ndarray,
           extrinsics: np.ndarray, exclude_discs: np.ndarray | None = None,
           centre_offset_m: float = 0.0) -> np.ndarray | None:
    """Median base-frame position of the pixels of `colour`, or None when too few are seen.

    `exclude_discs` (C, 3) lists (x, y, radius) of fixtures with the same colour as an object
    (the red button; green once pressed): points over them are not the object.
    `centre_offset_m` moves the surface estimate that far along the viewing ray, toward the
    object's centre (CUBE_CENTRE_OFFSET_M for the sim's cubes).
    """
    mask = colour_mask(rgb, colour)
    if mask.sum() < MIN_PIXELS:
        return None
    pts = backproject(depth, intrinsics, extrinsics, mask)
    for x, y, r in (exclude_discs if exclude_discs is not None else ()):
        pts = pts[np.hypot(pts[:, 0] - x, pts[:, 1] - y) > r]
    if len(pts) < MIN_PIXELS:
        return None
    p = np.median(pts, axis=0)
    ray = p - extrinsics[:3, 3]
    return p + centre_offset_m * ray / np.linalg.norm(ray)
