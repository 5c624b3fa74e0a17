"""Depth -> point cloud: geometry is right to the millimetre, downsampling is deterministic."""

import vla_stack.sim  # noqa: F401  (sets MUJOCO_GL=egl before mujoco loads)
import mujoco
import numpy as np
import pytest

from vla_stack import schema
from vla_stack.sim import pointcloud as pc
from vla_stack.sim.cameras import RendererPool, extrinsics, intrinsics
from vla_stack.sim.env import TabletopEnv

BOX_XML = """
<mujoco>
  <visual><global offwidth="160" offheight="120"/><map znear="0.01" zfar="5"/></visual>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1" directional="true"/>
    <geom name="box" type="box" size="0.1 0.08 0.05" pos="0.5 0.1 0.05" euler="0 0 0.3" rgba="0.2 0.8 0.3 1"/>
    <camera name="cam" pos="0.2 -0.2 0.7" xyaxes="XYAXES" fovy="50"/>
  </worldbody>
</mujoco>
"""


def _look_at(pos, target):
    forward = np.subtract(target, pos) / np.linalg.norm(np.subtract(target, pos))
    x = np.cross(forward, [0, 0, 1])
    x /= np.linalg.norm(x)
    return " ".join(f"{v:.6f}" for v in (*x, *np.cross(x, forward)))


def test_points_from_a_known_box_face_lie_on_it():
    model = mujoco.MjModel.from_xml_string(BOX_XML.replace("XYAXES", _look_at([0.2, -0.2, 0.7], [0.5, 0.1, 0.1])))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    intr, extr = intrinsics(model, 0, 160, 120), extrinsics(data, 0)
    pool = RendererPool(model)
    rgb, depth = pool.rgbd(data, "cam", 160, 120)
    pool.close()
    pts, colors = pc.depth_to_cloud(depth, rgb, intr, extr, n_points=256, crop=pc.WorkspaceCrop(z_min_m=0.095))
    # every point above z = 0.095 belongs to the box's top face (z = 0.1), inside its outline
    box = data.geom("box")
    local = (pts - box.xpos) @ box.xmat.reshape(3, 3)
    assert np.abs(local[:, 2] - 0.05).max() < 0.005
    assert np.all(np.abs(local[:, 0]) < 0.1 + 0.005) and np.all(np.abs(local[:, 1]) < 0.08 + 0.005)
    assert np.allclose(colors.mean(axis=0), [0.2, 0.8, 0.3], atol=0.25)  # lit green


def _covering_radius(pts, idx):
    return np.linalg.norm(pts[:, None] - pts[idx][None], axis=2).min(axis=1).max()


def test_fast_fps_covers_the_cloud_as_well_as_the_reference():
    pts = np.random.default_rng(1).random((3000, 3)).astype(np.float32)
    fast, ref = pc.farthest_point_sample(pts, 128), pc.farthest_point_sample_reference(pts, 128)
    assert len(set(fast.tolist())) == 128 and ref[0] == 0
    np.testing.assert_array_equal(fast, pc.farthest_point_sample(pts, 128))  # deterministic
    random = np.random.default_rng(0).choice(len(pts), 128, replace=False)
    assert _covering_radius(pts, fast) < 1.05 * _covering_radius(pts, ref) < 0.7 * _covering_radius(pts, random)


def test_downsample_pads_small_clouds_and_refuses_empty_ones():
    pts = np.random.default_rng(0).random((10, 3)).astype(np.float32)
    idx = pc.downsample(pts, 32)
    assert idx.shape == (32,) and set(idx) == set(range(10))
    with pytest.raises(schema.SchemaError, match="empty"):
        pc.downsample(np.zeros((0, 3), np.float32), 32)


def test_env_cloud_is_in_the_base_frame_above_the_table():
    env = TabletopEnv(task="PutRedInBowl", image_size=64, n_points=256)
    obs, _ = env.reset(seed=3)
    pts, cols = obs[schema.OBS_POINTS], obs[schema.OBS_COLORS]
    assert pts.shape == (256, 3) and cols.shape == (256, 3)
    assert pts[:, 2].min() >= env.crop.z_min_m and np.hypot(pts[:, 0], pts[:, 1]).max() <= env.crop.radius_m
    # some points lie on the red cube: within 3 cm of its centre and red
    red = env.scene.body_pos("red_cube")
    near = np.linalg.norm(pts - red, axis=1) < 0.03
    assert near.sum() >= 1 and cols[near, 0].mean() > cols[near, 2].mean()
    # the exposed calibration re-projects the cloud from depth exactly
    intr, extr = env.cameras["scene"]
    again, _ = pc.backproject(obs[schema.OBS_DEPTH], intr, extr)
    assert np.min(np.linalg.norm(again[:, None, :] - pts[None, :8, :], axis=2), axis=0).max() < 1e-5
    env.close()


def test_one_pass_rgbd_matches_the_two_pass_renderer():
    env = TabletopEnv(task="OpenDrawer", image_size=96, n_points=64)
    env.reset(seed=5)
    pool = env._pool()
    assert not pool.multisampled(96, 96)  # the one-pass path is taken
    fast_rgb, fast_depth = pool.rgbd(env.scene.data, "scene", 96, 96)
    ref_rgb, ref_depth = pool.rgbd_reference(env.scene.data, "scene", 96, 96)
    np.testing.assert_array_equal(fast_rgb, ref_rgb)
    np.testing.assert_allclose(fast_depth, ref_depth, rtol=1e-6)
    assert 0.3 < float(np.median(fast_depth)) < 3.0  # metres, not a raw z-buffer
    env.close()
