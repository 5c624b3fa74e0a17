"""recorder_node: record the graph's topics into a rosbag2 directory with MCAP storage.

rosbag2_py is not on PyPI, so the bag is written with the pure-Python `rosbags` writer from
the CDR bytes rclpy already has (`serialize_message`): `ros2 bag play` / `ros2 bag info`
read it, and so does the dataset importer. Messages are written in arrival order with the
receive time as the bag timestamp, as `ros2 bag record` does.

Recording into the project's LeRobot dataset format directly is `vla record` (datasets).
"""

from __future__ import annotations

from pathlib import Path

from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from std_msgs.msg import Bool, Float64, String

from vla_stack.ros2_nodes import node_util, qos

#: topic (relative, remappable) -> (message class, QoS the publisher uses)
TOPICS = {
    "points": (PointCloud2, qos.SENSOR), "rgb": (Image, qos.SENSOR), "depth": (Image, qos.SENSOR),
    "camera_info": (CameraInfo, qos.SENSOR), "joint_states": (JointState, qos.SENSOR),
    "ee_pose": (PoseStamped, qos.SENSOR), "cmd_twist": (TwistStamped, qos.COMMAND),
    "gripper_cmd": (Float64, qos.COMMAND), "instruction": (String, qos.LATCHED), "subtask": (String, qos.LATCHED),
    "estop": (Bool, qos.LATCHED), "safety_status": (String, qos.LATCHED),
}


def ros_type_name(cls) -> str:
    module = cls.__module__.split(".")  # e.g. sensor_msgs.msg._point_cloud2
    return f"{module[0]}/msg/{cls.__name__}"


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        path = node_util.declare(self, "path", "outputs/recordings/session",
                                 "output rosbag2 directory (must not exist yet)",
                                 check=lambda v: "exists already" if v and Path(v).exists() else None)
        topics = node_util.declare(self, "topics", list(TOPICS), f"topics to record, any of {list(TOPICS)}",
                                   check=lambda v: f"unknown {sorted(set(v) - set(TOPICS))}" if set(v) - set(TOPICS) else None)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        typestore = get_typestore(Stores.LATEST)
        self.counts: dict[str, int] = {}
        for name in topics:
            cls, profile = TOPICS[name]
            resolved = self.resolve_topic_name(name)
            conn = self.writer.add_connection(resolved, ros_type_name(cls), typestore=typestore)
            self.counts[resolved] = 0
            self.create_subscription(cls, name, lambda msg, c=conn, t=resolved: self.write(c, t, msg), profile)
        self.get_logger().info(f"recording {len(topics)} topic(s) to {self.path}")

    def write(self, conn, topic: str, msg) -> None:
        self.writer.write(conn, self.get_clock().now().nanoseconds, serialize_message(msg))
        self.counts[topic] += 1

    def close(self) -> None:
        self.writer.close()
        self.get_logger().info(f"wrote {self.path}: {self.counts}")


def main(args: list[str] | None = None) -> int:
    return node_util.run(RecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
