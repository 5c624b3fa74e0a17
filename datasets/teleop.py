"""Teleoperation sources for `vla record`: each turns an operator into a schema action per tick.

- `ExpertTeleop`: the task's scripted expert (`env.unwrapped.expert_action()`), the default.
- `KeyboardTeleop`: end-effector velocity keys in the terminal (no key-up events exist in a
  terminal, so a key sets a velocity that holds until another key or space).
- `RosTeleop`: `geometry_msgs/TwistStamped` on `teleop_twist` (base-frame velocities) and
  `std_msgs/Float64` on `teleop_gripper`, the same topics as `ros2_nodes/teleop_node.py`;
  a twist older than `stale_s` counts as zero motion.

Velocities become per-tick deltas (v / fps), clipped to the schema's limits by the recorder.
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time

import numpy as np

from vla_stack import schema

#: key -> (action component, sign); same letters as the ROS teleop node.
MOVE_KEYS = {"w": (0, 1), "s": (0, -1), "a": (1, 1), "d": (1, -1), "r": (2, 1), "f": (2, -1),
             "i": (3, 1), "k": (3, -1), "j": (4, 1), "l": (4, -1), "u": (5, 1), "o": (5, -1)}
KEY_HELP = ("keys: w/s x  a/d y  r/f z  i/k j/l u/o rotate  space stop  "
            "g open / h close gripper  q end episode")


class ExpertTeleop:
    name = "expert"

    def reset(self) -> None:
        pass

    def action(self, env, obs) -> np.ndarray:
        return np.asarray(env.unwrapped.expert_action(), np.float32)

    def episode_ended(self) -> bool:
        return False

    def close(self) -> None:
        pass


class KeyboardTeleop:
    """Reads keys from a file descriptor (the terminal, in raw mode, or a pipe in tests)."""

    name = "keyboard"

    def __init__(self, fps: int, *, speed_mps: float = 0.1, speed_radps: float = 0.5, fd: int | None = None):
        self.fps, self.speed_mps, self.speed_radps = fps, speed_mps, speed_radps
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._saved_tty = None
        if fd is None and os.isatty(self.fd):
            import termios
            import tty

            self._saved_tty = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
            print(KEY_HELP, file=sys.stderr)
        self.reset()

    def reset(self) -> None:
        """New episode: stopped, gripper open, keys typed in between (e.g. at the review prompt) dropped."""
        if hasattr(self, "fd"):
            self._read_keys()
        self.velocity = np.zeros(6)
        self.gripper = schema.GRIPPER_OPEN
        self._end = False

    def _read_keys(self) -> str:
        keys = ""
        while select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, 64).decode(errors="ignore")
            if not chunk:
                break
            keys += chunk
        return keys

    def handle(self, key: str) -> None:
        if key in MOVE_KEYS:
            axis, sign = MOVE_KEYS[key]
            self.velocity[:] = 0.0
            self.velocity[axis] = sign * (self.speed_mps if axis < 3 else self.speed_radps)
        elif key == " ":
            self.velocity[:] = 0.0
        elif key == "g":
            self.gripper = schema.GRIPPER_OPEN
        elif key == "h":
            self.gripper = schema.GRIPPER_CLOSED
        elif key == "q":
            self._end = True

    def action(self, env, obs) -> np.ndarray:
        for key in self._read_keys():
            self.handle(key.lower())
        return np.concatenate([self.velocity / self.fps, [self.gripper]]).astype(np.float32)

    def episode_ended(self) -> bool:
        return self._end

    def close(self) -> None:
        if self._saved_tty is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved_tty)


class RosTeleop:
    """Subscribes in a background executor thread; `action()` never blocks the control loop."""

    name = "ros"

    def __init__(self, fps: int, *, twist_topic: str = "teleop_twist", gripper_topic: str = "teleop_gripper",
                 stale_s: float = 0.5):
        try:
            import rclpy
            from geometry_msgs.msg import TwistStamped
            from rclpy.executors import SingleThreadedExecutor
            from std_msgs.msg import Float64
        except ImportError as e:
            raise RuntimeError(f"--teleop ros needs the ROS 2 extra: pip install 'vla-stack[ros]' ({e})") from None
        self.fps, self.stale_s = fps, stale_s
        self._lock = threading.Lock()
        self._velocity = np.zeros(6)
        self._stamp = -np.inf
        self.gripper = schema.GRIPPER_OPEN
        self._own_context = not rclpy.ok()
        if self._own_context:
            rclpy.init()
        self.node = rclpy.create_node("vla_record_teleop")
        self.node.create_subscription(TwistStamped, twist_topic, self._on_twist, 10)
        self.node.create_subscription(Float64, gripper_topic, self._on_gripper, 10)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _on_twist(self, msg) -> None:
        t, r = msg.twist.linear, msg.twist.angular
        v = np.array([t.x, t.y, t.z, r.x, r.y, r.z], np.float64)
        if not np.all(np.isfinite(v)):
            self.node.get_logger().error("rejected teleop twist: non-finite value")
            return
        with self._lock:
            self._velocity, self._stamp = v, time.monotonic()

    def _on_gripper(self, msg) -> None:
        if np.isfinite(msg.data):
            self.gripper = float(np.clip(msg.data, schema.GRIPPER_CLOSED, schema.GRIPPER_OPEN))

    def reset(self) -> None:
        with self._lock:
            self._velocity, self._stamp = np.zeros(6), -np.inf

    def action(self, env, obs) -> np.ndarray:
        with self._lock:
            v = self._velocity if time.monotonic() - self._stamp <= self.stale_s else np.zeros(6)
        return np.concatenate([v / self.fps, [self.gripper]]).astype(np.float32)

    def episode_ended(self) -> bool:
        return False

    def close(self) -> None:
        import rclpy

        self._executor.shutdown()
        self._thread.join(timeout=5.0)  # a spinning thread alive at interpreter exit aborts the process
        self.node.destroy_node()
        if self._own_context and rclpy.ok():
            rclpy.shutdown()


def make_teleop(kind: str, fps: int):
    if kind == "expert":
        return ExpertTeleop()
    if kind == "keyboard":
        return KeyboardTeleop(fps)
    if kind == "ros":
        return RosTeleop(fps)
    raise ValueError(f"unknown teleop source {kind!r}: expert, keyboard or ros")
