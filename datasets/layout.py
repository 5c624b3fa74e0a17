"""On-disk layout of a dataset: LeRobotDataset v3.0 paths, feature names and `info.json`.

Kept in one place so the writer, reader, validator and docs/datasets.md agree. Feature
names follow LeRobot (`observation.state`, `action`, `observation.images.<camera>`); the
extras this stack needs (point clouds, depth, subtask annotations) are added as ordinary
features, so a LeRobot reader sees them as extra columns it may ignore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vla_stack import schema

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory, as LeRobot
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
SUBTASKS_PATH = "meta/subtasks.parquet"  # deviation: LeRobot has no subtask table
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"

# Feature names (dataset columns) for the schema's observation keys.
STATE = "observation.state"
ACTION = "action"
POINTS = "observation.points"
COLORS = "observation.colors"
DEPTH = "observation.depth"
IMAGE_PREFIX = "observation.images."
SUBTASK_INDEX = "subtask_index"
SUBTASK_DONE = "subtask_done"
SUCCESS = "next.success"
DONE = "next.done"
# Bookkeeping columns every LeRobot dataset has.
TIMESTAMP, FRAME_INDEX, EPISODE_INDEX, INDEX, TASK_INDEX = "timestamp", "frame_index", "episode_index", "index", "task_index"

#: Fields every v3.0 `meta/info.json` carries (LeRobot's `create_empty_dataset_info` plus
#: the totals it maintains). The test suite checks written datasets against this list.
LEROBOT_INFO_FIELDS = (
    "codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks",
    "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits",
    "data_path", "video_path", "features",
)
FEATURE_DTYPES = ("float32", "float64", "int64", "bool", "string", "video", "image", "uint8")


def image_key(camera: str) -> str:
    return IMAGE_PREFIX + camera


def chunk_file(file_number: int) -> tuple[int, int]:
    """Global file number -> (chunk_index, file_index): CHUNKS_SIZE files per chunk."""
    return file_number // CHUNKS_SIZE, file_number % CHUNKS_SIZE


def data_path(root: Path, chunk_index: int, file_index: int) -> Path:
    return Path(root) / DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)


def video_path(root: Path, video_key: str, chunk_index: int, file_index: int) -> Path:
    return Path(root) / VIDEO_PATH.format(video_key=video_key, chunk_index=chunk_index, file_index=file_index)


@dataclass
class DatasetSpec:
    """What a dataset holds; becomes `meta/info.json` features. Zero means "not recorded"."""

    fps: int = 20
    robot_type: str = "panda"
    n_points: int = 1024
    cameras: dict[str, tuple[int, int]] = field(default_factory=lambda: {"rgb": (128, 128)})  # name -> (H, W)
    depth_shape: tuple[int, int] | None = None  # (H, W) to store float32 depth in the parquet
    state_dim: int = schema.STATE_DIM
    action_dim: int = schema.ACTION_DIM
    video_codec: str = "libx264"
    video_pix_fmt: str = "yuv420p"
    video_crf: int = 18
    camera_params: dict = field(default_factory=dict)  # name -> {"intrinsics": {...}, "extrinsics": {...}}

    def features(self) -> dict[str, dict]:
        f: dict[str, dict] = {
            STATE: {"dtype": "float32", "shape": [self.state_dim], "names": _state_names(self.state_dim)},
            ACTION: {"dtype": "float32", "shape": [self.action_dim], "names": list(schema.ACTION_NAMES)[: self.action_dim]},
        }
        if self.n_points:
            f[POINTS] = {"dtype": "float32", "shape": [self.n_points, 3], "names": ["point", "xyz"],
                         "info": {"frame": "robot base", "unit": "m"}}
            f[COLORS] = {"dtype": "float32", "shape": [self.n_points, 3], "names": ["point", "rgb"],
                         "info": {"range": [0.0, 1.0]}}
        if self.depth_shape:
            h, w = self.depth_shape
            f[DEPTH] = {"dtype": "float32", "shape": [h, w], "names": ["height", "width"], "info": {"unit": "m"}}
        for cam, (h, w) in self.cameras.items():
            f[image_key(cam)] = {
                "dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                "info": {"video.height": h, "video.width": w, "video.codec": _codec_name(self.video_codec),
                         "video.pix_fmt": self.video_pix_fmt, "video.is_depth_map": False, "video.fps": self.fps,
                         "video.channels": 3, "has_audio": False},
            }
        f[SUBTASK_INDEX] = {"dtype": "int64", "shape": [1], "names": None}
        f[SUBTASK_DONE] = {"dtype": "bool", "shape": [1], "names": None}
        f[SUCCESS] = {"dtype": "bool", "shape": [1], "names": None}
        f[DONE] = {"dtype": "bool", "shape": [1], "names": None}
        f[TIMESTAMP] = {"dtype": "float32", "shape": [1], "names": None}
        for k in (FRAME_INDEX, EPISODE_INDEX, INDEX, TASK_INDEX):
            f[k] = {"dtype": "int64", "shape": [1], "names": None}
        return f

    def to_info(self) -> dict:
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": 0,
            "total_frames": 0,
            "total_tasks": 0,
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200,
            "fps": self.fps,
            "splits": {},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.cameras else None,
            "features": self.features(),
            # Deviations (extra keys LeRobot ignores), documented in docs/datasets.md.
            "vla_stack": {
                "subtasks_path": SUBTASKS_PATH,
                "total_subtasks": 0,
                "cameras": self.camera_params,
                "video_crf": self.video_crf,
                "video_encoder": self.video_codec,
            },
        }

    @classmethod
    def from_info(cls, info: dict) -> "DatasetSpec":
        feats = info["features"]
        cams = {k[len(IMAGE_PREFIX):]: (v["shape"][0], v["shape"][1]) for k, v in feats.items()
                if k.startswith(IMAGE_PREFIX) and v.get("dtype") == "video"}
        extra = info.get("vla_stack", {})
        vinfo = next((feats[image_key(c)]["info"] for c in cams), {})
        return cls(
            fps=int(info["fps"]), robot_type=info.get("robot_type") or "unknown",
            n_points=feats[POINTS]["shape"][0] if POINTS in feats else 0,
            cameras=cams, depth_shape=tuple(feats[DEPTH]["shape"]) if DEPTH in feats else None,
            state_dim=feats[STATE]["shape"][0], action_dim=feats[ACTION]["shape"][0],
            video_codec=extra.get("video_encoder", "libx264"), video_pix_fmt=vinfo.get("video.pix_fmt", "yuv420p"),
            video_crf=int(extra.get("video_crf", 18)), camera_params=extra.get("cameras", {}),
        )


def _codec_name(encoder: str) -> str:
    return {"libx264": "h264", "libsvtav1": "av1", "libvpx-vp9": "vp9"}.get(encoder, encoder)


def _state_names(n: int) -> list[str]:
    names = ["ee_x", "ee_y", "ee_z", "ee_qw", "ee_qx", "ee_qy", "ee_qz", "gripper_m"]
    names += [f"joint_{i}" for i in range(schema.MAX_JOINTS)]
    return names[:n] if n <= len(names) else names + [f"state_{i}" for i in range(len(names), n)]
