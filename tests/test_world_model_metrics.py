"""PSNR/SSIM (fast path against the textbook reference) and the placement probe geometry."""

import numpy as np
import pytest

from vla_stack.world_model import metrics, probe


def test_ssim_fast_path_matches_the_window_by_window_reference():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-120, 120, a.shape), 0, 255).astype(np.uint8)
    fast = metrics.ssim(a, b)
    ref = [metrics.ssim_reference(a[i], b[i]) for i in range(2)]
    assert np.allclose(fast, ref, atol=1e-9)
    assert metrics.ssim(a, a) == pytest.approx([1.0, 1.0])
    assert (fast < 0.95).all()


def test_psnr_of_a_known_error():
    a = np.zeros((1, 8, 8, 3), np.uint8)
    b = np.full((1, 8, 8, 3), 16, np.uint8)  # mse 256 -> 10 log10(255^2 / 256)
    assert metrics.psnr(a, b)[0] == pytest.approx(10 * np.log10(255**2 / 256))
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(a, b[:, :4])


def _camera(size=32, f=40.0):
    k = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1]])  # pixel centres at integers
    # camera 1 m above the base origin looking straight down: optical z = -base z, x = base x, y = -base y
    ext = np.eye(4)
    ext[:3, :3] = np.diag([1.0, -1.0, -1.0])
    ext[:3, 3] = [0.0, 0.0, 1.0]
    return k, ext


def test_backprojection_puts_a_flat_table_at_height_zero():
    k, ext = _camera()
    pts = probe.backproject(np.ones((32, 32), np.float32), k, ext)
    assert pts.shape == (32 * 32, 3)
    assert np.allclose(pts[:, 2], 0.0)
    assert abs(pts[:, 0].mean()) < 1e-9 and pts[:, 0].max() == pytest.approx(15.5 / 40)  # last pixel centre: (31 - 15.5) / f


def test_probe_finds_a_coloured_block_where_it_is():
    k, ext = _camera()
    rgb = np.full((32, 32, 3), 128, np.uint8)  # grey table: no hue, never matches
    depth = np.ones((32, 32), np.float32)
    rgb[20:24, 8:12] = (200, 30, 30)  # shaded red block, 5 cm tall
    rgb[4:8, 4:8] = (30, 30, 200)  # a blue distractor
    depth[20:24, 8:12] = 0.95
    red = np.array([1.0, 0.15, 0.15])
    found = probe.locate(rgb, depth, red, k, ext)
    u, v = 9.5, 21.5  # block centre in pixels (pixels 8..11, 20..23)
    expected = np.array([(u - 15.5) * 0.95 / 40, -(v - 15.5) * 0.95 / 40, 0.05])
    assert np.linalg.norm(found - expected) < 0.01
    assert probe.locate(rgb, depth, np.array([0.1, 0.8, 0.1]), k, ext) is None  # no green object


def test_centre_offset_moves_the_surface_estimate_along_the_viewing_ray():
    k, ext = _camera()
    rgb = np.full((32, 32, 3), 128, np.uint8)
    depth = np.ones((32, 32), np.float32)
    rgb[14:18, 14:18] = (200, 30, 30)  # a red block straight below the camera, top face at z = 0.05
    depth[14:18, 14:18] = 0.95
    top = probe.locate(rgb, depth, np.array([1.0, 0.15, 0.15]), k, ext)
    centre = probe.locate(rgb, depth, np.array([1.0, 0.15, 0.15]), k, ext, centre_offset_m=0.02)
    assert top[2] == pytest.approx(0.05, abs=1e-6) and centre[2] == pytest.approx(0.03, abs=1e-4)
    # a disc over the block hides it, as the probe does for the (same-coloured) button
    assert probe.locate(rgb, depth, np.array([1.0, 0.15, 0.15]), k, ext, np.array([[0.0, 0.0, 0.06]])) is None
