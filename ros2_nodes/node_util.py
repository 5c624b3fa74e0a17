"""What every node needs: validated, described parameters and one way to run and stop.

Parameters are declared with descriptors (description, type, range, read-only) so
`ros2 param describe` explains them, and checked once at start-up: a node with a bad
parameter exits at once with a message naming it instead of misbehaving later.
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from collections.abc import Callable, Sequence

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from vla_stack.ros2_nodes.safety import SafetyConfig
from vla_stack.schema import SchemaError


class ParameterError(SchemaError):
    """A node parameter outside what the node can run with."""


def declare(node: Node, name: str, default, description: str, *, low: float | None = None,
            high: float | None = None, choices: Sequence[str] | None = None,
            check: Callable[[object], str | None] | None = None):
    """Declare a read-only parameter with a descriptor, read it and validate it."""
    desc = ParameterDescriptor(description=description, read_only=True)
    if low is not None and high is not None:
        if isinstance(default, int) and not isinstance(default, bool):
            desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    if choices:
        desc.additional_constraints = f"one of {list(choices)}"
    try:
        value = node.declare_parameter(name, default, desc).value
    except Exception as e:  # rclpy raises several types for type/range violations
        raise ParameterError(f"{node.get_name()}: parameter {name!r}: {e}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"{node.get_name()}: parameter {name!r} must be finite, got {value}")
    if choices is not None and value not in choices:
        raise ParameterError(f"{node.get_name()}: parameter {name!r} must be one of {list(choices)}, got {value!r}")
    if check is not None:
        problem = check(value)
        if problem:
            raise ParameterError(f"{node.get_name()}: parameter {name!r}: {problem} (got {value!r})")
    return value


def declare_safety(node: Node) -> SafetyConfig:
    """The safety limits as parameters (defaults from SafetyConfig), validated together."""
    d = SafetyConfig()
    cfg = SafetyConfig(
        control_rate_hz=declare(node, "control_rate_hz", d.control_rate_hz, "action rate (Hz)", low=1.0, high=1000.0),
        max_linear_speed_mps=declare(node, "max_linear_speed_mps", d.max_linear_speed_mps,
                                     "end-effector speed limit (m/s)", low=1e-3, high=5.0),
        max_angular_speed_radps=declare(node, "max_angular_speed_radps", d.max_angular_speed_radps,
                                        "end-effector angular speed limit (rad/s)", low=1e-3, high=20.0),
        max_linear_accel_mps2=declare(node, "max_linear_accel_mps2", d.max_linear_accel_mps2,
                                      "end-effector acceleration limit (m/s^2)", low=1e-3, high=100.0),
        max_angular_accel_radps2=declare(node, "max_angular_accel_radps2", d.max_angular_accel_radps2,
                                         "end-effector angular acceleration limit (rad/s^2)", low=1e-3, high=500.0),
        workspace_min_m=tuple(declare(node, "workspace_min_m", list(d.workspace_min_m),
                                      "workspace box lower corner x, y, z (m, base frame)",
                                      check=lambda v: None if len(v) == 3 else "needs 3 numbers")),
        workspace_max_m=tuple(declare(node, "workspace_max_m", list(d.workspace_max_m),
                                      "workspace box upper corner x, y, z (m, base frame)",
                                      check=lambda v: None if len(v) == 3 else "needs 3 numbers")),
        input_timeout_s=declare(node, "input_timeout_s", d.input_timeout_s,
                                "watchdog: zero motion when point cloud or state is older (s)", low=1e-3, high=60.0),
    )
    try:
        return cfg.validate()
    except SchemaError as e:
        raise ParameterError(f"{node.get_name()}: {e}") from None


def run(node_factory: Callable[[], Node], args: list[str] | None = None, *, hard_exit: bool = True) -> int:
    """Init rclpy, build the node, spin until Ctrl-C/SIGTERM, shut down cleanly.

    With `hard_exit` the process ends with os._exit once the node is closed and rclpy is
    shut down: interpreter teardown with torch, tokenizers and rclpy threads alive can
    crash (seen: SIGSEGV after a clean shutdown), which would turn a clean stop into a
    failure exit code for the launcher.
    """
    rclpy.init(args=args if args is not None else sys.argv)
    node, code = None, 0
    try:
        node = node_factory()
        rclpy.spin(node)
    except ParameterError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001
        # After Ctrl-C/SIGTERM rclpy shuts the context down under a running executor, which can
        # surface as an error from take_message; only an error while rclpy is still up is real.
        if rclpy.ok():
            traceback.print_exc()
            code = 1
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    if hard_exit:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
