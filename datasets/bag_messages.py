"""Decode deserialized ROS 2 messages from a bag (rosbags' dataclasses) into schema arrays.

Duck-typed on field names so it works without rclpy (bags are often converted on machines
with no ROS install). Each decoder checks the wire layout and raises DatasetError naming the
bag, topic and time, because a bag is untrusted input.
"""

from __future__ import annotations

import numpy as np

from vla_stack.datasets.errors import DatasetError

_PF = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}  # sensor_msgs/PointField


class MessageError(DatasetError):
    pass


def stamp_ns(msg) -> int | None:
    header = getattr(msg, "header", None)
    if header is None:
        return None
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def image_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image rgb8 / bgr8 / rgba8 / bgra8 / mono8 -> uint8 (H, W, 3)."""
    enc = msg.encoding.lower()
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(enc)
    if channels is None:
        raise MessageError(f"Image encoding {msg.encoding!r} is not a colour encoding (rgb8, bgr8, rgba8, bgra8, mono8)")
    data = _image_buffer(msg, 1, channels)
    img = data.reshape(msg.height, msg.width, channels)
    if enc.startswith("bgr"):
        img = img[..., [2, 1, 0]]
    elif enc == "mono8":
        img = np.repeat(img, 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def image_depth_m(msg) -> np.ndarray:
    """sensor_msgs/Image 32FC1 (metres) or 16UC1 (millimetres, as RealSense) -> float32 metres."""
    enc = msg.encoding.upper()
    if enc == "32FC1":
        d = _image_buffer(msg, 4, 1).view(">f4" if msg.is_bigendian else "<f4").reshape(msg.height, msg.width)
        return d.astype(np.float32)
    if enc in ("16UC1", "MONO16"):
        d = _image_buffer(msg, 2, 1).view(">u2" if msg.is_bigendian else "<u2").reshape(msg.height, msg.width)
        return d.astype(np.float32) / 1000.0
    raise MessageError(f"depth Image encoding {msg.encoding!r}: expected 32FC1 or 16UC1")


def _image_buffer(msg, bytes_per_channel: int, channels: int) -> np.ndarray:
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row = w * channels * bytes_per_channel
    data = np.asarray(msg.data, np.uint8)
    if h <= 0 or w <= 0 or step < row or data.size < h * step:
        raise MessageError(f"Image {w}x{h} {msg.encoding}: step {step} / {data.size} bytes do not fit")
    return np.ascontiguousarray(data[: h * step].reshape(h, step)[:, :row]).reshape(-1)


def pointcloud_xyz_rgb(msg) -> tuple[np.ndarray, np.ndarray | None]:
    """sensor_msgs/PointCloud2 -> xyz float32 (N, 3), colours (N, 3) in [0, 1] from a packed rgb field."""
    fields = {f.name: f for f in msg.fields}
    for k in ("x", "y", "z"):
        if k not in fields:
            raise MessageError(f"PointCloud2 has no {k!r} field (fields: {sorted(fields)})")
    n = int(msg.width) * int(msg.height)
    step = int(msg.point_step)
    data = np.asarray(msg.data, np.uint8)
    if data.size < n * step:
        raise MessageError(f"PointCloud2: {data.size} bytes for {n} points of {step} bytes")
    end = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in msg.fields:
        if f.name in ("x", "y", "z", "rgb", "rgba"):
            if f.datatype not in _PF or f.offset + np.dtype(_PF[f.datatype]).itemsize > step:
                raise MessageError(f"PointCloud2 field {f.name!r}: bad datatype {f.datatype} or offset {f.offset}")
            names.append(f.name)
            formats.append(end + _PF[f.datatype])
            offsets.append(f.offset)
    rec = np.frombuffer(data[: n * step].tobytes(), np.dtype({"names": names, "formats": formats,
                                                              "offsets": offsets, "itemsize": step}))
    xyz = np.stack([rec["x"], rec["y"], rec["z"]], -1).astype(np.float32)
    keep = np.all(np.isfinite(xyz), axis=1)
    colors = None
    key = "rgb" if "rgb" in names else ("rgba" if "rgba" in names else None)
    if key:
        packed = rec[key].view(end + "u4") if rec[key].dtype.kind == "f" else rec[key].astype(end + "u4")
        colors = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], -1).astype(np.float32) / 255.0
        colors = colors[keep]
    return xyz[keep], colors


def joint_state(msg) -> tuple[list[str], np.ndarray]:
    pos = np.asarray(msg.position, np.float64)
    if len(msg.name) != len(pos):
        raise MessageError(f"JointState: {len(msg.name)} names but {len(pos)} positions")
    if not np.all(np.isfinite(pos)):
        raise MessageError("JointState: non-finite position")
    return list(msg.name), pos


def pose(msg) -> np.ndarray:
    """geometry_msgs/PoseStamped -> position (3) + quaternion w, x, y, z (4)."""
    p, q = msg.pose.position, msg.pose.orientation
    v = np.array([p.x, p.y, p.z, q.w, q.x, q.y, q.z], np.float64)
    if not np.all(np.isfinite(v)):
        raise MessageError("PoseStamped: non-finite value")
    return v


def twist(msg) -> np.ndarray:
    t = msg.twist if hasattr(msg, "twist") else msg
    v = np.array([t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z], np.float64)
    if not np.all(np.isfinite(v)):
        raise MessageError("Twist: non-finite value")
    return v


def float_array(msg) -> np.ndarray:
    v = np.asarray(msg.data, np.float64).reshape(-1)
    if not np.all(np.isfinite(v)):
        raise MessageError("array message: non-finite value")
    return v
