"""world_model_node: a new subtask yields a subgoal image and latent labelled with that subtask;
a malformed camera image is logged and skipped; a camera other than the checkpoint's is refused;
and, wired as launch/sim.launch.xml wires it, the shipped checkpoint predicts from the sim's
front camera, the one it was trained on."""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ros_stop import stop_node

pytest.importorskip("rclpy")
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float32MultiArray, String  # noqa: E402

from vla_stack.ros2_nodes import convert, qos  # noqa: E402
from vla_stack.ros2_nodes.launch_file import load_launch  # noqa: E402
from vla_stack.ros2_nodes.probe import Probe  # noqa: E402
from vla_stack.ros2_nodes.up import node_command  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]
SIM_LAUNCH = Path(__file__).resolve().parent.parent / "launch" / "sim.launch.xml"


def ros_env(domain: int, tmp_path) -> dict[str, str]:
    return {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "ROS_LOG_DIR": str(tmp_path / "roslog"), "MUJOCO_GL": "egl"}


@pytest.fixture(scope="module")
def tiny_world_model(tmp_path_factory):
    import torch

    from vla_stack.world_model.config import WorldModelConfig
    from vla_stack.world_model.predictor import WorldModel

    torch.manual_seed(0)
    cfg = WorldModelConfig(image_size=32, channels=(8, 16), cond_dim=16, latent_dim=12, attention_heads=2)
    out = tmp_path_factory.mktemp("world_model") / "tiny"
    WorldModel(cfg).save(out)
    return out


@contextlib.contextmanager
def world_model_node(checkpoint, domain: int, tmp_path):
    """The node in its own process on a private ROS domain, with a probe on that domain; stops cleanly."""
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_LOG_DIR": str(tmp_path / "roslog")}
    log = tmp_path / "world_model.log"
    with open(log, "w") as f:
        node = subprocess.Popen([sys.executable, "-m", "vla_stack.ros2_nodes.world_model_node", "--ros-args",
                                 "-p", f"checkpoint:={checkpoint}"], env=env, stdout=f, stderr=subprocess.STDOUT)
    probe = Probe(domain)
    try:
        yield node, probe, log
    finally:
        probe.close()
        code = stop_node(node)
    assert code == 0, log.read_text()


def test_subtask_change_publishes_subgoal_and_bad_images_are_skipped(tiny_world_model, tmp_path):
    with world_model_node(tiny_world_model, 73, tmp_path) as (node, probe, log):
        images = probe.subscribe("subgoal", Image, qos.LATCHED)
        latents = probe.subscribe("subgoal_latent", Float32MultiArray, qos.LATCHED)
        rgb_pub = probe.publisher("rgb", Image, qos.SENSOR)
        depth_pub = probe.publisher("depth", Image, qos.SENSOR)
        subtask_pub = probe.publisher("subtask", String, qos.LATCHED)
        rgb = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)

        def feed():
            rgb_pub.publish(convert.numpy_to_image(rgb, "rgb8"))
            depth_pub.publish(convert.numpy_to_image(np.full((32, 32), 0.9, np.float32), "32FC1"))
            return False

        subtask_pub.publish(String(data="open the drawer"))
        assert probe.wait_for(lambda: feed() or (images and latents), 120.0), log.read_text()
        sub = convert.image_to_numpy(images[-1][1])
        assert sub.shape == (32, 32, 3) and sub.dtype == np.uint8
        assert len(latents[-1][1].data) == 12 and np.isfinite(latents[-1][1].data).all()
        assert [d.label for d in latents[-1][1].layout.dim] == ["open the drawer"]  # what it was predicted for

        bad = convert.numpy_to_image(rgb, "rgb8")
        bad.step = 10  # fewer bytes per row than the width needs
        rgb_pub.publish(bad)
        assert probe.wait_for(lambda: "rejected rgb image: Image: step 10" in log.read_text(), 10.0)
        n = len(images)
        subtask_pub.publish(String(data="pick up the red cube"))  # a new subtask: predict again
        assert probe.wait_for(lambda: feed() or len(images) > n, 10.0)
        assert probe.wait_for(lambda: latents[-1][1].layout.dim[0].label == "pick up the red cube", 5.0)
        assert node.poll() is None



