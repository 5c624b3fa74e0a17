"""Cameras: calibration (schema intrinsics/extrinsics) and rendering with reused renderers.

MuJoCo cameras look along their -z axis with +y up; the schema uses the OpenCV optical
frame (+z forward, +y down), hence the flip of the y and z columns. Pixel centres are at
integer coordinates, so cx = (width - 1) / 2.
"""

from __future__ import annotations

import mujoco
import numpy as np

from vla_stack.schema import CameraExtrinsics, CameraIntrinsics

MJ_TO_CV = np.diag([1.0, -1.0, -1.0])


def intrinsics(model: mujoco.MjModel, cam_id: int, width: int, height: int) -> CameraIntrinsics:
    fovy = np.deg2rad(model.cam_fovy[cam_id])
    f = 0.5 * height / np.tan(fovy / 2)
    return CameraIntrinsics(width, height, float(f), float(f), (width - 1) / 2.0, (height - 1) / 2.0)


def extrinsics(data: mujoco.MjData, cam_id: int) -> CameraExtrinsics:
    r = data.cam_xmat[cam_id].reshape(3, 3) @ MJ_TO_CV
    return CameraExtrinsics(rotation=r.copy(), translation=data.cam_xpos[cam_id].copy())


class RendererPool:
    """One mujoco.Renderer per image size, created on first use and reused."""

    def __init__(self, model: mujoco.MjModel):
        self.model = model
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    def get(self, width: int, height: int) -> mujoco.Renderer:
        key = (width, height)
        if key not in self._renderers:
            self._renderers[key] = mujoco.Renderer(self.model, height=height, width=width)
        return self._renderers[key]

    def rgb(self, data: mujoco.MjData, camera: str | int, width: int, height: int) -> np.ndarray:
        r = self.get(width, height)
        r.update_scene(data, camera=camera)
        return r.render().copy()

    def depth(self, data: mujoco.MjData, camera: str | int, width: int, height: int) -> np.ndarray:
        r = self.get(width, height)
        r.update_scene(data, camera=camera)
        r.enable_depth_rendering()
        try:
            return r.render().astype(np.float32)
        finally:
            r.disable_depth_rendering()

    def rgbd(self, data: mujoco.MjData, camera: str | int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        r = self.get(width, height)
        r.update_scene(data, camera=camera)
        rgb = r.render().copy()
        r.enable_depth_rendering()
        try:
            depth = r.render().astype(np.float32)
        finally:
            r.disable_depth_rendering()
        return rgb, depth

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
