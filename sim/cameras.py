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


#: Multisampling (4x) for renders up to this many pixels a side. On a software rasteriser
#: it costs about as much as the rest of a 128x128 frame, but at small sizes, where one
#: pixel spans a centimetre and aliased edges hurt (video compression, learned models),
#: it is nearly free.
MSAA_MAX_SIDE_PX = 64


class RendererPool:
    """One mujoco.Renderer per image size, created on first use and reused."""

    def __init__(self, model: mujoco.MjModel, msaa_max_side_px: int = MSAA_MAX_SIDE_PX):
        self.model = model
        self.msaa_max_side_px = msaa_max_side_px
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    def get(self, width: int, height: int) -> mujoco.Renderer:
        key = (width, height)
        if key not in self._renderers:
            quality = self.model.vis.quality
            saved = quality.offsamples
            quality.offsamples = 4 if max(width, height) <= self.msaa_max_side_px else 0  # read at creation
            try:
                self._renderers[key] = mujoco.Renderer(self.model, height=height, width=width)
            finally:
                quality.offsamples = saved
        return self._renderers[key]

    def multisampled(self, width: int, height: int) -> bool:
        return max(width, height) <= self.msaa_max_side_px

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
        """RGB and metric depth from ONE render pass (both buffers read back together).

        `mujoco.Renderer` renders twice for this (once per mode); reading both buffers of a
        single `mjr_render` halves the cost on a software rasteriser. `rgbd_reference` is
        the two-pass path it is tested against.
        """
        r = self.get(width, height)
        needed = ("_rect", "_scene", "_mjr_context", "_gl_context")
        # the depth of a multisampled buffer does not read back resolved: small (multisampled)
        # renders, and other mujoco versions, take the public two-pass path
        if self.multisampled(width, height) or not all(hasattr(r, a) for a in needed):
            return self.rgbd_reference(data, camera, width, height)
        r.update_scene(data, camera=camera)
        if r._gl_context:
            r._gl_context.make_current()
        rgb = np.empty((height, width, 3), np.uint8)
        zbuf = np.empty((height, width), np.float32)
        mujoco.mjr_render(r._rect, r._scene, r._mjr_context)
        mujoco.mjr_readPixels(rgb, zbuf, r._rect, r._mjr_context)
        return np.flipud(rgb).copy(), np.flipud(self._metric_depth(zbuf)).copy()

    def _metric_depth(self, zbuf: np.ndarray) -> np.ndarray:
        """Reverse-Z depth buffer -> metres along the optical axis (as mujoco.Renderer does)."""
        extent = self.model.stat.extent
        znear = np.float32(self.model.vis.map.znear * extent)
        zfar = np.float32(self.model.vis.map.zfar * extent)
        c = np.float32(-0.5) * (-(zfar + znear) / (zfar - znear)) - np.float32(0.5)
        d = np.float32(-0.5) * (-(np.float32(2) * zfar * znear) / (zfar - znear))
        return (d / (zbuf.astype(np.float64) + c)).astype(np.float32)

    def rgbd_reference(self, data: mujoco.MjData, camera: str | int, width: int, height: int
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Two render passes through the public `mujoco.Renderer` API."""
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
