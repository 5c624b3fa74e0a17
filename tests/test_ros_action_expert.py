"""The action expert node with a tiny randomly initialised policy: bad input, stale input and
e-stop all end in zero motion within twice the watchdog timeout, and the node stays alive."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from ros_stop import stop_node

pytest.importorskip("rclpy")
from geometry_msgs.msg import PoseStamped, TwistStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Bool, Empty, Float32MultiArray, MultiArrayDimension, MultiArrayLayout, String  # noqa: E402

from vla_stack import schema  # noqa: E402
from vla_stack.ros2_nodes import convert, qos  # noqa: E402
from vla_stack.ros2_nodes.probe import Probe  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]
TIMEOUT_S = 0.5  # the node's input_timeout_s in these tests
RATE_HZ = 20.0
JOINTS = [f"joint{i + 1}" for i in range(7)] + ["gripper"]
# A camera 1 m above the table looking straight down (optical z = base -z), for cloud_source:=depth.
CAMERA_POSE = [0.5, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]  # x y z qw qx qy qz: 180 degrees about x
INTRINSICS = schema.CameraIntrinsics(width=32, height=32, fx=32.0, fy=32.0, cx=16.0, cy=16.0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from vla_stack.policy import PolicyModel, save_checkpoint, tiny_config

    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("policy") / "tiny", PolicyModel(tiny_config()))


def good_cloud() -> PointCloud2:
    rng = np.random.default_rng(0)
    pts = rng.uniform([0.3, -0.2, 0.0], [0.7, 0.2, 0.2], size=(256, 3)).astype(np.float32)
    return convert.numpy_to_pointcloud2(pts, rng.uniform(size=(256, 3)).astype(np.float32))


def good_depth() -> Image:
    return convert.numpy_to_image(np.full((32, 32), 0.8, np.float32), "32FC1")


class SensorFeeder:
    """Publishes a robot's sensors at 20 Hz; `cloud` can be swapped for a malformed message."""

    def __init__(self, probe: Probe, source: str) -> None:
        self.source = source
        if source == "points":
            self.cloud_pub = probe.publisher("points", PointCloud2, qos.SENSOR)
            self.cloud = good_cloud()
        else:
            self.cloud_pub = probe.publisher("depth", Image, qos.SENSOR)
            self.info_pub = probe.publisher("camera_info", CameraInfo, qos.SENSOR)
            self.cloud = good_depth()
        self.js_pub = probe.publisher("joint_states", JointState, qos.SENSOR)
        self.pose_pub = probe.publisher("ee_pose", PoseStamped, qos.SENSOR)
        self.js = convert.numpy_to_joint_state(JOINTS, np.array([0, -0.3, 0, -2.6, 0, 2.1, 0.8, 0.04]))
        self.pose = convert.numpy_to_pose(np.array([0.5, 0.0, 0.3]), np.array([0.0, 1.0, 0.0, 0.0]))
        self.running = True
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop:
            if self.running:
                if self.source == "depth":
                    self.info_pub.publish(convert.intrinsics_to_camera_info(INTRINSICS))
                self.cloud_pub.publish(self.cloud)
                self.js_pub.publish(self.js)
                self.pose_pub.publish(self.pose)
            time.sleep(1.0 / RATE_HZ)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2.0)


