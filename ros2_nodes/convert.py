"""ROS message <-> numpy conversions at the boundary of every node.

Messages from a robot or a bag are untrusted input: every decoder checks the layout it is
given (field offsets, steps, buffer sizes, encodings, finiteness) and raises
`schema.SchemaError` naming the message and what was wrong, so a node can log it and keep
running instead of crashing or feeding garbage to a model. cv_bridge and sensor_msgs_py are
not available from PyPI, so this is the one place that knows the wire layouts.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2, PointField

from vla_stack import schema
from vla_stack.schema import SchemaError

#: Upper bound on points accepted from one PointCloud2 (a 640x480 organized cloud is 307k).
DEFAULT_MAX_POINTS = 1_000_000

# ---------------------------------------------------------------------------------------
# Time stamps
# ---------------------------------------------------------------------------------------


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


# ---------------------------------------------------------------------------------------
# PointCloud2 (xyz float32 + PCL-style packed rgb float32)
# ---------------------------------------------------------------------------------------

_POINTFIELD_DTYPES = {
    PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2", PointField.UINT16: "u2",
    PointField.INT32: "i4", PointField.UINT32: "u4", PointField.FLOAT32: "f4", PointField.FLOAT64: "f8",
}


def _field_dtype(f: PointField, big_endian: bool) -> np.dtype:
    if f.datatype not in _POINTFIELD_DTYPES:
        raise SchemaError(f"PointCloud2: field {f.name!r} has unknown datatype {f.datatype}")
    if f.count != 1:
        raise SchemaError(f"PointCloud2: field {f.name!r} has count {f.count}, expected 1")
    return np.dtype(_POINTFIELD_DTYPES[f.datatype]).newbyteorder(">" if big_endian else "<")


def pointcloud2_to_numpy(msg: PointCloud2, *, skip_nans: bool = False,
                         max_points: int = DEFAULT_MAX_POINTS) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode xyz (N, 3) float32 and, when an `rgb`/`rgba` field exists, colours (N, 3) in [0, 1].

    Organized clouds are flattened row-major. Non-finite xyz raises unless `skip_nans`
    (then those points are dropped, as sensor_msgs_py's read_points does).
    """
    h, w, step, row_step = int(msg.height), int(msg.width), int(msg.point_step), int(msg.row_step)
    n = h * w
    if n == 0:
        raise SchemaError("PointCloud2: empty cloud (height * width == 0)")
    if n > max_points:
        raise SchemaError(f"PointCloud2: {n} points, more than the limit of {max_points}")
    fields = {f.name: f for f in msg.fields}
    missing = [c for c in "xyz" if c not in fields]
    if missing:
        raise SchemaError(f"PointCloud2: missing field(s) {missing}; has {sorted(fields)}")
    if step <= 0 or row_step < w * step:
        raise SchemaError(f"PointCloud2: row_step {row_step} < width {w} * point_step {step}")
    buf = np.frombuffer(msg.data, np.uint8)
    if buf.size != row_step * h:
        raise SchemaError(f"PointCloud2: data has {buf.size} bytes, expected row_step * height = {row_step * h}")
    names, formats, offsets = [], [], []
    for name in ("x", "y", "z", "rgb", "rgba"):
        if name not in fields:
            continue
        f = fields[name]
        dt = _field_dtype(f, bool(msg.is_bigendian))
        if f.offset < 0 or f.offset + dt.itemsize > step:
            raise SchemaError(f"PointCloud2: field {name!r} at offset {f.offset} (+{dt.itemsize} bytes) "
                              f"lies outside point_step {step}")
        if name in "xyz" and dt.kind != "f":
            raise SchemaError(f"PointCloud2: field {name!r} must be FLOAT32 or FLOAT64, got {dt}")
        if name.startswith("rgb") and dt.itemsize != 4:
            raise SchemaError(f"PointCloud2: field {name!r} must be 4 bytes (packed 0x00RRGGBB), got {dt}")
        names.append(name)
        formats.append(dt if name in "xyz" else np.dtype("u4").newbyteorder(dt.byteorder))
        offsets.append(f.offset)
    rec_dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": step})
    rows = buf.reshape(h, row_step)[:, : w * step]
    rec = np.ascontiguousarray(rows).view(rec_dtype).reshape(-1)
    xyz = np.stack([rec["x"], rec["y"], rec["z"]], axis=-1).astype(np.float32)
    colors = None
    colour_field = "rgb" if "rgb" in names else ("rgba" if "rgba" in names else None)
    if colour_field:
        packed = rec[colour_field].astype(np.uint32)
        colors = np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], -1).astype(np.float32) / 255.0
    finite = np.isfinite(xyz).all(axis=1)
    if not finite.all():
        if not skip_nans:
            raise SchemaError(f"PointCloud2: {int((~finite).sum())} of {n} points have NaN/inf coordinates")
        xyz = xyz[finite]
        colors = colors[finite] if colors is not None else None
    return xyz, colors


