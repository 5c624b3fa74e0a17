"""Episode-at-a-time writer of LeRobotDataset-v3 directories, crash safe by construction.

An episode is buffered in memory and written as its own data file and video files; the
episode only *exists* once `meta/episodes/...parquet` lists it, and that file (like every
metadata file) is replaced atomically. A SIGKILL mid-episode therefore loses only that
episode; files of an episode that was never committed are overwritten by the next one.
Commit order: videos -> data -> tasks/subtasks -> episodes (the commit point) -> stats -> info.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from vla_stack import schema
from vla_stack.datasets import atomic, layout, stats as stats_mod, video
from vla_stack.datasets.arrow_io import read_strings, read_table, string_table, tensor_column
from vla_stack.datasets.errors import DatasetError
from vla_stack.datasets.layout import DatasetSpec


class DatasetWriter:
    """`create` a new dataset or `resume` one; then start_episode / add_frame / save_episode."""

    def __init__(self, root: Path | str, spec: DatasetSpec, *, _episodes=None, _tasks=None, _subtasks=None):
        self.root = Path(root)
        self.spec = spec
        self.features = spec.features()
        self.episodes: list[dict] = list(_episodes or [])
        self.tasks: list[str] = list(_tasks or [])
        self.subtasks: list[str] = list(_subtasks or [])
        self._buffer: list[dict] | None = None
        self._task: str | None = None

    # ----------------------------------------------------------------------------- open
    @classmethod
    def create(cls, root: Path | str, spec: DatasetSpec, *, overwrite: bool = False) -> "DatasetWriter":
        root = Path(root)
        if root.exists() and any(root.iterdir()):
            if not overwrite:
                raise DatasetError("directory exists and is not empty: pass --resume to append or --overwrite "
                                   "to replace it", path=root)
            if not (root / layout.INFO_PATH).is_file() and not _looks_empty_of_user_data(root):
                raise DatasetError("refusing --overwrite: directory holds files but no meta/info.json "
                                   "(not a dataset?)", path=root)
            shutil.rmtree(root)
        root.mkdir(parents=True, exist_ok=True)
        w = cls(root, spec)
        w._write_meta()
        return w

    @classmethod
    def resume(cls, root: Path | str, spec: DatasetSpec | None = None) -> "DatasetWriter":
        """Append to an existing dataset; metadata is re-derived from meta/episodes (repairs a torn commit)."""
        root = Path(root)
        info_path = root / layout.INFO_PATH
        if not info_path.is_file():
            raise DatasetError("cannot resume: meta/info.json is missing", path=info_path)
        info = json.loads(info_path.read_text())
        stored = DatasetSpec.from_info(info)
        if spec is not None and spec.features() != stored.features():
            diff = sorted(k for k in set(spec.features()) | set(stored.features())
                          if spec.features().get(k) != stored.features().get(k))
            raise DatasetError(f"cannot resume: the recording's features differ from the dataset's ({diff})",
                               path=info_path)
        episodes = []
        if (root / layout.EPISODES_PATH).is_file():
            episodes = read_table(root / layout.EPISODES_PATH).to_pylist()
        tasks = read_strings(root / layout.TASKS_PATH, "task", "task_index") if (root / layout.TASKS_PATH).is_file() else []
        subtasks = (read_strings(root / layout.SUBTASKS_PATH, "subtask", "subtask_index")
                    if (root / layout.SUBTASKS_PATH).is_file() else [])
        for tmp in root.rglob(".*.tmp"):  # half-written files of a killed run
            tmp.unlink(missing_ok=True)
        w = cls(root, stored, _episodes=episodes, _tasks=tasks, _subtasks=subtasks)
        w._write_meta()
        return w

    # ----------------------------------------------------------------------------- record
    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(sum(e["length"] for e in self.episodes))

    def start_episode(self, task: str) -> None:
        if not isinstance(task, str) or not task.strip():
            raise DatasetError(f"episode task (instruction) must be a non-empty string, got {task!r}")
        self._buffer, self._task = [], task

    def add_frame(self, frame: dict) -> None:
        """One control step: observation features, the action taken, the step's annotations.

        Keys: layout.STATE, ACTION, POINTS, COLORS, [DEPTH], observation.images.<cam>,
        "subtask" (text), SUBTASK_DONE, SUCCESS (the env's success after this action).
        """
        if self._buffer is None:
            raise DatasetError("add_frame before start_episode")
        f = {}
        for key, feat in self.features.items():
            if key in (layout.TIMESTAMP, layout.FRAME_INDEX, layout.EPISODE_INDEX, layout.INDEX, layout.TASK_INDEX,
                       layout.SUBTASK_INDEX, layout.DONE):
                continue
            if key not in frame:
                raise DatasetError(f"frame {len(self._buffer)}: missing feature {key!r}")
            value = frame[key]
            if feat["dtype"] == "video":
                img = np.asarray(value)
                if img.dtype != np.uint8 or img.shape != tuple(feat["shape"]):
                    raise DatasetError(f"frame {len(self._buffer)}: {key} must be uint8 {tuple(feat['shape'])}, "
                                       f"got {img.dtype} {img.shape}")
                f[key] = img
            elif feat["dtype"] == "bool":
                f[key] = bool(value)
            else:
                try:
                    f[key] = schema.check_array(f"frame {len(self._buffer)}: {key}", value, tuple(feat["shape"]))
                except schema.SchemaError as e:
                    raise DatasetError(str(e)) from None
        subtask = frame.get("subtask")
        if not isinstance(subtask, str) or not subtask.strip():
            raise DatasetError(f"frame {len(self._buffer)}: 'subtask' must be a non-empty string, got {subtask!r}")
        f["subtask"] = subtask
        self._buffer.append(f)

    def discard_episode(self) -> None:
        self._buffer, self._task = None, None

    def save_episode(self, *, success: bool | None = None) -> int:
        """Write the buffered episode and commit it; returns its episode index."""
        if not self._buffer:
            raise DatasetError("save_episode: the episode has no frames")
        frames, task = self._buffer, self._task
        ep = self.num_episodes
        n = len(frames)
        start = self.num_frames
        chunk, file = layout.chunk_file(ep)  # one data file and one video file per episode
        if task not in self.tasks:
            self.tasks.append(task)
        sub_idx = []
        for f in frames:
            if f["subtask"] not in self.subtasks:
                self.subtasks.append(f["subtask"])
            sub_idx.append(self.subtasks.index(f["subtask"]))
        success = bool(frames[-1][layout.SUCCESS]) if success is None else bool(success)
        row: dict = {
            "episode_index": ep, "tasks": [task], "length": n,
            "data/chunk_index": chunk, "data/file_index": file,
            "dataset_from_index": start, "dataset_to_index": start + n,
        }
        ep_stats: dict[str, dict] = {}
        # 1. videos
        for key, feat in self.features.items():
            if feat["dtype"] != "video":
                continue
            imgs = np.stack([f[key] for f in frames])
            path = layout.video_path(self.root, key, chunk, file)
            with atomic.atomic_path(path) as tmp:
                video.encode_frames(tmp, imgs, self.spec.fps, codec=self.spec.video_codec,
                                    pix_fmt=self.spec.video_pix_fmt, crf=self.spec.video_crf)
            row.update({f"videos/{key}/chunk_index": chunk, f"videos/{key}/file_index": file,
                        f"videos/{key}/from_timestamp": 0.0, f"videos/{key}/to_timestamp": n / self.spec.fps})
            ep_stats[key] = stats_mod.image_stats(imgs)
        # 2. data
        cols: dict[str, pa.Array] = {}
        for key, feat in self.features.items():
            if feat["dtype"] in ("video",) or key in (layout.TIMESTAMP, layout.FRAME_INDEX, layout.EPISODE_INDEX,
                                                      layout.INDEX, layout.TASK_INDEX, layout.SUBTASK_INDEX, layout.DONE):
                continue
            x = np.stack([np.asarray(f[key]) for f in frames])
            cols[key] = tensor_column(x, feat["dtype"])
            if key in (layout.STATE, layout.ACTION):
                ep_stats[key] = stats_mod.array_stats(x, (0,))
            elif key in (layout.POINTS, layout.COLORS):
                ep_stats[key] = stats_mod.array_stats(x, (0, 1))
            elif key == layout.DEPTH:
                ep_stats[key] = {k: np.atleast_1d(v) for k, v in stats_mod.array_stats(x[..., None], (0, 1, 2)).items()}
        cols[layout.SUBTASK_INDEX] = pa.array(sub_idx, pa.int64())
        cols[layout.DONE] = pa.array([False] * (n - 1) + [True])
        cols[layout.TIMESTAMP] = pa.array(np.arange(n, dtype=np.float32) / np.float32(self.spec.fps), pa.float32())
        cols[layout.FRAME_INDEX] = pa.array(np.arange(n), pa.int64())
        cols[layout.EPISODE_INDEX] = pa.array(np.full(n, ep), pa.int64())
        cols[layout.INDEX] = pa.array(np.arange(start, start + n), pa.int64())
        cols[layout.TASK_INDEX] = pa.array(np.full(n, self.tasks.index(task)), pa.int64())
        atomic.write_parquet(layout.data_path(self.root, chunk, file), pa.table(cols))
        # 3. episode row (+ annotations, per-episode stats), then the commit
        segs = _segments(sub_idx)
        row["success"] = success
        row["subtasks"] = [self.subtasks[s] for s, _, _ in segs]
        row["subtask_starts"] = [a for _, a, _ in segs]
        row["subtask_ends"] = [b for _, _, b in segs]
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        for key, s in ep_stats.items():
            for k, v in s.items():
                row[f"stats/{key}/{k}"] = np.asarray(v).reshape(-1).tolist()
        self.episodes.append(row)
        self._buffer, self._task = None, None
        try:
            self._write_meta()
        except BaseException:
            self.episodes.pop()
            raise
        return ep

    # ----------------------------------------------------------------------------- meta
    def _write_meta(self) -> None:
        if self.tasks:
            atomic.write_parquet(self.root / layout.TASKS_PATH, string_table("task", "task_index", self.tasks))
        if self.subtasks:
            atomic.write_parquet(self.root / layout.SUBTASKS_PATH, string_table("subtask", "subtask_index", self.subtasks))
        if self.episodes:
            atomic.write_parquet(self.root / layout.EPISODES_PATH, pa.Table.from_pylist(self.episodes))
            atomic.write_json(self.root / layout.STATS_PATH, stats_mod.to_json(self._merged_stats()))
        info = self.spec.to_info()
        info.update(total_episodes=self.num_episodes, total_frames=self.num_frames, total_tasks=len(self.tasks),
                    splits={"train": f"0:{self.num_episodes}"} if self.episodes else {})
        info["vla_stack"]["total_subtasks"] = len(self.subtasks)
        atomic.write_json(self.root / layout.INFO_PATH, info)

    def _merged_stats(self) -> dict:
        out = {}
        keys = sorted({k.split("/")[1] for k in self.episodes[0] if k.startswith("stats/")})
        for key in keys:
            shape = _stat_shape(key, self.features[key])
            parts = [{s: np.asarray(e[f"stats/{key}/{s}"]).reshape(shape if s != "count" else (1,))
                      for s in stats_mod.STAT_KEYS} for e in self.episodes]
            out[key] = stats_mod.merge_stats(parts)
        return out


def _stat_shape(key: str, feat: dict) -> tuple:
    if feat["dtype"] == "video":
        return (3, 1, 1)
    if key in (layout.POINTS, layout.COLORS):
        return (3,)
    if key == layout.DEPTH:
        return (1,)
    return tuple(feat["shape"])


def _segments(sub_idx: list[int]) -> list[tuple[int, int, int]]:
    """Runs of equal subtask index: (subtask, start, end) with end exclusive."""
    segs, start = [], 0
    for i in range(1, len(sub_idx) + 1):
        if i == len(sub_idx) or sub_idx[i] != sub_idx[start]:
            segs.append((sub_idx[start], start, i))
            start = i
    return segs


def _looks_empty_of_user_data(root: Path) -> bool:
    return all(p.name.startswith(".") for p in root.iterdir())