class Graph:
    """One action expert node (a child process) plus a probe and a sensor feeder on their own domain."""

    def __init__(self, domain: int, checkpoint, tmp_path, source: str = "points", extra: list[str] = ()):
        env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
               "ROS_LOG_DIR": str(tmp_path / "roslog"), "PYTHONUNBUFFERED": "1"}
        self.log_path = tmp_path / "action_expert.log"
        self.log = open(self.log_path, "w")
        params = [f"checkpoint:={checkpoint}", f"control_rate_hz:={RATE_HZ}", f"input_timeout_s:={TIMEOUT_S}",
                  f"cloud_source:={source}", "max_points:=5000", f"camera_pose:={CAMERA_POSE}", *extra]
        cmd = [sys.executable, "-m", "vla_stack.ros2_nodes.action_expert_node", "--ros-args"]
        for p in params:
            cmd += ["-p", p]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.probe = Probe(domain)
        self.cmds = self.probe.subscribe("cmd_twist", TwistStamped, qos.COMMAND)
        self.status = self.probe.subscribe("safety_status", String, qos.LATCHED)
        self.subtask_pub = self.probe.publisher("subtask", String, qos.LATCHED)
        self.subtask_pub.publish(String(data="open the drawer"))
        self.estop_pub = self.probe.publisher("estop", Bool, qos.LATCHED)
        self.reset_pub = self.probe.publisher("estop_reset", Empty, qos.COMMAND)
        self.feeder = SensorFeeder(self.probe, source)

    @staticmethod
    def moving(msg: TwistStamped) -> bool:
        t, r = msg.twist.linear, msg.twist.angular
        return any(v != 0.0 for v in (t.x, t.y, t.z, r.x, r.y, r.z))

    def wait_moving(self, timeout_s: float = 90.0) -> bool:  # start-up on a loaded 2-core box can be slow
        return self.probe.wait_for(lambda: bool(self.cmds) and self.moving(self.cmds[-1][1]), timeout_s)

    def seconds_until_zero(self, since: float, timeout_s: float = 3.0) -> float:
        def first_zero():
            return next((t for t, m in list(self.cmds) if t >= since and not self.moving(m)), None)

        self.probe.wait_for(lambda: first_zero() is not None, timeout_s)
        t = first_zero()
        return float("inf") if t is None else t - since

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def close(self) -> int:
        self.feeder.close()
        self.probe.close()
        try:
            code = stop_node(self.proc)
        except AssertionError:
            code = -9
        self.log.close()
        return code


def bad_clouds() -> dict[str, tuple[PointCloud2, str]]:
    def layout(mutate):
        m = good_cloud()
        mutate(m)
        return m

    nan = np.random.default_rng(1).uniform(0.3, 0.6, size=(256, 3)).astype(np.float32)
    nan[::7, 2] = np.nan
    oversized = convert.numpy_to_pointcloud2(np.full((6000, 3), 0.5, np.float32))
    return {
        "field offset past point_step": (layout(lambda m: setattr(m.fields[2], "offset", 20)), "'z' at offset 20"),
        "x stored as uint8": (layout(lambda m: setattr(m.fields[0], "datatype", PointField.UINT8)), "'x' must be FLOAT32"),
        "missing z": (layout(lambda m: setattr(m, "fields", [m.fields[0], m.fields[1]])), "missing field"),
        "truncated data": (layout(lambda m: setattr(m, "data", bytes(100))), "data has 100 bytes"),
        "NaN coordinates": (convert.numpy_to_pointcloud2(nan), "have NaN/inf coordinates"),
        "empty": (convert.numpy_to_pointcloud2(np.zeros((0, 3), np.float32)), "empty cloud"),
        "oversized": (oversized, "6000 points, more than the limit of 5000"),
        "wrong frame": (layout(lambda m: setattr(m.header, "frame_id", "camera_link")), "frame 'camera_link'"),
    }


def bad_images() -> dict[str, tuple[Image, str]]:
    def mutate(f):
        m = good_depth()
        f(m)
        return m

    return {
        "colour image on the depth topic": (convert.numpy_to_image(np.zeros((32, 32, 3), np.uint8), "rgb8"),
                                            "not a depth image"),
        "unknown encoding": (mutate(lambda m: setattr(m, "encoding", "64FC3")), "unsupported encoding '64FC3'"),
        "step too small": (mutate(lambda m: setattr(m, "step", 8)), "step 8 < width 32"),
        "all NaN": (convert.numpy_to_image(np.full((32, 32), np.nan, np.float32), "32FC1"), "at least 16 needed"),
        "empty": (mutate(lambda m: (setattr(m, "height", 0), setattr(m, "data", b""))), "empty image"),
        "oversized": (mutate(lambda m: (setattr(m, "height", 50_000), setattr(m, "width", 50_000))), "more than the limit"),
        "size differs from camera_info": (convert.numpy_to_image(np.full((16, 16), 0.8, np.float32), "32FC1"),
                                          "does not match camera_info"),
    }


