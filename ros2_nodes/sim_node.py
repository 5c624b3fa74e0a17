"""sim_node: a MuJoCo task of the suite in soft real time, speaking the same topics as a robot.

Every `1 / rate_hz` seconds it applies the newest command (a `TwistStamped` velocity times
the step period, plus the gripper command; zero motion when the command is older than
`command_timeout_s`, as a robot controller would), steps the gymnasium environment once and
publishes what a robot's drivers would: `rgb` and `depth` Images, `camera_info` (the
observation camera, the one the point cloud comes from), `points` (PointCloud2 in the base
frame, with colour), `joint_states`, `ee_pose`; each camera named in `extra_cameras` as
`<name>/rgb`, `<name>/depth`, `<name>/camera_info` (e.g. `front`, the world model's; rendered
only while subscribed); plus
`sim/info` (latched JSON: instruction, subtask, subtask index, success, the episode's step,
`total_steps` since start-up and `overruns` of the step period), which only a
simulator can know. `sim/reset` (String): empty resets the episode, a task name switches task.
"""

from __future__ import annotations

import json
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from std_msgs.msg import Float64, String

from vla_stack import schema
from vla_stack.ros2_nodes import convert, node_util, qos

N_JOINTS = {"panda": 7, "ur5e": 6}


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim")
        p = lambda *a, **k: node_util.declare(self, *a, **k)  # noqa: E731
        self.task = p("task", "OpenDrawerThenStackRedOnGreen", "task name (see `vla sim tasks`)")
        self.robot = p("robot", "panda", "arm model", choices=list(N_JOINTS))
        self.seed = p("seed", 0, "episode seed (incremented at every reset)", low=0, high=2**31 - 1)
        self.image_size = p("image_size", 128, "camera image side (pixels)", low=16, high=1024)
        self.n_points = p("n_points", 1024, "points per published cloud", low=16, high=65536)
        self.rate_hz = p("rate_hz", 20.0, "simulation step rate = control rate (Hz)", low=1.0, high=500.0)
        self.command_timeout_s = p("command_timeout_s", 0.15, "older commands count as zero motion (s)",
                                   low=1e-3, high=10.0)
        self.auto_reset = p("auto_reset", True, "start a new episode when one ends")
        self.base_frame = p("base_frame", "base", "frame of points and poses")
        self.camera_frame = p("camera_frame", "camera", "optical frame of the images")
        self.extra_cameras = [c.strip() for c in p(
            "extra_cameras", "", "more fixed cameras to publish, comma-separated (e.g. 'front', the world model's): "
            "<name>/rgb, <name>/depth, <name>/camera_info in frame <name>_camera").split(",") if c.strip()]
        self.joint_names = [f"joint{i + 1}" for i in range(N_JOINTS[self.robot])] + ["gripper"]

        self.pubs = {
            "rgb": self.create_publisher(Image, "rgb", qos.SENSOR),
            "depth": self.create_publisher(Image, "depth", qos.SENSOR),
            "camera_info": self.create_publisher(CameraInfo, "camera_info", qos.SENSOR),
            "points": self.create_publisher(PointCloud2, "points", qos.SENSOR),
            "joint_states": self.create_publisher(JointState, "joint_states", qos.SENSOR),
            "ee_pose": self.create_publisher(PoseStamped, "ee_pose", qos.SENSOR),
            "info": self.create_publisher(String, "sim/info", qos.LATCHED),
        }
        for cam in self.extra_cameras:
            for topic, msg_type in (("rgb", Image), ("depth", Image), ("camera_info", CameraInfo)):
                self.pubs[f"{cam}/{topic}"] = self.create_publisher(msg_type, f"{cam}/{topic}", qos.SENSOR)
        self.extra_renderers = None
        self.velocity = np.zeros(6)
        self.velocity_time = -np.inf
        self.gripper = schema.GRIPPER_OPEN
        self.create_subscription(TwistStamped, "cmd_twist", self.on_twist, qos.COMMAND)
        self.create_subscription(Float64, "gripper_cmd", self.on_gripper, qos.COMMAND)
        self.create_subscription(String, "sim/reset", self.on_reset, qos.COMMAND)
        self.env = None
        self.overruns = self.total_steps = 0
        self.make_env(self.task)
        self.create_timer(1.0 / self.rate_hz, self.tick)

    # -- environment -------------------------------------------------------------------
    def make_env(self, task: str) -> None:
        import mujoco

        import vla_stack.sim
        from vla_stack.sim.cameras import RendererPool, intrinsics

        try:
            env = vla_stack.sim.make(task, robot=self.robot, image_size=self.image_size, n_points=self.n_points)
        except schema.SchemaError as e:
            raise node_util.ParameterError(f"sim: {e}") from None
        model = env.unwrapped.scene.model
        known = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        unknown = [c for c in self.extra_cameras if c not in known]
        if unknown:
            env.close()
            raise node_util.ParameterError(f"sim: parameter 'extra_cameras': no camera {unknown} in the scene; it has {known}")
        self.close()
        self.env, self.task = env, task
        self.camera = next(iter(env.unwrapped.cameras))
        self.extra_renderers = RendererPool(model) if self.extra_cameras else None
        self.extra_intrinsics = {c: intrinsics(model, known.index(c), self.image_size, self.image_size)
                                 for c in self.extra_cameras}
        self.reset()

    def reset(self) -> None:
        self.obs, self.info = self.env.reset(seed=self.seed)
        self.seed += 1
        self.step_index, self.episode_done = 0, False
        self.get_logger().info(f"episode of {self.task}: {self.info.get(schema.INFO_INSTRUCTION)!r}")
        self.publish()

    def on_reset(self, msg: String) -> None:
        try:
            if msg.data.strip():
                self.make_env(msg.data.strip())
            else:
                self.reset()
        except node_util.ParameterError as e:
            self.get_logger().error(str(e))

    # -- commands ------------------------------------------------------------------------
    def on_twist(self, msg: TwistStamped) -> None:
        try:
            self.velocity, self.velocity_time = convert.twist_to_numpy(msg), time.monotonic()
        except schema.SchemaError as e:
            self.get_logger().error(f"rejected cmd_twist: {e}", throttle_duration_sec=1.0)
            self.velocity_time = -np.inf

    def on_gripper(self, msg: Float64) -> None:
        if np.isfinite(msg.data):
            self.gripper = float(np.clip(msg.data, schema.GRIPPER_CLOSED, schema.GRIPPER_OPEN))

    def action(self) -> np.ndarray:
        dt = 1.0 / self.rate_hz
        fresh = time.monotonic() - self.velocity_time <= self.command_timeout_s
        delta = self.velocity * dt if fresh else np.zeros(6)
        return schema.validate_action(np.concatenate([delta, [self.gripper]]))

    # -- loop ------------------------------------------------------------------------------
    def tick(self) -> None:
        t0 = time.monotonic()
        if self.episode_done:
            if not self.auto_reset:
                return
            self.reset()
            return
        self.obs, _reward, terminated, truncated, self.info = self.env.step(self.action())
        self.step_index += 1
        self.total_steps += 1
        self.episode_done = bool(terminated or truncated)
        self.publish()
        if time.monotonic() - t0 > 1.0 / self.rate_hz:
            self.overruns += 1
            self.get_logger().warning(f"step took {1e3 * (time.monotonic() - t0):.1f} ms, over the period "
                                      f"({self.overruns} overruns)", throttle_duration_sec=5.0)

    def publish(self) -> None:
        stamp = self.get_clock().now().to_msg()
        obs = self.obs
        intr, _extr = self.env.unwrapped.cameras[self.camera]
        # Proprio first and the cloud last: a node that ticks on each new cloud then sees the
        # state of the same step.
        state = schema.RobotState.from_vector(obs[schema.OBS_STATE], n_joints=len(self.joint_names) - 1)
        self.pubs["joint_states"].publish(convert.numpy_to_joint_state(
            self.joint_names, np.append(state.joints, state.gripper), stamp=stamp))
        self.pubs["ee_pose"].publish(convert.numpy_to_pose(state.ee_pos, state.ee_quat, frame_id=self.base_frame, stamp=stamp))
        self.pubs["camera_info"].publish(convert.intrinsics_to_camera_info(intr, frame_id=self.camera_frame, stamp=stamp))
        self.pubs["rgb"].publish(convert.numpy_to_image(obs[schema.OBS_RGB], "rgb8", frame_id=self.camera_frame, stamp=stamp))
        self.pubs["depth"].publish(convert.numpy_to_image(np.asarray(obs[schema.OBS_DEPTH], np.float32), "32FC1",
                                                          frame_id=self.camera_frame, stamp=stamp))
        self.publish_extra_cameras(stamp)
        self.pubs["points"].publish(convert.numpy_to_pointcloud2(obs[schema.OBS_POINTS], obs.get(schema.OBS_COLORS),
                                                                 frame_id=self.base_frame, stamp=stamp))
        info = {k: self.info.get(k) for k in (schema.INFO_INSTRUCTION, schema.INFO_SUBTASK, schema.INFO_SUBTASK_INDEX,
                                              schema.INFO_SUCCESS)}
        info.update(task=self.task, step=self.step_index, total_steps=self.total_steps, episode_done=self.episode_done,
                    overruns=self.overruns)
        self.pubs["info"].publish(String(data=json.dumps(info, default=_jsonable)))

    def publish_extra_cameras(self, stamp) -> None:
        """Rendered only while someone listens (a 128x128 RGB-D render costs about a quarter of a step)."""
        for cam in self.extra_cameras:
            if not any(self.pubs[f"{cam}/{t}"].get_subscription_count() for t in ("rgb", "depth", "camera_info")):
                continue
            rgb, depth = self.extra_renderers.rgbd(self.env.unwrapped.scene.data, cam, self.image_size, self.image_size)
            frame = f"{cam}_camera"
            self.pubs[f"{cam}/camera_info"].publish(convert.intrinsics_to_camera_info(
                self.extra_intrinsics[cam], frame_id=frame, stamp=stamp))
            self.pubs[f"{cam}/rgb"].publish(convert.numpy_to_image(rgb, "rgb8", frame_id=frame, stamp=stamp))
            self.pubs[f"{cam}/depth"].publish(convert.numpy_to_image(depth, "32FC1", frame_id=frame, stamp=stamp))

    def close(self) -> None:
        if self.extra_renderers is not None:
            self.extra_renderers.close()
            self.extra_renderers = None
        if self.env is not None:
            self.env.close()


def _jsonable(x):
    return x.item() if isinstance(x, np.generic) else str(x)


def main(args: list[str] | None = None) -> int:
    return node_util.run(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
