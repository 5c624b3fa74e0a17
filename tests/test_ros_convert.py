"""Message conversions: round trips for any valid content, clear errors for malformed messages."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

pytest.importorskip("rclpy")
from sensor_msgs.msg import CameraInfo, JointState, PointCloud2, PointField  # noqa: E402

from vla_stack import schema  # noqa: E402
from vla_stack.ros2_nodes import convert  # noqa: E402

pytestmark = pytest.mark.ros
finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(pts=arrays(np.float32, st.tuples(st.integers(1, 64), st.just(3)), elements=finite),
       with_colors=st.booleans(), data=st.data())
def test_pointcloud2_round_trips_xyz_and_rgb(pts, with_colors, data):
    cols = None
    if with_colors:
        rgb8 = data.draw(arrays(np.uint8, (len(pts), 3)))
        cols = rgb8.astype(np.float32) / 255.0
    msg = convert.numpy_to_pointcloud2(pts, cols)
    xyz, back_cols = convert.pointcloud2_to_numpy(msg)
    np.testing.assert_array_equal(xyz, pts)
    if with_colors:
        np.testing.assert_allclose(back_cols, cols, atol=1e-6)
    else:
        assert back_cols is None


def _cloud(fields, point_step, n, *, big=False, extra=0):
    msg = PointCloud2(height=1, width=n, point_step=point_step, row_step=point_step * n, is_bigendian=big)
    msg.fields = [PointField(name=nm, offset=o, datatype=dt, count=1) for nm, o, dt in fields]
    msg.data = bytes(point_step * n + extra)
    return msg


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 20), pad=st.integers(0, 12), big=st.booleans())
def test_pointcloud2_reads_foreign_layouts_padding_and_endianness(n, pad, big):
    """A driver's cloud: float64 xyz at odd offsets, padding, either byte order."""
    rng = np.random.default_rng(n)
    pts = rng.normal(size=(n, 3))
    order = ">" if big else "<"
    dt = np.dtype({"names": ["z", "x", "y"], "formats": [order + "f8"] * 3, "offsets": [pad, pad + 8, pad + 16],
                   "itemsize": pad + 24 + 3})
    rec = np.zeros(n, dt)
    rec["x"], rec["y"], rec["z"] = pts.T
    msg = _cloud([("z", pad, PointField.FLOAT64), ("x", pad + 8, PointField.FLOAT64),
                  ("y", pad + 16, PointField.FLOAT64)], dt.itemsize, n, big=big)
    msg.data = rec.tobytes()
    xyz, cols = convert.pointcloud2_to_numpy(msg)
    np.testing.assert_allclose(xyz, pts.astype(np.float32))
    assert cols is None


def test_organized_cloud_with_row_padding_is_flattened_row_major():
    h, w = 2, 3
    pts = np.arange(h * w * 3, dtype=np.float32).reshape(h * w, 3)
    row = np.zeros((h, 12 * w + 4), np.uint8)
    row[:, : 12 * w] = pts.reshape(h, w * 3).view(np.uint8)
    msg = _cloud([("x", 0, 7), ("y", 4, 7), ("z", 8, 7)], 12, w)
    msg.height, msg.width, msg.row_step = h, w, 12 * w + 4
    msg.data = row.tobytes()
    np.testing.assert_array_equal(convert.pointcloud2_to_numpy(msg)[0], pts)


@pytest.mark.parametrize("mutate, message", [
    (lambda m: setattr(m, "width", 0), "empty cloud"),
    (lambda m: setattr(m, "fields", m.fields[:2]), r"missing field\(s\) \['z'\]"),
    (lambda m: setattr(m, "data", bytes(len(m.data) - 1)), "data has 191 bytes, expected"),
    (lambda m: setattr(m, "row_step", 10), "row_step 10 < width"),
    (lambda m: setattr(m.fields[2], "offset", 10), "'z' at offset 10"),
    (lambda m: setattr(m.fields[0], "datatype", PointField.UINT16), "'x' must be FLOAT32 or FLOAT64"),
    (lambda m: setattr(m.fields[1], "datatype", 42), "unknown datatype 42"),
    (lambda m: setattr(m.fields[1], "count", 3), "count 3"),
])
def test_malformed_pointcloud2_is_refused_with_a_named_reason(mutate, message):
    msg = convert.numpy_to_pointcloud2(np.zeros((16, 3), np.float32))
    mutate(msg)
    with pytest.raises(schema.SchemaError, match=message):
        convert.pointcloud2_to_numpy(msg)


def test_nan_points_raise_or_are_dropped_on_request():
    pts = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    pts[[3, 7], 1] = np.nan
    msg = convert.numpy_to_pointcloud2(pts)
    with pytest.raises(schema.SchemaError, match="2 of 20 points have NaN"):
        convert.pointcloud2_to_numpy(msg)
    xyz, _ = convert.pointcloud2_to_numpy(msg, skip_nans=True)
    assert xyz.shape == (18, 3) and np.isfinite(xyz).all()


def test_oversized_cloud_is_refused_before_decoding():
    msg = _cloud([("x", 0, 7), ("y", 4, 7), ("z", 8, 7)], 12, 10)
    with pytest.raises(schema.SchemaError, match="more than the limit of 5"):
        convert.pointcloud2_to_numpy(msg, max_points=5)


@settings(max_examples=30, deadline=None)
@given(enc=st.sampled_from(sorted(convert.IMAGE_ENCODINGS)), h=st.integers(1, 9), w=st.integers(1, 9), data=st.data())
def test_image_round_trips_every_supported_encoding(enc, h, w, data):
    base, ch = convert.IMAGE_ENCODINGS[enc]
    shape = (h, w, ch) if ch > 1 else (h, w)
    elements = finite if base == "f4" else None
    img = data.draw(arrays(np.dtype(base), shape, elements=elements))
    back = convert.image_to_numpy(convert.numpy_to_image(img, enc))
    np.testing.assert_array_equal(back, img)