@pytest.mark.parametrize("source, domain", [("points", 65), ("depth", 66)])
def test_fuzz_malformed_input_is_logged_and_commands_zero_motion(checkpoint, tmp_path, source, domain):
    g = Graph(domain, checkpoint, tmp_path, source)
    cases = bad_clouds() if source == "points" else bad_images()
    try:
        assert g.wait_moving(), f"the policy never produced motion:\n{g.log_text()}"
        good = g.feeder.cloud
        for name, (bad, reason) in cases.items():
            t0 = time.monotonic()
            g.feeder.cloud = bad
            dt = g.seconds_until_zero(t0)
            assert dt <= 2 * TIMEOUT_S, f"{name}: still moving {dt:.2f} s after the first bad message"
            assert g.probe.wait_for(lambda: reason in g.log_text(), 5.0), f"{name}: no error naming {reason!r}"
            assert g.proc.poll() is None, f"{name}: the node died:\n{g.log_text()}"
            g.feeder.cloud = good
            assert g.wait_moving(10.0), f"{name}: no recovery once good input is back"
        assert "rejected" in g.log_text() and "Traceback" not in g.log_text()
    finally:
        code = g.close()
    assert code == 0, g.log_text()


def test_watchdog_commands_zero_when_sensors_stop(checkpoint, tmp_path):
    g = Graph(67, checkpoint, tmp_path)
    try:
        assert g.wait_moving(), g.log_text()
        t0 = time.monotonic()
        g.feeder.running = False  # every sensor goes quiet
        dt = g.seconds_until_zero(t0)
        assert TIMEOUT_S * 0.5 <= dt <= 2 * TIMEOUT_S, f"zero after {dt:.3f} s, timeout is {TIMEOUT_S} s"
        assert g.probe.wait_for(lambda: "watchdog" in g.status[-1][1].data, 1.0)
        g.probe.wait_for(lambda: False, 0.3)
        assert not any(g.moving(m) for t, m in list(g.cmds) if t > t0 + dt)  # stays stopped
        g.feeder.running = True
        assert g.wait_moving(5.0)
        # Only the joint state stops: that is enough to stop.
        g.feeder.js_pub, real = g.probe.publisher("unused_joint_states", JointState, qos.SENSOR), g.feeder.js_pub
        t0 = time.monotonic()
        assert g.seconds_until_zero(t0) <= 2 * TIMEOUT_S
        # the status message travels on its own topic: it may arrive just after the command
        assert g.probe.wait_for(lambda: "joint_states stale" in g.status[-1][1].data, 1.0), g.status[-1][1].data
        g.feeder.js_pub = real
    finally:
        assert g.close() == 0


def test_estop_latches_until_reset(checkpoint, tmp_path):
    g = Graph(68, checkpoint, tmp_path)
    try:
        assert g.wait_moving(), g.log_text()
        t0 = time.monotonic()
        g.estop_pub.publish(Bool(data=True))
        assert g.seconds_until_zero(t0) <= 2 * TIMEOUT_S
        g.estop_pub.publish(Bool(data=False))  # releasing the button does not release the latch
        g.probe.wait_for(lambda: False, 0.5)
        assert not any(g.moving(m) for t, m in list(g.cmds) if t > t0 + 2 * TIMEOUT_S)
        assert g.probe.wait_for(lambda: g.status[-1][1].data.startswith("STOP: e-stop latched"), 1.0)
        g.reset_pub.publish(Empty())
        assert g.wait_moving(5.0)
        assert "e-stop released" in g.log_text()
    finally:
        assert g.close() == 0


