"""world_model_node: camera image + subtask in, subgoal image (+ latent for the action expert) out.

It predicts when the subtask changes and, optionally, at a low rate (`rate_hz`), never at
the control rate: the action expert keeps using the last subgoal latent meanwhile. In:
`rgb` (rgb8/bgr8/mono8 Image), `depth` (32FC1/16UC1, when the model uses depth), `subtask`.
Out: `subgoal` (rgb8 Image) and `subgoal_latent` (Float32MultiArray whose one layout dimension
is labelled with the subtask it was predicted for), both latched.

The images must come from the camera the checkpoint was trained on (its config.json `camera`;
the shipped model's is the sim's `front`, published by sim_node as `front/rgb`, `front/depth`,
which launch/sim.launch.xml remaps here). Another camera's images of the same size would be
accepted and give meaningless subgoals, so a launch file names the camera it wires in
(`camera`) and the node refuses to start when the checkpoint expects another.
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, MultiArrayDimension, MultiArrayLayout, String

from vla_stack import schema
from vla_stack.ros2_nodes import convert, node_util, qos


class WorldModelNode(Node):
    def __init__(self) -> None:
        super().__init__("world_model")
        ckpt = node_util.declare(self, "checkpoint", "", "world model checkpoint directory (empty: the shipped one)")
        camera = node_util.declare(self, "camera", "", "the camera whose images arrive on rgb/depth; must be the one "
                                   "the checkpoint was trained on (empty: not checked)")
        self.rate_hz = node_util.declare(self, "rate_hz", 0.0, "re-predict at this rate too (0: only on a new subtask)",
                                         low=0.0, high=10.0)
        from vla_stack.world_model.predictor import DEFAULT_CHECKPOINT, WorldModel

        ckpt = ckpt or str(DEFAULT_CHECKPOINT)
        try:
            self.model = WorldModel.load(ckpt)
        except (OSError, ValueError) as e:
            raise node_util.ParameterError(f"world_model: cannot load checkpoint {ckpt}: {e}") from None
        trained_on, size = self.model.config.camera, self.model.config.image_size
        if camera and camera != trained_on:
            raise node_util.ParameterError(f"world_model: checkpoint {ckpt} was trained on the {trained_on!r} camera, "
                                           f"but camera:={camera} is wired in; feed it the {trained_on!r} camera's images")
        self.get_logger().info(f"checkpoint {ckpt}: expects the {trained_on!r} camera at {size}x{size} on rgb/depth")
        self.rgb = self.depth = None
        self.subtask: str | None = None
        self.pending = False
        self.create_subscription(Image, "rgb", self.on_rgb, qos.SENSOR)
        self.create_subscription(Image, "depth", self.on_depth, qos.SENSOR)
        self.create_subscription(String, "subtask", self.on_subtask, qos.LATCHED)
        self.image_pub = self.create_publisher(Image, "subgoal", qos.LATCHED)
        self.latent_pub = self.create_publisher(Float32MultiArray, "subgoal_latent", qos.LATCHED)
        if self.rate_hz > 0:
            self.create_timer(1.0 / self.rate_hz, lambda: setattr(self, "pending", True))
        self.create_timer(0.05, self.maybe_predict)

    def on_rgb(self, msg: Image) -> None:
        try:
            self.rgb = convert.image_to_rgb(msg)
        except schema.SchemaError as e:
            self.rgb = None
            self.get_logger().error(f"rejected rgb image: {e}", throttle_duration_sec=1.0)

    def on_depth(self, msg: Image) -> None:
        try:
            self.depth = np.nan_to_num(convert.image_to_depth_m(msg), nan=0.0)
        except schema.SchemaError as e:
            self.depth = None
            self.get_logger().error(f"rejected depth image: {e}", throttle_duration_sec=1.0)

    def on_subtask(self, msg: String) -> None:
        if msg.data != self.subtask:
            self.subtask, self.pending = msg.data, True

    def maybe_predict(self) -> None:
        if not self.pending or self.rgb is None or not self.subtask or self.subtask == schema.DONE_TOKEN:
            return
        if self.model.config.predict_depth and self.depth is None:
            return  # the first depth image is still on its way: stay pending rather than fail this subtask
        self.pending, subtask = False, self.subtask
        try:
            depth = self.depth if self.model.config.predict_depth else None
            rgb, latent = self.model.predict_subgoal(self.rgb, depth, subtask)
        except schema.SchemaError as e:
            self.get_logger().error(f"world model input rejected: {e}", throttle_duration_sec=1.0)
            return
        self.image_pub.publish(convert.numpy_to_image(rgb, "rgb8", stamp=self.get_clock().now().to_msg()))
        # The subtask rides in the layout label: the action expert uses a latent only while its
        # subtask is current, whatever order the two topics arrive in.
        dim = MultiArrayDimension(label=subtask, size=len(latent), stride=len(latent))
        self.latent_pub.publish(Float32MultiArray(layout=MultiArrayLayout(dim=[dim]),
                                                  data=latent.astype(np.float32).tolist()))


def main(args: list[str] | None = None) -> int:
    return node_util.run(WorldModelNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
