"""action_expert_node: point cloud + proprio + subtask in, safe end-effector commands out at a fixed rate.

Every control tick it reads the newest inputs, steps the action expert once (the Mamba state
is carried across ticks and cleared when a new instruction arrives), passes the proposal
through the model-independent `SafetyFilter` and publishes a `TwistStamped` (the per-tick
delta divided by the tick period) and a gripper command. Malformed input never reaches the
model: it is logged, the input counts as missing and the command is zero motion until a
good message arrives.

Topics (relative, remappable): in `points` (PointCloud2) or `depth` + `camera_info`
(Image, CameraInfo; `cloud_source:=depth`), `joint_states`, `ee_pose`, `subtask`,
`instruction`, `subgoal_latent` (Float32MultiArray), `estop` (Bool, latched),
`estop_reset` (Empty); out `cmd_twist`, `gripper_cmd` (Float64), `safety_status` (String) and,
with `joint_trajectory_arm:=panda|ur5e`, `joint_trajectory` (one point one tick ahead).
"""

from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from std_msgs.msg import Bool, Empty, Float32MultiArray, Float64, String
from trajectory_msgs.msg import JointTrajectory

from vla_stack import schema
from vla_stack.ros2_nodes import cloud, convert, node_util, qos
from vla_stack.ros2_nodes.joint_command import JointCommander
from vla_stack.ros2_nodes.observation import ObservationBuffer
from vla_stack.ros2_nodes.safety import SafetyConfig, SafetyFilter


