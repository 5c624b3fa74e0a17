"""teleop_node: a person drives the end effector (twist topic or keyboard) through the safety layer.

Teleoperation is how demonstrations are recorded on a robot, so it goes through the same
`SafetyFilter` as the policy: a joystick that sticks or a driver that stops publishing ends
in zero motion, not in a runaway arm. Input: `teleop_twist` (geometry_msgs/TwistStamped,
velocities in the base frame) and `teleop_gripper` (Float64), or keys on stdin with
`keyboard:=true` (w/s x, a/d y, r/f z, space stop, o/c open/close). Needs `ee_pose` for the
workspace limit. Output: `cmd_twist`, `gripper_cmd`, like the action expert.
"""

from __future__ import annotations

import select
import sys
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from std_msgs.msg import Bool, Empty, Float64, String

from vla_stack import schema
from vla_stack.ros2_nodes import convert, node_util, qos
from vla_stack.ros2_nodes.safety import SafetyConfig, SafetyFilter

KEYS = {"w": (0, 1), "s": (0, -1), "a": (1, 1), "d": (1, -1), "r": (2, 1), "f": (2, -1)}


class TeleopNode(Node):
    def __init__(self) -> None:
        super().__init__("teleop")
        cfg = node_util.declare_safety(self)
        self.keyboard = node_util.declare(self, "keyboard", False, "read keys from stdin instead of teleop_twist")
        self.key_speed = node_util.declare(self, "key_speed_mps", 0.05, "speed of one key press (m/s)",
                                           low=1e-3, high=1.0)
        self.base_frame = node_util.declare(self, "base_frame", "base", "frame of the robot base")
        self.safety = SafetyFilter(SafetyConfig(**{**cfg.__dict__, "required_inputs": ("teleop", "ee_pose")}))
        self.dt = 1.0 / cfg.control_rate_hz
        self.velocity = np.zeros(6)
        self.gripper = schema.GRIPPER_OPEN
        self.ee_pos = None
        self.create_subscription(TwistStamped, "teleop_twist", self.on_twist, qos.COMMAND)
        self.create_subscription(Float64, "teleop_gripper", self.on_gripper, qos.COMMAND)
        self.create_subscription(PoseStamped, "ee_pose", self.on_ee_pose, qos.SENSOR)
        self.create_subscription(Bool, "estop", lambda m: m.data and self.safety.estop("estop topic"), qos.LATCHED)
        self.create_subscription(Empty, "estop_reset", lambda _m: self.safety.release_estop(), qos.COMMAND)
        self.twist_pub = self.create_publisher(TwistStamped, "cmd_twist", qos.COMMAND)
        self.gripper_pub = self.create_publisher(Float64, "gripper_cmd", qos.COMMAND)
        self.status_pub = self.create_publisher(String, "safety_status", qos.LATCHED)
        self._last_status = None
        self.create_timer(self.dt, self.tick)

    def on_twist(self, msg: TwistStamped) -> None:
        try:
            self.velocity = convert.twist_to_numpy(msg)
        except schema.SchemaError as e:
            self.get_logger().error(f"rejected teleop twist: {e}", throttle_duration_sec=1.0)
            self.safety.watchdog.invalidate("teleop")
            return
        self.safety.watchdog.feed("teleop", time.monotonic())

    def on_gripper(self, msg: Float64) -> None:
        self.gripper = float(msg.data)

    def on_ee_pose(self, msg: PoseStamped) -> None:
        try:
            self.ee_pos, _ = convert.pose_to_numpy(msg)
            self.safety.watchdog.feed("ee_pose", time.monotonic())
        except schema.SchemaError as e:
            self.ee_pos = None
            self.get_logger().error(f"rejected end-effector pose: {e}", throttle_duration_sec=1.0)

    def read_keys(self) -> None:
        while select.select([sys.stdin], [], [], 0)[0]:
            ch = sys.stdin.read(1)
            if not ch:
                return
            self.velocity[:] = 0.0
            if ch in KEYS:
                axis, sign = KEYS[ch]
                self.velocity[axis] = sign * self.key_speed
            elif ch in "oc":
                self.gripper = schema.GRIPPER_OPEN if ch == "o" else schema.GRIPPER_CLOSED
            self.safety.watchdog.feed("teleop", time.monotonic())

    def tick(self) -> None:
        if self.keyboard:
            self.read_keys()
        action = np.concatenate([self.velocity * self.dt, [self.gripper]])
        verdict = self.safety.filter(action, self.ee_pos, time.monotonic())
        a = verdict.action
        self.twist_pub.publish(convert.numpy_to_twist(a[:6] / self.dt, frame_id=self.base_frame,
                                                      stamp=self.get_clock().now().to_msg()))
        self.gripper_pub.publish(Float64(data=float(a[6])))
        status = verdict.describe()
        if status != self._last_status:
            self.status_pub.publish(String(data=status))
            self._last_status = status


def main(args: list[str] | None = None) -> int:
    return node_util.run(TeleopNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