def test_instruction_arriving_after_its_first_subtask_keeps_the_subtask(checkpoint, tmp_path):
    """The planner answers an instruction on another topic, so its first subtask can reach the
    node before the instruction itself: the instruction resets the policy state and nothing else."""
    g = Graph(70, checkpoint, tmp_path)  # the subtask is published first
    try:
        assert g.wait_moving(), g.log_text()
        g.probe.publisher("instruction", String, qos.LATCHED).publish(String(data="open the drawer"))
        assert g.probe.wait_for(lambda: "policy state reset" in g.log_text(), 10.0), g.log_text()
        t0 = time.monotonic()
        g.probe.wait_for(lambda: False, 0.5)
        after = [m for t, m in list(g.cmds) if t > t0]
        assert after and all(g.moving(m) for m in after), "the instruction stopped the current subtask"
        # An empty subtask (the planner withdrawing the old plan) holds still until the next one.
        t0 = time.monotonic()
        g.subtask_pub.publish(String(data=""))
        assert g.seconds_until_zero(t0) <= 2 / RATE_HZ + 0.5
        assert g.probe.wait_for(lambda: "subtask withdrawn" in g.log_text(), 5.0)
        g.subtask_pub.publish(String(data="pick up the red cube"))
        assert g.wait_moving(5.0)
    finally:
        assert g.close() == 0


class RecordingPolicy:
    """Stands in for the action expert where only the node's bookkeeping is under test."""

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1


def latent_msg(values, subtask: str | None) -> Float32MultiArray:
    dims = [] if subtask is None else [MultiArrayDimension(label=subtask, size=len(values), stride=len(values))]
    return Float32MultiArray(layout=MultiArrayLayout(dim=dims), data=list(values))


def test_subgoal_latent_is_used_only_while_its_subtask_is_current():
    """The world model answers a subtask on its own topic, so its latent can arrive before (or
    after) the subtask it belongs to; the label it carries decides, not the arrival order."""
    import rclpy

    from vla_stack.ros2_nodes.action_expert_node import ActionExpertNode

    rclpy.init(args=[], domain_id=76)
    node = ActionExpertNode(policy=RecordingPolicy())
    try:
        node.on_subtask(String(data="open the drawer"))
        node.on_subgoal_latent(latent_msg([1.0, 2.0], "pick up the red cube"))  # the next subtask's, early
        assert node.current_subgoal_latent() is None
        node.on_subtask(String(data="pick up the red cube"))
        assert node.current_subgoal_latent().tolist() == [1.0, 2.0]
        node.on_instruction(String(data="pick up the red cube"))  # resets the policy, keeps the plan
        assert node.policy.resets == 1 and node.subtask == "pick up the red cube"
        assert node.current_subgoal_latent() is not None
        node.on_subgoal_latent(latent_msg([3.0], None))  # an unlabelled producer counts as current
        assert node.current_subgoal_latent().tolist() == [3.0]
        node.on_subgoal_latent(latent_msg([float("nan")], "pick up the red cube"))
        assert node.current_subgoal_latent() is None
    finally:
        node.destroy_node()
        rclpy.shutdown()


@pytest.mark.parametrize("param, message", [
    ("control_rate_hz:=0.0", "parameter 'control_rate_hz'"),
    ("cloud_source:=lidar", "must be one of ['points', 'depth']"),
    ("workspace_min_m:=[1.0, 1.0, 1.0]", "must be below max"),
])
def test_bad_parameters_stop_the_node_with_a_named_error(checkpoint, param, message):
    env = {**os.environ, "ROS_DOMAIN_ID": "69", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    out = subprocess.run([sys.executable, "-m", "vla_stack.ros2_nodes.action_expert_node", "--ros-args",
                          "-p", f"checkpoint:={checkpoint}", "-p", param], env=env, capture_output=True, text=True,
                         timeout=150)
    assert out.returncode == 2 and message in out.stderr, out.stderr


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    env = {**os.environ, "ROS_DOMAIN_ID": "69", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    out = subprocess.run([sys.executable, "-m", "vla_stack.ros2_nodes.action_expert_node", "--ros-args",
                          "-p", f"checkpoint:={tmp_path / 'nope'}"], env=env, capture_output=True, text=True, timeout=150)
    assert out.returncode == 2 and "cannot load checkpoint" in out.stderr, out.stderr
