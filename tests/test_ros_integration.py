"""The whole sim graph from launch/sim.launch.xml under `vla up`, with a tiny trained checkpoint:
an instruction goes in, subtasks come out, actions flow at the control rate and move the
simulated arm for a set number of steps with every node alive, the simulator switches task
on request, then everything stops cleanly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
from geometry_msgs.msg import PoseStamped, TwistStamped  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from vla_stack.ros2_nodes import qos  # noqa: E402
from vla_stack.ros2_nodes.probe import Probe  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(420)]
REPO = Path(__file__).resolve().parent.parent
RATE_HZ = 20.0
STEPS = 60


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> Path:
    """A tiny action expert trained for a few steps on a synthetic dataset (seconds on a CPU)."""
    from vla_stack.datasets.synthetic import write_synthetic
    from vla_stack.policy import tiny_config
    from vla_stack.policy.train import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny_policy")
    write_synthetic(root / "data", episodes=2, length=12)
    return train(TrainConfig(dataset=root / "data", out=root / "run", model=tiny_config(), steps=3, batch_size=2,
                             history=2, log_every=1, save_every=100, progress=False, device="cpu"))


def test_sim_graph_runs_instruction_to_actions_and_shuts_down_cleanly(trained_checkpoint, tmp_path):
    domain = 72
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "MUJOCO_GL": "egl", "ROS_LOG_DIR": str(tmp_path / "roslog")}
    up = subprocess.Popen([sys.executable, "-m", "vla_stack.cli", "up", str(REPO / "launch" / "sim.launch.xml"),
                           f"checkpoint:={trained_checkpoint}", "task:=OpenDrawerThenStackRedOnGreen",
                           "image_size:=64", "n_points:=256", f"control_rate_hz:={RATE_HZ}", "--log-dir", str(tmp_path)],
                          env=env, stderr=subprocess.PIPE, text=True)
    logs = lambda: "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in tmp_path.glob("*.log"))  # noqa: E731
    probe = Probe(domain)
    try:
        cmds = probe.subscribe("cmd_twist", TwistStamped, qos.COMMAND)
        subtasks = probe.subscribe("subtask", String, qos.LATCHED)
        status = probe.subscribe("planner_status", String, qos.LATCHED)
        info = probe.subscribe("sim/info", String, qos.LATCHED)
        poses = probe.subscribe("ee_pose", PoseStamped, qos.SENSOR)
        reset_pub = probe.publisher("sim/reset", String, qos.COMMAND)
        probe.wait_for(lambda: (info and cmds) or up.poll() is not None, 150.0)
        assert info and cmds and up.poll() is None, f"graph did not come up\n{logs()}"
        sim_info = json.loads(info[-1][1].data)

        probe.publisher("instruction", String, qos.LATCHED).publish(String(data=sim_info["instruction"]))
        # the planner first withdraws any old subtask (an empty one), then publishes the plan's first
        assert probe.wait_for(lambda: any(m.data for _, m in subtasks), 10.0), f"no subtask\n{logs()}"
        assert [m.data for _, m in subtasks if m.data][0] == "open the drawer"
        assert probe.wait_for(lambda: any(m.data.startswith("executing 0: open the drawer") for _, m in status), 5.0)
        assert probe.wait_for(lambda: "policy state reset" in (tmp_path / "action_expert.log").read_text(), 5.0)

        def moving(m):
            return any(abs(v) > 0 for v in (m.twist.linear.x, m.twist.linear.y, m.twist.linear.z))

        # generous on a loaded 2-core CI box: the first ticks wait for every sensor stream
        assert probe.wait_for(lambda: moving(cmds[-1][1]), 30.0), f"no motion command\n{logs()}"
        sim = lambda: json.loads(info[-1][1].data)  # noqa: E731
        # total_steps, not the episode's step: an episode may reach its time limit and restart meanwhile
        start, t0, n0 = sim(), time.monotonic(), len(cmds)
        pose0 = np.array([poses[-1][1].pose.position.x, poses[-1][1].pose.position.y, poses[-1][1].pose.position.z])
        assert probe.wait_for(lambda: sim()["total_steps"] >= start["total_steps"] + STEPS, 3 * STEPS / RATE_HZ), \
            f"sim stalled at step {sim()['total_steps']}\n{logs()}"
        end, elapsed = sim(), time.monotonic() - t0
        rate, sim_rate = (len(cmds) - n0) / elapsed, (end["total_steps"] - start["total_steps"]) / elapsed
        # One command per observation, so the configured rate whenever the simulator keeps it; on a
        # starved CPU (a shared 2-core box) the simulator itself falls behind its period, and then
        # the commands must keep up with its observations. Whether the machine can step the whole
        # graph at 20 Hz is the soak benchmark's measurement (benchmarks/ros_soak.py), not this test's.
        assert 0.75 * min(RATE_HZ, sim_rate) <= rate <= 1.25 * RATE_HZ, \
            f"actions at {rate:.1f} Hz, configured {RATE_HZ}, sim stepped at {sim_rate:.1f} Hz " \
            f"({end['overruns'] - start['overruns']} overruns)"
        pose1 = np.array([poses[-1][1].pose.position.x, poses[-1][1].pose.position.y, poses[-1][1].pose.position.z])
        assert np.linalg.norm(pose1 - pose0) > 1e-3, "commands never moved the simulated arm"
        assert up.poll() is None, f"vla up exited early\n{logs()}"

        # The simulator switches task on request and refuses an unknown one without dying.
        reset_pub.publish(String(data="NoSuchTask"))
        reset_pub.publish(String(data="PickRedCube"))
        assert probe.wait_for(lambda: json.loads(info[-1][1].data)["task"] == "PickRedCube", 20.0), logs()
        assert "unknown task 'NoSuchTask'" in (tmp_path / "sim.log").read_text()
        assert up.poll() is None
    finally:
        probe.close()
        up.send_signal(signal.SIGINT)
        err = up.communicate(timeout=30)[1]
    assert up.returncode == 0, err
    assert "exit codes {'sim': 0, 'planner': 0, 'action_expert': 0}" in err, err
    assert "Traceback" not in logs()