def test_image_helpers_give_rgb_and_metric_depth():
    rgb = np.random.default_rng(1).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    bgr_msg = convert.numpy_to_image(np.ascontiguousarray(rgb[..., ::-1]), "bgr8")
    np.testing.assert_array_equal(convert.image_to_rgb(bgr_msg), rgb)
    mm = np.array([[0, 1000], [250, 65535]], np.uint16)
    depth = convert.image_to_depth_m(convert.numpy_to_image(mm, "16UC1"))
    assert np.isnan(depth[0, 0]) and depth[0, 1] == 1.0 and depth[1, 0] == 0.25


def test_big_endian_and_row_padded_image_is_read():
    img = np.arange(12, dtype=np.uint16).reshape(3, 4)
    rows = np.zeros((3, 10), np.uint8)
    rows[:, :8] = img.astype(">u2").view(np.uint8).reshape(3, 8)
    msg = convert.numpy_to_image(np.zeros((3, 4), np.uint16), "16UC1")
    msg.is_bigendian, msg.step, msg.data = 1, 10, rows.tobytes()
    np.testing.assert_array_equal(convert.image_to_numpy(msg), img)


@pytest.mark.parametrize("mutate, message", [
    (lambda m: setattr(m, "encoding", "yuv422"), "unsupported encoding 'yuv422'"),
    (lambda m: setattr(m, "height", 0), "empty image"),
    (lambda m: setattr(m, "step", 3), "step 3 < width 4"),
    (lambda m: setattr(m, "data", bytes(5)), "data has 5 bytes"),
    (lambda m: (setattr(m, "height", 100_000), setattr(m, "width", 100_000)), "more than the limit"),
])
def test_malformed_image_is_refused_with_a_named_reason(mutate, message):
    msg = convert.numpy_to_image(np.zeros((2, 4, 3), np.uint8), "rgb8")
    mutate(msg)
    with pytest.raises(schema.SchemaError, match=message):
        convert.image_to_numpy(msg)


def test_wrong_array_for_encoding_is_refused():
    with pytest.raises(schema.SchemaError, match=r"rgb8 needs shape \(H, W, 3\)"):
        convert.numpy_to_image(np.zeros((4, 4), np.uint8), "rgb8")
    with pytest.raises(schema.SchemaError, match="32FC1 needs dtype float32"):
        convert.numpy_to_image(np.zeros((4, 4), np.float64), "32FC1")


def test_camera_info_round_trips_and_rejects_zero_focal_length():
    k = schema.CameraIntrinsics(width=128, height=96, fx=100.0, fy=101.0, cx=64.0, cy=48.0)
    info = convert.intrinsics_to_camera_info(k)
    assert convert.camera_info_to_intrinsics(info) == k
    bad = CameraInfo(width=128, height=96)
    with pytest.raises(schema.SchemaError, match="positive focal lengths"):
        convert.camera_info_to_intrinsics(bad)


def test_joint_state_is_reordered_by_name_and_checked():
    msg = convert.numpy_to_joint_state(["b", "a", "g"], np.array([2.0, 1.0, 0.04]))
    np.testing.assert_array_equal(convert.joint_state_to_numpy(msg, ["a", "b"]), [1.0, 2.0])
    with pytest.raises(schema.SchemaError, match=r"missing joint\(s\) \['c'\]"):
        convert.joint_state_to_numpy(msg, ["a", "c"])
    with pytest.raises(schema.SchemaError, match="2 names but 3 positions"):
        convert.joint_state_to_numpy(JointState(name=["a", "b"], position=[1.0, 2.0, 3.0]))
    with pytest.raises(schema.SchemaError, match=r"non-finite position\(s\) for \['b'\]"):
        convert.joint_state_to_numpy(JointState(name=["a", "b"], position=[1.0, float("nan")]))


@settings(max_examples=30, deadline=None)
@given(pos=arrays(np.float32, 3, elements=finite),
       q=arrays(np.float32, 4, elements=st.floats(-1, 1, width=32)).filter(lambda q: np.linalg.norm(q) > 0.1))
def test_pose_round_trips_with_wxyz_quaternion(pos, q):
    q = (q / np.linalg.norm(q)).astype(np.float32)
    p2, q2 = convert.pose_to_numpy(convert.numpy_to_pose(pos, q))
    np.testing.assert_allclose(p2, pos)
    np.testing.assert_allclose(q2, q, atol=1e-6)


def test_pose_with_unnormalised_quaternion_is_refused():
    msg = convert.numpy_to_pose(np.zeros(3), np.array([1.0, 0, 0, 0]))
    msg.pose.orientation.w = 2.0
    with pytest.raises(schema.SchemaError, match="norm 2.0000"):
        convert.pose_to_numpy(msg)


@settings(max_examples=30, deadline=None)
@given(v=arrays(np.float64, 6, elements=st.floats(-1e3, 1e3, allow_nan=False)))
def test_twist_round_trips_linear_then_angular_velocity(v):
    msg = convert.numpy_to_twist(v, frame_id="base")
    assert msg.header.frame_id == "base" and msg.twist.angular.x == v[3]
    np.testing.assert_array_equal(convert.twist_to_numpy(msg), v)


def test_twist_with_nan_is_refused():
    msg = convert.numpy_to_twist(np.zeros(6))
    msg.twist.linear.y = float("nan")
    with pytest.raises(schema.SchemaError, match="TwistStamped: non-finite velocity"):
        convert.twist_to_numpy(msg)

