"""planner_node with the oracle backend (the simulator's own subtasks on `sim/info`): a new
instruction first withdraws the current subtask (an empty one), then publishes the plan's
first; the plan follows the simulator and ends with DONE; a bad `sim/info` is logged and
skipped; a missing planner checkpoint is a clear start-up error."""

import json
import os
import subprocess
import sys

import pytest
from ros_stop import stop_node

pytest.importorskip("rclpy")
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from vla_stack.ros2_nodes import qos  # noqa: E402
from vla_stack.ros2_nodes.probe import Probe  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]
# The planner's subtask topic is latched (depth 1); a deeper reader keeps every live message.
EVERY_MESSAGE = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def sim_info(subtask: str, success: bool = False) -> String:
    return String(data=json.dumps({"instruction": "open the drawer and then pick up the red cube",
                                   "subtask": subtask, "success": success}))


def test_oracle_plan_withdraws_the_old_subtask_on_a_new_instruction(tmp_path):
    domain = 71
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_LOG_DIR": str(tmp_path / "roslog"), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "planner.log"
    with open(log, "w") as f:
        node = subprocess.Popen([sys.executable, "-m", "vla_stack.ros2_nodes.planner_node"], env=env, stdout=f,
                                stderr=subprocess.STDOUT)
    probe = Probe(domain)
    try:
        subtasks = probe.subscribe("subtask", String, EVERY_MESSAGE)
        status = probe.subscribe("planner_status", String, qos.LATCHED)
        texts = lambda: [m.data for _, m in list(subtasks)]  # noqa: E731
        info_pub = probe.publisher("sim/info", String, qos.LATCHED)
        instruction_pub = probe.publisher("instruction", String, qos.LATCHED)
        assert probe.wait_for(lambda: status and status[-1][1].data == "idle", 120.0), log.read_text()
        info_pub.publish(sim_info("open the drawer"))
        assert not probe.wait_for(lambda: subtasks, 0.5), "a subtask before any instruction"

        instruction_pub.publish(String(data="open the drawer and then pick up the red cube"))
        assert probe.wait_for(lambda: texts() == ["", "open the drawer"], 10.0), texts()
        info_pub.publish(sim_info("pick up the red cube"))
        assert probe.wait_for(lambda: texts()[-1:] == ["pick up the red cube"], 10.0), texts()
        assert probe.wait_for(lambda: status[-1][1].data == "executing 1: pick up the red cube", 5.0)

        # A new instruction: the old subtask is withdrawn before the new plan's first subtask.
        n = len(texts())
        instruction_pub.publish(String(data="pick up the red cube"))
        assert probe.wait_for(lambda: texts()[n:] == ["", "pick up the red cube"], 10.0), texts()

        info_pub.publish(String(data="{not json"))
        assert probe.wait_for(lambda: "rejected sim/info" in log.read_text(), 5.0), log.read_text()
        info_pub.publish(sim_info("pick up the red cube", success=True))
        assert probe.wait_for(lambda: texts()[-1:] == ["DONE"], 10.0), texts()
        assert probe.wait_for(lambda: status[-1][1].data == "done", 5.0)
        assert node.poll() is None
    finally:
        probe.close()
        code = stop_node(node)
    assert code == 0, log.read_text()


def test_planner_with_a_missing_checkpoint_is_a_clear_error(tmp_path):
    env = {**os.environ, "ROS_DOMAIN_ID": "74", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    out = subprocess.run([sys.executable, "-m", "vla_stack.ros2_nodes.planner_node", "--ros-args",
                          "-p", f"backend:={tmp_path / 'nope'}"], env=env, capture_output=True, text=True, timeout=150)
    assert out.returncode == 2 and "cannot load planner checkpoint" in out.stderr, out.stderr
