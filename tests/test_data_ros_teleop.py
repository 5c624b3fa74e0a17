"""`vla record --teleop ros`: TwistStamped + gripper topics become schema actions."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("rclpy")

SCRIPT = textwrap.dedent("""
    import json, time
    import rclpy
    from geometry_msgs.msg import TwistStamped
    from std_msgs.msg import Float64
    from vla_stack.datasets.teleop import RosTeleop

    rclpy.init()
    teleop = RosTeleop(fps=20, stale_s=0.3)
    node = rclpy.create_node("fake_joystick")
    twist_pub = node.create_publisher(TwistStamped, "teleop_twist", 10)
    grip_pub = node.create_publisher(Float64, "teleop_gripper", 10)
    msg = TwistStamped()
    msg.twist.linear.x, msg.twist.angular.z = 0.2, -1.0
    seen, deadline = None, time.monotonic() + 20
    while time.monotonic() < deadline:
        twist_pub.publish(msg)
        grip_pub.publish(Float64(data=-1.0))
        a = teleop.action(None, None)
        if a[0] != 0 and a[6] == -1.0:
            seen = a.tolist()
            break
        time.sleep(0.05)
    time.sleep(0.5)  # the operator stops publishing: the command goes stale
    stale = teleop.action(None, None).tolist()
    teleop.close()
    node.destroy_node()
    rclpy.shutdown()
    print(json.dumps({"seen": seen, "stale": stale}))
""")


@pytest.mark.ros
def test_ros_teleop_maps_twist_to_per_tick_deltas_and_times_out():
    env = {**os.environ, "ROS_DOMAIN_ID": "77", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["seen"] == pytest.approx([0.2 / 20, 0, 0, 0, 0, -1.0 / 20, -1.0], abs=1e-6)
    assert result["stale"] == pytest.approx([0, 0, 0, 0, 0, 0, -1.0])  # zero motion, gripper held
