"""world_model_node (tiny randomly initialised U-Net): a new subtask yields a subgoal image and
latent labelled with that subtask; a malformed camera image is logged and skipped."""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("rclpy")
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float32MultiArray, String  # noqa: E402

from vla_stack.ros2_nodes import convert, qos  # noqa: E402
from vla_stack.ros2_nodes.probe import Probe  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]


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


def test_subtask_change_publishes_subgoal_and_bad_images_are_skipped(tiny_world_model, tmp_path):
    domain = 73
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_LOG_DIR": str(tmp_path / "roslog")}
    log = tmp_path / "world_model.log"
    with open(log, "w") as f:
        node = subprocess.Popen([sys.executable, "-m", "vla_stack.ros2_nodes.world_model_node", "--ros-args",
                                 "-p", f"checkpoint:={tiny_world_model}"], env=env, stdout=f, stderr=subprocess.STDOUT)
    probe = Probe(domain)
    try:
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
    finally:
        probe.close()
        node.send_signal(2)
        code = node.wait(20)
    assert code == 0, log.read_text()

