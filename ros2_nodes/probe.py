"""A node that watches and pokes a running graph from Python: for tests and the soak benchmark.

It owns its own rclpy context (so a test can pick its ROS_DOMAIN_ID without touching the
process environment) and spins in a background thread; messages are recorded with their
arrival time, and `wait_for` polls a condition instead of sleeping a fixed time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor


class Probe:
    def __init__(self, domain_id: int, name: str = "probe") -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[tuple[float, object]]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down while spinning
                if self.context.ok():
                    raise
                return

    def subscribe(self, topic: str, msg_type, qos) -> list[tuple[float, object]]:
        """Record every message on `topic` as (time.monotonic() on arrival, message)."""
        with self._lock:
            box = self.received.setdefault(topic, [])

        def on_msg(msg, box=box):
            box.append((time.monotonic(), msg))

        self.node.create_subscription(msg_type, topic, on_msg, qos)
        return box

    def publisher(self, topic: str, msg_type, qos):
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(poll_s)
        return condition()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)
        self._thread.join(timeout=2.0)