class ActionExpertNode(Node):
    def __init__(self, policy=None) -> None:
        super().__init__("action_expert")
        p = lambda *a, **k: node_util.declare(self, *a, **k)  # noqa: E731
        self.checkpoint = p("checkpoint", "", "action expert checkpoint directory (model.safetensors + config.json)",
                            check=lambda v: None if v or policy is not None else "required")
        self.cloud_source = p("cloud_source", "points", "where points come from", choices=["points", "depth"])
        self.trigger = p("trigger", "timer", "timer: tick at control_rate_hz; cloud: tick on each new cloud "
                         "(lowest latency when the camera runs at the control rate), the timer then only "
                         "covers silent periods", choices=["timer", "cloud"])
        self.base_frame = p("base_frame", "base", "frame of the robot base; points must be given in it")
        self.n_points = p("n_points", 1024, "points given to the policy per tick", low=16, high=65536)
        self.max_points = p("max_points", 500_000, "larger incoming clouds are refused", low=16, high=10_000_000)
        self.gripper_joint = p("gripper_joint", "gripper", "joint_states entry holding the gripper opening (m)")
        self.arm_joints = p("arm_joints", [""], "arm joints in policy order (empty: all but the gripper)")
        self.trajectory_arm = p("joint_trajectory_arm", "", "also publish joint_trajectory for this arm's "
                                "kinematics (empty: off)", choices=["", "panda", "ur5e"])
        self.camera_pose = p("camera_pose", [0.0] * 7, "depth source: camera optical frame in base, x y z qw qx qy qz",
                             check=lambda v: None if len(v) == 7 else "needs 7 numbers")
        safety_cfg = node_util.declare_safety(self)
        self.safety = SafetyFilter(SafetyConfig(**{**safety_cfg.__dict__,
                                                   "required_inputs": ("points", "joint_states", "ee_pose")}))
        self.dt = 1.0 / safety_cfg.control_rate_hz

        threads = p("torch_threads", 1, "CPU threads for the policy (1 keeps the control tick's jitter low)",
                    low=1, high=256)
        if policy is None:
            import torch

            from vla_stack.policy import ActionExpert  # heavy import only when the node really runs

            torch.set_num_threads(threads)

            try:
                policy = ActionExpert.load(self.checkpoint)
            except (OSError, ValueError) as e:  # SchemaError is a ValueError
                raise node_util.ParameterError(f"action_expert: cannot load checkpoint {self.checkpoint!r}: {e}") from None
        self.policy = policy
        if hasattr(policy, "embed"):
            policy.embed("warm up")  # load the sentence encoder now, not during the first control tick
        self.obs = ObservationBuffer(base_frame=self.base_frame, n_points=self.n_points, max_points=self.max_points,
                                     gripper_joint=self.gripper_joint, arm_joints=list(self.arm_joints),
                                     crop=(safety_cfg.workspace_min_m, safety_cfg.workspace_max_m))
        self.subtask: str | None = None
        self._ticks_done = 0  # control ticks since the planner said DONE (an open hand backs off first)
        self.subgoal_latent: np.ndarray | None = None
        self.subgoal_subtask = ""  # the subtask the world model predicted subgoal_latent for
        self.intrinsics: schema.CameraIntrinsics | None = None
        self._last_status = None
        self.ticks = 0
        self.last_tick = -float("inf")

        if self.cloud_source == "points":
            self.create_subscription(PointCloud2, "points", self.on_points, qos.SENSOR)
        else:
            self.create_subscription(Image, "depth", self.on_depth, qos.SENSOR)
            self.create_subscription(CameraInfo, "camera_info", self.on_camera_info, qos.SENSOR)
        self.create_subscription(JointState, "joint_states", self.on_joint_state, qos.SENSOR)
        self.create_subscription(PoseStamped, "ee_pose", self.on_ee_pose, qos.SENSOR)
        self.create_subscription(String, "subtask", self.on_subtask, qos.LATCHED)
        self.create_subscription(String, "instruction", self.on_instruction, qos.LATCHED)
        self.create_subscription(Float32MultiArray, "subgoal_latent", self.on_subgoal_latent, qos.LATCHED)
        self.create_subscription(Bool, "estop", self.on_estop, qos.LATCHED)
        self.create_subscription(Empty, "estop_reset", self.on_estop_reset, qos.COMMAND)
        self.twist_pub = self.create_publisher(TwistStamped, "cmd_twist", qos.COMMAND)
        self.gripper_pub = self.create_publisher(Float64, "gripper_cmd", qos.COMMAND)
        self.status_pub = self.create_publisher(String, "safety_status", qos.LATCHED)
        self.joint_commander = self.trajectory_pub = None
        if self.trajectory_arm:
            self.joint_commander = JointCommander(self.trajectory_arm)
            self.trajectory_pub = self.create_publisher(JointTrajectory, "joint_trajectory", qos.COMMAND)
        self.create_timer(self.dt / (2 if self.trigger == "cloud" else 1), self.on_timer)
        self.get_logger().info(f"ready: {safety_cfg.control_rate_hz:g} Hz, cloud from {self.cloud_source}")

    # -- inputs ------------------------------------------------------------------------------
    def _reject(self, what: str, err: Exception, watchdog_input: str | None = None) -> None:
        self.get_logger().error(f"rejected {what}: {err}", throttle_duration_sec=1.0)
        if watchdog_input:
            self.safety.watchdog.invalidate(watchdog_input)

    def _update(self, what: str, watchdog_input: str, update, msg) -> None:
        try:
            update(msg)
            self.safety.watchdog.feed(watchdog_input, time.monotonic())
        except schema.SchemaError as e:
            self._reject(what, e, watchdog_input)

    def on_points(self, msg: PointCloud2) -> None:
        self._update("point cloud", "points", self.obs.update_points, msg)
        if self.trigger == "cloud":
            self.tick()

    def on_joint_state(self, msg: JointState) -> None:
        self._update("joint state", "joint_states", self.obs.update_joint_state, msg)

    def on_ee_pose(self, msg: PoseStamped) -> None:
        self._update("end-effector pose", "ee_pose", self.obs.update_ee_pose, msg)

    def on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self.intrinsics = convert.camera_info_to_intrinsics(msg)
        except schema.SchemaError as e:
            self._reject("camera_info", e)

    def _depth_to_cloud(self, msg: Image) -> None:
        depth = convert.image_to_depth_m(msg)
        if self.intrinsics is None:
            raise schema.SchemaError("depth: no camera_info received yet")
        pose = np.asarray(self.camera_pose, np.float64)
        if not np.isfinite(pose).all() or np.linalg.norm(pose[3:]) < 1e-6:
            raise schema.SchemaError(f"depth: parameter camera_pose {pose.tolist()} is not a valid pose")
        ext = schema.CameraExtrinsics(rotation=cloud.quat_wxyz_to_matrix(pose[3:]), translation=pose[:3])
        self.obs.set_cloud(*cloud.backproject(depth, self.intrinsics, ext))

    def on_depth(self, msg: Image) -> None:
        self._update("depth image", "points", self._depth_to_cloud, msg)
        if self.trigger == "cloud":
            self.tick()

    def on_subtask(self, msg: String) -> None:
        text = msg.data.strip()
        if text != (self.subtask or ""):
            self.get_logger().info(f"subtask: {text!r}" if text else "subtask withdrawn: holding still")
        self.subtask = text or None

    def on_instruction(self, msg: String) -> None:
        # Only the recurrent state: the subtask and subgoal belong to the planner and the world
        # model, which react to this same instruction on their own topics, so their answers can
        # arrive here before it does. Clearing them here wiped the new plan's first subtask
        # (the integration test's intermittent "no motion"); the planner withdraws the old
        # subtask itself by publishing an empty one.
        self.policy.reset()
        self.get_logger().info(f"new instruction {msg.data!r}: policy state reset")

    def on_subgoal_latent(self, msg: Float32MultiArray) -> None:
        try:
            latent = schema.check_array("subgoal_latent", np.asarray(msg.data, np.float32), (None,))
        except schema.SchemaError as e:
            self.subgoal_latent = None
            self._reject("subgoal latent", e)
            return
        labels = [d.label for d in msg.layout.dim]
        self.subgoal_latent, self.subgoal_subtask = latent, (labels[0] if labels else "")

    def current_subgoal_latent(self) -> np.ndarray | None:
        """The latent predicted for the current subtask (an unlabelled one is trusted as current)."""
        if self.subgoal_latent is None or self.subgoal_subtask not in ("", self.subtask):
            return None
        return self.subgoal_latent

    def on_estop(self, msg: Bool) -> None:
        if msg.data and not self.safety.estopped:
            self.safety.estop("estop topic")
            self.get_logger().warning("E-STOP latched: zero motion until estop_reset")

    def on_estop_reset(self, _msg: Empty) -> None:
        if self.safety.estopped:
            self.safety.release_estop()
            self.get_logger().warning("e-stop released")

    # -- control tick -----------------------------------------------------------------------
    def propose(self) -> np.ndarray | None:
        if not self.obs.complete:
            return None
        if self.subtask == schema.DONE_TOKEN:   # done: an open hand backs off, then holds
            self._ticks_done += 1
            return self.safety.finished_action(self._ticks_done - 1)
        self._ticks_done = 0
        if self.subtask is None:
            return np.array([0, 0, 0, 0, 0, 0, self.safety.held_gripper], np.float32)  # nothing to do: hold
        try:
            return self.policy.step(self.obs.points, self.obs.colors, self.obs.state(), subtask=self.subtask,
                                    subgoal_latent=self.current_subgoal_latent())
        except (schema.SchemaError, ValueError, RuntimeError) as e:
            self._reject("policy step", e)
            return None

    def on_timer(self) -> None:
        if self.trigger == "timer" or time.monotonic() - self.last_tick > 1.5 * self.dt:
            self.tick()

    def tick(self) -> None:
        now = self.last_tick = time.monotonic()
        stamp = self.get_clock().now().to_msg()
        verdict = self.safety.filter(None if self.safety.estopped else self.propose(), self.obs.ee_pos, now)
        a = verdict.action
        self.twist_pub.publish(convert.numpy_to_twist(a[:6] / self.dt, frame_id=self.base_frame, stamp=stamp))
        self.gripper_pub.publish(Float64(data=float(a[6])))
        if self.joint_commander is not None and self.obs.joints is not None:
            try:
                self.trajectory_pub.publish(self.joint_commander.message(self.obs.joint_names, self.obs.joints, a,
                                                                         self.dt, stamp))
            except schema.SchemaError as e:
                self._reject("joint trajectory", e)
        self.ticks += 1
        status = verdict.describe()
        if verdict.stopped and status != self._last_status:
            self.get_logger().warning(status)
        if status != self._last_status or self.ticks % 20 == 0:
            self.status_pub.publish(String(data=status))
        self._last_status = status


def main(args: list[str] | None = None) -> int:
    return node_util.run(ActionExpertNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