def numpy_to_pointcloud2(points: np.ndarray, colors: np.ndarray | None = None, *, frame_id: str = "base",
                         stamp: Time | None = None) -> PointCloud2:
    """Encode an unorganized cloud: x, y, z float32 (+ packed rgb float32), little endian."""
    pts = schema.check_array("points", points, (None, 3), finite=False)
    n = pts.shape[0]
    fields = [PointField(name=c, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, c in enumerate("xyz")]
    if colors is not None:
        cols = schema.check_array("colors", colors, (n, 3))
        rgb8 = (np.clip(cols, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint32)
        packed = (rgb8[:, 0] << 16) | (rgb8[:, 1] << 8) | rgb8[:, 2]
        fields.append(PointField(name="rgb", offset=12, datatype=PointField.FLOAT32, count=1))
        rec = np.empty(n, np.dtype([("xyz", "<f4", (3,)), ("rgb", "<u4")]))
        rec["xyz"], rec["rgb"] = pts, packed
    else:
        rec = np.empty(n, np.dtype([("xyz", "<f4", (3,))]))
        rec["xyz"] = pts
    msg = PointCloud2()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.height, msg.width = 1, n
    msg.fields = fields
    msg.is_bigendian = False
    msg.point_step = rec.dtype.itemsize
    msg.row_step = msg.point_step * n
    msg.is_dense = bool(np.isfinite(pts).all())
    msg.data = rec.tobytes()
    return msg


# ---------------------------------------------------------------------------------------
# Image
# ---------------------------------------------------------------------------------------

#: encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS = {
    "rgb8": ("u1", 3), "bgr8": ("u1", 3), "mono8": ("u1", 1), "32FC1": ("f4", 1), "16UC1": ("u2", 1),
}


def image_to_numpy(msg: Image, *, max_pixels: int = 16_000_000) -> np.ndarray:
    """(H, W, C) for colour encodings, (H, W) for single channel, in the message's own encoding."""
    enc = msg.encoding
    if enc not in IMAGE_ENCODINGS:
        raise SchemaError(f"Image: unsupported encoding {enc!r}; supported: {sorted(IMAGE_ENCODINGS)}")
    base, ch = IMAGE_ENCODINGS[enc]
    dt = np.dtype(base).newbyteorder(">" if msg.is_bigendian else "<")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h * w == 0:
        raise SchemaError(f"Image: empty image ({h}x{w})")
    if h * w > max_pixels:
        raise SchemaError(f"Image: {h}x{w} pixels, more than the limit of {max_pixels}")
    row_bytes = w * ch * dt.itemsize
    if step < row_bytes:
        raise SchemaError(f"Image: step {step} < width {w} * {ch} channel(s) * {dt.itemsize} bytes")
    buf = np.frombuffer(msg.data, np.uint8)
    if buf.size != step * h:
        raise SchemaError(f"Image: data has {buf.size} bytes, expected step * height = {step * h}")
    rows = np.ascontiguousarray(buf.reshape(h, step)[:, :row_bytes])
    img = rows.view(dt).reshape(h, w, ch).astype(dt.newbyteorder("="))
    return img[..., 0] if ch == 1 else img


def image_to_rgb(msg: Image) -> np.ndarray:
    """uint8 (H, W, 3) RGB from rgb8, bgr8 or mono8."""
    img = image_to_numpy(msg)
    if msg.encoding == "rgb8":
        return img
    if msg.encoding == "bgr8":
        return np.ascontiguousarray(img[..., ::-1])
    if msg.encoding == "mono8":
        return np.repeat(img[..., None], 3, axis=-1)
    raise SchemaError(f"Image: encoding {msg.encoding!r} is not a colour image")


def image_to_depth_m(msg: Image) -> np.ndarray:
    """float32 (H, W) metres from 32FC1 (metres) or 16UC1 (millimetres, 0 = no reading -> NaN)."""
    img = image_to_numpy(msg)
    if msg.encoding == "32FC1":
        return img.astype(np.float32)
    if msg.encoding == "16UC1":
        depth = img.astype(np.float32) / 1000.0
        depth[img == 0] = np.nan
        return depth
    raise SchemaError(f"Image: encoding {msg.encoding!r} is not a depth image (32FC1 or 16UC1)")


def numpy_to_image(img: np.ndarray, encoding: str, *, frame_id: str = "camera",
                   stamp: Time | None = None) -> Image:
    if encoding not in IMAGE_ENCODINGS:
        raise SchemaError(f"Image: unsupported encoding {encoding!r}; supported: {sorted(IMAGE_ENCODINGS)}")
    base, ch = IMAGE_ENCODINGS[encoding]
    arr = np.asarray(img)
    expected_ndim = 3 if ch > 1 else 2
    if arr.ndim != expected_ndim or (ch > 1 and arr.shape[2] != ch):
        raise SchemaError(f"Image: {encoding} needs shape (H, W{', %d' % ch if ch > 1 else ''}), got {arr.shape}")
    if arr.dtype != np.dtype(base):
        raise SchemaError(f"Image: {encoding} needs dtype {np.dtype(base)}, got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.dtype(base).newbyteorder("<"))
    msg = Image()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.height, msg.width = arr.shape[0], arr.shape[1]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = arr.shape[1] * ch * arr.dtype.itemsize
    msg.data = arr.tobytes()
    return msg


# ---------------------------------------------------------------------------------------
# CameraInfo, JointState, PoseStamped
# ---------------------------------------------------------------------------------------


def intrinsics_to_camera_info(k: schema.CameraIntrinsics, *, frame_id: str = "camera",
                              stamp: Time | None = None) -> CameraInfo:
    msg = CameraInfo()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.width, msg.height = int(k.width), int(k.height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def camera_info_to_intrinsics(msg: CameraInfo) -> schema.CameraIntrinsics:
    kk = np.asarray(msg.k, np.float64)
    if msg.width <= 0 or msg.height <= 0:
        raise SchemaError(f"CameraInfo: image size {msg.width}x{msg.height} is empty")
    if not np.isfinite(kk).all() or kk[0] <= 0 or kk[4] <= 0:
        raise SchemaError(f"CameraInfo: K must be finite with positive focal lengths, got {kk.tolist()}")
    return schema.CameraIntrinsics(width=int(msg.width), height=int(msg.height),
                                   fx=float(kk[0]), fy=float(kk[4]), cx=float(kk[2]), cy=float(kk[5]))


def joint_state_to_numpy(msg: JointState, expected_names: list[str] | None = None) -> np.ndarray:
    """Joint positions (n,) float32, reordered to `expected_names` when given."""
    pos = np.asarray(msg.position, np.float64)
    if len(msg.name) != pos.size:
        raise SchemaError(f"JointState: {len(msg.name)} names but {pos.size} positions")
    if not np.isfinite(pos).all():
        raise SchemaError(f"JointState: non-finite position(s) for {[n for n, p in zip(msg.name, pos) if not np.isfinite(p)]}")
    if expected_names is None:
        return pos.astype(np.float32)
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in expected_names if n not in index]
    if missing:
        raise SchemaError(f"JointState: missing joint(s) {missing}; has {list(msg.name)}")
    return pos[[index[n] for n in expected_names]].astype(np.float32)


def numpy_to_joint_state(names: list[str], positions: np.ndarray, *, stamp: Time | None = None) -> JointState:
    pos = schema.check_array("joint positions", positions, (len(names),))
    msg = JointState()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = pos.astype(np.float64).tolist()
    return msg


def pose_to_numpy(msg: PoseStamped) -> tuple[np.ndarray, np.ndarray]:
    """Position (3,) and the schema's w, x, y, z quaternion (4,), unit norm checked."""
    p, q = msg.pose.position, msg.pose.orientation
    pos = np.array([p.x, p.y, p.z], np.float32)
    quat = np.array([q.w, q.x, q.y, q.z], np.float32)
    if not (np.isfinite(pos).all() and np.isfinite(quat).all()):
        raise SchemaError("PoseStamped: non-finite position or orientation")
    norm = float(np.linalg.norm(quat))
    if abs(norm - 1.0) > 1e-3:
        raise SchemaError(f"PoseStamped: orientation quaternion has norm {norm:.4f}, expected 1")
    return pos, quat / norm


def numpy_to_pose(pos: np.ndarray, quat_wxyz: np.ndarray, *, frame_id: str = "base",
                  stamp: Time | None = None) -> PoseStamped:
    pos = schema.check_array("ee_pos", pos, (3,))
    q = schema.check_array("ee_quat", quat_wxyz, (4,))
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pos)
    msg.pose.orientation.w, msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z = (
        float(v) for v in q)
    return msg


def twist_to_numpy(msg: TwistStamped) -> np.ndarray:
    """Linear (3, m/s) then angular (3, rad/s) velocity, finiteness checked."""
    t, r = msg.twist.linear, msg.twist.angular
    v = np.array([t.x, t.y, t.z, r.x, r.y, r.z])
    if not np.isfinite(v).all():
        raise SchemaError("TwistStamped: non-finite velocity")
    return v


def numpy_to_twist(velocity: np.ndarray, *, frame_id: str = "base", stamp: Time | None = None) -> TwistStamped:
    schema.check_array("twist velocity", velocity, (6,))
    v = np.asarray(velocity, np.float64)
    msg = TwistStamped()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(x) for x in v[:3])
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(x) for x in v[3:])
    return msg
