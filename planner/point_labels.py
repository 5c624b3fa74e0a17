"""Per-point segment labels from simulator geometry: training labels for the point segmenter.

Each cloud point gets the segment of the nearest geom surface (signed distance in the geom's
frame), or background when no labelled geom is within `tol`. Like the fact predicates, this
reads privileged simulator state and only ever *labels* training frames; the planner itself
sees points and colours.
"""

from __future__ import annotations

import mujoco
import numpy as np

from .objects import SEGMENTS

_PREFIX = (("red_cube", "red cube"), ("green_cube", "green cube"), ("blue_cube", "blue cube"), ("bowl_", "bowl"),
           ("drawer_", "drawer"), ("handle", "drawer"), ("button_", "button"), ("cabinet_", "cabinet"))


def geom_segment(name: str | None) -> int:
    """Segment index of a geom by name (robot, table, distractors: background = 0)."""
    for prefix, seg in _PREFIX:
        if name and name.startswith(prefix):
            return SEGMENTS.index(seg)
    return 0


def signed_distance(q: np.ndarray, gtype: int, size: np.ndarray) -> np.ndarray:
    """Signed distance of points q (N, 3), given in the geom's own frame, to its surface."""
    if gtype == mujoco.mjtGeom.mjGEOM_BOX:
        d = np.abs(q) - size[:3]
        return np.linalg.norm(np.maximum(d, 0), axis=1) + np.minimum(d.max(1), 0)
    if gtype == mujoco.mjtGeom.mjGEOM_CYLINDER:
        d = np.stack([np.linalg.norm(q[:, :2], axis=1) - size[0], np.abs(q[:, 2]) - size[1]], 1)
        return np.linalg.norm(np.maximum(d, 0), axis=1) + np.minimum(d.max(1), 0)
    if gtype == mujoco.mjtGeom.mjGEOM_CAPSULE:
        axis = np.clip(q[:, 2], -size[1], size[1])
        return np.linalg.norm(q - np.stack([0 * axis, 0 * axis, axis], 1), axis=1) - size[0]
    if gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
        return np.linalg.norm(q, axis=1) - size[0]
    if gtype == mujoco.mjtGeom.mjGEOM_PLANE:
        return q[:, 2]
    return np.full(len(q), np.inf)  # meshes etc.: never the nearest


def point_labels(model: mujoco.MjModel, data: mujoco.MjData, points: np.ndarray, tol: float = 0.008) -> np.ndarray:
    """(N,) int8 segment index of each point (world/base frame)."""
    best = np.full(len(points), np.inf)
    label = np.zeros(len(points), np.int8)
    for g in range(model.ngeom):
        q = (points - data.geom_xpos[g]) @ data.geom_xmat[g].reshape(3, 3)
        d = np.abs(signed_distance(q, int(model.geom_type[g]), model.geom_size[g]))
        closer = d < best
        best[closer] = d[closer]
        label[closer] = geom_segment(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g))
    label[best > tol] = 0
    return label
