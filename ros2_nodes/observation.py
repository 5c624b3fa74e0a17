"""The newest robot observation assembled from ROS topics, in the schema's layout.

The action expert and the planner both need points + colours + the proprio state vector;
this buffer decodes and validates each message as it arrives (via `convert`), keeps the
newest good value, records when it arrived (for the watchdog) and forgets an input when a
malformed message replaces it, so a bad frame is never silently covered by an old one.
"""

from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState, PointCloud2

from vla_stack import schema
from vla_stack.ros2_nodes import cloud, convert


class ObservationBuffer:
    def __init__(self, *, base_frame: str = "base", n_points: int = 1024, max_points: int = 500_000,
                 gripper_joint: str = "gripper", arm_joints: list[str] | None = None,
                 crop: tuple[tuple, tuple] | None = None, seed: int = 0) -> None:
        self.base_frame, self.n_points, self.max_points = base_frame, n_points, max_points
        self.gripper_joint, self.arm_joints, self.crop = gripper_joint, [j for j in arm_joints or [] if j], crop
        self.rng = np.random.default_rng(seed)
        self.points = self.colors = None
        self.joints = self.ee_pos = self.ee_quat = None
        self.joint_names: list[str] = []
        self.gripper_opening = 0.0
        self.arrived: dict[str, float] = {}

    # Each update raises schema.SchemaError for a bad message, after forgetting the input.
    def set_cloud(self, pts: np.ndarray, cols: np.ndarray | None) -> None:
        try:
            if self.crop is not None:
                pts, cols = cloud.crop_and_subsample(pts, cols, self.crop[0], self.crop[1], self.n_points, self.rng)
            elif len(pts) > self.n_points:
                pts, cols = cloud.crop_and_subsample(pts, cols, [-np.inf] * 3, [np.inf] * 3, self.n_points, self.rng)
            pts, cols = schema.check_points(pts, cols)
        except schema.SchemaError:
            self.points = self.colors = None
            raise
        self.points, self.colors = pts, (cols if cols is not None else np.full_like(pts, 0.5))
        self.arrived["points"] = time.monotonic()

    def update_points(self, msg: PointCloud2) -> None:
        try:
            if msg.header.frame_id and msg.header.frame_id != self.base_frame:
                raise schema.SchemaError(f"PointCloud2: frame {msg.header.frame_id!r}, expected {self.base_frame!r} "
                                         "(no tf here: publish the cloud in the base frame or use cloud_source:=depth)")
            pts, cols = convert.pointcloud2_to_numpy(msg, max_points=self.max_points)
        except schema.SchemaError:
            self.points = self.colors = None
            raise
        self.set_cloud(pts, cols)

    def update_joint_state(self, msg: JointState) -> None:
        try:
            names = list(msg.name)
            if self.gripper_joint in names:
                self.gripper_opening = float(convert.joint_state_to_numpy(msg, [self.gripper_joint])[0])
            arm = self.arm_joints or [n for n in names if n != self.gripper_joint]
            joints = convert.joint_state_to_numpy(msg, arm)
            if len(joints) > schema.MAX_JOINTS:
                raise schema.SchemaError(f"JointState: {len(joints)} arm joints, at most {schema.MAX_JOINTS}")
        except schema.SchemaError:
            self.joints = None
            raise
        self.joints, self.joint_names = joints, arm
        self.arrived["joint_states"] = time.monotonic()

    def update_ee_pose(self, msg: PoseStamped) -> None:
        try:
            self.ee_pos, self.ee_quat = convert.pose_to_numpy(msg)
        except schema.SchemaError:
            self.ee_pos = self.ee_quat = None
            raise
        self.arrived["ee_pose"] = time.monotonic()

    @property
    def complete(self) -> bool:
        return self.points is not None and self.joints is not None and self.ee_pos is not None

    def state(self) -> np.ndarray:
        return schema.RobotState(self.ee_pos, self.ee_quat, self.gripper_opening, self.joints).to_vector()

    def as_dict(self) -> dict[str, np.ndarray]:
        """The schema observation (points, colors, state) planners and models take."""
        return {schema.OBS_POINTS: self.points, schema.OBS_COLORS: self.colors, schema.OBS_STATE: self.state()}
