"""The one data contract shared by the simulator, datasets, ROS messages and models.

Every part imports its field names, shapes and units from here, so a dataset recorded in
simulation, a ROS topic on a robot and a model input all mean the same thing.

Frames: every position and vector is in the robot *base* frame (x forward, y left, z up,
metres). Vectors in the base frame are what make an E(3)-equivariant policy meaningful:
rotate the scene about the base and the action rotates with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------------------------------
# Action: end-effector delta pose + gripper, base frame.
# ---------------------------------------------------------------------------------------
ACTION_DIM = 7
ACTION_NAMES = ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
#: Per-control-tick limits. Out-of-range actions are clipped to these (documented in README).
MAX_DELTA_POS_M = 0.05  # metres per control tick (1 m/s at 20 Hz)
MAX_DELTA_ROT_RAD = 0.25  # radians per control tick (axis-angle norm, per component clip)
GRIPPER_OPEN = 1.0  # gripper command: +1 open, -1 closed, linear in between
GRIPPER_CLOSED = -1.0
ACTION_LOW = np.array([-MAX_DELTA_POS_M] * 3 + [-MAX_DELTA_ROT_RAD] * 3 + [GRIPPER_CLOSED], np.float32)
ACTION_HIGH = np.array([MAX_DELTA_POS_M] * 3 + [MAX_DELTA_ROT_RAD] * 3 + [GRIPPER_OPEN], np.float32)

# ---------------------------------------------------------------------------------------
# Proprioceptive state: a flat float32 vector with a fixed layout.
# ---------------------------------------------------------------------------------------
#: ee position (3), ee orientation as quaternion w,x,y,z (4), gripper opening in metres (1),
#: then joint positions (n_joints, 7 for the Panda-kinematics arm, 6 for the UR5e one,
#: zero-padded to MAX_JOINTS so both arms share one shape).
MAX_JOINTS = 7
STATE_EE_POS = slice(0, 3)
STATE_EE_QUAT = slice(3, 7)
STATE_GRIPPER = slice(7, 8)
STATE_JOINTS = slice(8, 8 + MAX_JOINTS)
STATE_DIM = 8 + MAX_JOINTS

# ---------------------------------------------------------------------------------------
# Observation keys (gymnasium Dict space, dataset features, model inputs).
# ---------------------------------------------------------------------------------------
OBS_RGB = "rgb"  # uint8 (H, W, 3), fixed scene camera
OBS_DEPTH = "depth"  # float32 (H, W), metres along the optical axis
OBS_WRIST_RGB = "wrist_rgb"  # uint8 (H, W, 3), wrist camera
OBS_POINTS = "points"  # float32 (N, 3), base frame, workspace-cropped, downsampled
OBS_COLORS = "colors"  # float32 (N, 3) in [0, 1], colour of each point
OBS_STATE = "state"  # float32 (STATE_DIM,)

# Language / annotation keys carried in gymnasium `info` and dataset columns.
INFO_INSTRUCTION = "instruction"
INFO_SUBTASK = "subtask"
INFO_SUBTASK_INDEX = "subtask_index"
INFO_SUBTASK_DONE = "subtask_done"  # True on the step where the current subtask completed
INFO_SUCCESS = "success"
DONE_TOKEN = "DONE"  # what a planner returns when the instruction is complete


class SchemaError(ValueError):
    """Input that does not match the contract: names the field and what was wrong."""


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels (OpenCV convention: +x right, +y down, +z forward)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], np.float64)


@dataclass(frozen=True)
class CameraExtrinsics:
    """Pose of the camera's optical frame (OpenCV convention) in the robot base frame."""

    rotation: np.ndarray  # (3, 3) base_R_camera
    translation: np.ndarray  # (3,) camera origin in base frame, metres

    def matrix(self) -> np.ndarray:
        t = np.eye(4)
        t[:3, :3] = self.rotation
        t[:3, 3] = self.translation
        return t


@dataclass
class RobotState:
    ee_pos: np.ndarray  # (3,) metres, base frame
    ee_quat: np.ndarray  # (4,) w, x, y, z, base frame
    gripper: float  # opening in metres (0 = closed)
    joints: np.ndarray  # (n_joints,) radians

    def to_vector(self) -> np.ndarray:
        v = np.zeros(STATE_DIM, np.float32)
        v[STATE_EE_POS] = self.ee_pos
        v[STATE_EE_QUAT] = self.ee_quat
        v[STATE_GRIPPER] = self.gripper
        n = len(self.joints)
        if n > MAX_JOINTS:
            raise SchemaError(f"state.joints: {n} joints, at most {MAX_JOINTS} supported")
        v[STATE_JOINTS.start : STATE_JOINTS.start + n] = self.joints
        return v

    @classmethod
    def from_vector(cls, v: np.ndarray, n_joints: int = MAX_JOINTS) -> "RobotState":
        v = check_array("state", v, (STATE_DIM,))
        return cls(
            ee_pos=v[STATE_EE_POS].copy(),
            ee_quat=v[STATE_EE_QUAT].copy(),
            gripper=float(v[STATE_GRIPPER][0]),
            joints=v[STATE_JOINTS][:n_joints].copy(),
        )


@dataclass
class Action:
    """End-effector delta position (m), delta rotation (axis-angle, rad), gripper (+1 open)."""

    delta_pos: np.ndarray
    delta_rot: np.ndarray
    gripper: float

    def to_array(self) -> np.ndarray:
        return np.concatenate([self.delta_pos, self.delta_rot, [self.gripper]]).astype(np.float32)

    @classmethod
    def from_array(cls, a: np.ndarray) -> "Action":
        a = check_array("action", a, (ACTION_DIM,))
        return cls(delta_pos=a[:3].copy(), delta_rot=a[3:6].copy(), gripper=float(a[6]))


def validate_action(a: np.ndarray) -> np.ndarray:
    """Refuse NaN/inf and wrong shapes; clip the rest to ACTION_LOW..ACTION_HIGH."""
    a = check_array("action", a, (ACTION_DIM,))
    return np.clip(a, ACTION_LOW, ACTION_HIGH).astype(np.float32)


def check_array(name: str, x, shape: tuple, *, finite: bool = True) -> np.ndarray:
    """Shape and finiteness check with an error that names the field.

    `shape` may contain None for a free dimension.
    """
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise SchemaError(f"{name}: cannot be read as a float array ({e})") from None
    if arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape)):
        raise SchemaError(f"{name}: expected shape {shape}, got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise SchemaError(f"{name}: contains {bad} NaN/inf value(s)")
    return arr


def check_points(points, colors=None, *, min_points: int = 16) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate a point cloud at an API boundary (models, ROS nodes)."""
    pts = check_array("points", points, (None, 3))
    if pts.shape[0] < min_points:
        raise SchemaError(f"points: {pts.shape[0]} points, at least {min_points} needed")
    cols = None
    if colors is not None:
        cols = check_array("colors", colors, (pts.shape[0], 3))
    return pts, cols


@dataclass
class SubtaskSegment:
    """One annotated subtask of an episode: steps [start, end) carry `text`."""

    text: str
    start: int
    end: int
    success: bool = False


@dataclass
class EpisodeAnnotation:
    instruction: str
    task: str
    segments: list[SubtaskSegment] = field(default_factory=list)
    success: bool = False