def test_a_subtask_that_arrives_before_the_first_depth_image_waits_for_it(tiny_world_model, tmp_path):
    """Cameras publish rgb and depth separately: the first rgb can come before any depth. The node must
    wait for the depth (a prediction without it is refused), not drop the subtask's subgoal."""
    with world_model_node(tiny_world_model, 75, tmp_path) as (_, probe, log):
        images = probe.subscribe("subgoal", Image, qos.LATCHED)
        rgb_pub = probe.publisher("rgb", Image, qos.SENSOR)
        depth_pub = probe.publisher("depth", Image, qos.SENSOR)
        subtask_pub = probe.publisher("subtask", String, qos.LATCHED)
        rgb = convert.numpy_to_image(np.zeros((32, 32, 3), np.uint8), "rgb8")
        subtask_pub.publish(String(data="open the drawer"))
        assert probe.wait_for(lambda: rgb_pub.publish(rgb) or "expects the" in log.read_text(), 120.0), log.read_text()
        probe.wait_for(lambda: rgb_pub.publish(rgb) or False, 2.0)  # rgb only, for 2 s
        assert not images and "rejected" not in log.read_text(), log.read_text()
        depth = convert.numpy_to_image(np.full((32, 32), 0.9, np.float32), "32FC1")
        assert probe.wait_for(lambda: rgb_pub.publish(rgb) or depth_pub.publish(depth) or bool(images), 10.0), log.read_text()


def test_a_camera_other_than_the_checkpoints_is_refused_at_start_up(tiny_world_model, tmp_path):
    # the tiny checkpoint was trained (here: configured) for the default `scene` camera
    done = subprocess.run([sys.executable, "-m", "vla_stack.ros2_nodes.world_model_node", "--ros-args",
                           "-p", f"checkpoint:={tiny_world_model}", "-p", "camera:=front"],
                          env=ros_env(84, tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "was trained on the 'scene' camera, but camera:=front is wired in" in done.stderr


def test_sim_launch_feeds_the_shipped_world_model_the_front_camera(tmp_path):
    """sim_node and world_model_node exactly as launch/sim.launch.xml starts them (default checkpoint)."""
    specs = {s.name: s for s in load_launch(SIM_LAUNCH, {"world_model": "true", "task": "PickRedCube",
                                                         "n_points": "64", "control_rate_hz": "5.0"})}
    env = ros_env(85, tmp_path)
    logs = {name: tmp_path / f"{name}.log" for name in ("sim", "world_model")}
    procs = {}
    for name, log in logs.items():
        with open(log, "w") as f:
            procs[name] = subprocess.Popen(node_command(specs[name]), env=env, stdout=f, stderr=subprocess.STDOUT)
    text = lambda: "\n".join(f"--- {n}\n{p.read_text()[-3000:]}" for n, p in logs.items())  # noqa: E731
    probe = Probe(85)
    try:
        images = probe.subscribe("subgoal", Image, qos.LATCHED)
        latents = probe.subscribe("subgoal_latent", Float32MultiArray, qos.LATCHED)
        front = probe.subscribe("front/rgb", Image, qos.SENSOR)
        scene = probe.subscribe("rgb", Image, qos.SENSOR)
        info = probe.subscribe("sim/info", String, qos.LATCHED)
        assert probe.wait_for(lambda: info or any(p.poll() is not None for p in procs.values()), 120.0) and info, text()
        subtask = json.loads(info[-1][1].data)["subtask"]
        probe.publisher("subtask", String, qos.LATCHED).publish(String(data=subtask))
        assert probe.wait_for(lambda: (images and latents) or procs["world_model"].poll() is not None, 120.0), text()
        assert images and latents, text()
        assert "expects the 'front' camera at 128x128" in logs["world_model"].read_text()

        goal = convert.image_to_numpy(images[-1][1])
        assert goal.shape == (128, 128, 3) and goal.dtype == np.uint8
        latent = latents[-1][1]
        assert len(latent.data) == 128 and np.isfinite(latent.data).all() and latent.layout.dim[0].label == subtask
        # The arm stands still (no action expert): the subgoal is the front view with the cube moved,
        # much closer to the front camera's current frame than to the observation camera's.
        assert front[-1][1].header.frame_id == "front_camera"
        from vla_stack.world_model.metrics import psnr

        to_front = float(psnr(goal[None], convert.image_to_numpy(front[-1][1])[None])[0])
        to_scene = float(psnr(goal[None], convert.image_to_numpy(scene[-1][1])[None])[0])
        assert to_front > to_scene + 3.0, (to_front, to_scene)  # measured: 15.5 vs 9.2 dB
        assert all(p.poll() is None for p in procs.values()), text()
    finally:
        probe.close()
        codes = {name: stop_node(p) for name, p in procs.items()}
    assert codes == {"sim": 0, "world_model": 0}, text()


def test_sim_refuses_an_extra_camera_its_scene_lacks(tmp_path):
    done = subprocess.run([sys.executable, "-m", "vla_stack.ros2_nodes.sim_node", "--ros-args", "-p", "image_size:=32",
                           "-p", "n_points:=32", "-p", "extra_cameras:=front, fron"],
                          env=ros_env(86, tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "parameter 'extra_cameras': no camera ['fron'] in the scene; it has ['scene', 'front', 'wrist']" in done.stderr
