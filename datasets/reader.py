"""Read a dataset's metadata, episodes and videos, with errors naming the file and episode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vla_stack.datasets import layout, stats as stats_mod, video
from vla_stack.datasets.arrow_io import column_numpy, read_strings, read_table
from vla_stack.datasets.errors import DatasetError
from vla_stack.datasets.layout import DatasetSpec


class DatasetReader:
    """Metadata in memory; episode columns and video frames read on demand."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError("dataset directory does not exist", path=self.root)
        self.info = load_info(self.root)
        self.spec = DatasetSpec.from_info(self.info)
        self.features: dict[str, dict] = self.info["features"]
        self.fps = int(self.info["fps"])
        ep_path = self.root / layout.EPISODES_PATH
        if ep_path.is_file():
            self.episodes = read_table(ep_path).to_pylist()
        elif self.info["total_episodes"] == 0:
            self.episodes = []
        else:
            raise DatasetError(f"file is missing but info.json lists {self.info['total_episodes']} episodes",
                               path=ep_path)
        for i, e in enumerate(self.episodes):
            if e.get("episode_index") != i:
                raise DatasetError(f"row {i} has episode_index {e.get('episode_index')}", path=ep_path, episode=i)
        self.task_texts: list[str] = self._strings(layout.TASKS_PATH, "task", "task_index")
        # subtasks are our extension: a dataset written by LeRobot itself has none
        self.subtask_texts: list[str] = (self._strings(layout.SUBTASKS_PATH, "subtask", "subtask_index")
                                         if layout.SUBTASK_INDEX in self.features else [])
        stats_path = self.root / layout.STATS_PATH
        if stats_path.is_file():
            try:
                self.stats = stats_mod.from_json(json.loads(stats_path.read_text()))
            except (json.JSONDecodeError, AttributeError, TypeError) as e:
                raise DatasetError(f"not valid statistics JSON ({e})", path=stats_path) from None
        elif self.episodes:
            raise DatasetError("file is missing (normalization statistics)", path=stats_path)
        else:
            self.stats = {}

    def _strings(self, rel: str, key: str, index_name: str) -> list[str]:
        path = self.root / rel
        if not path.is_file():
            if self.episodes:
                raise DatasetError("file is missing", path=path)
            return []
        return read_strings(path, key, index_name)

    # ------------------------------------------------------------------------- episodes
    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(sum(e["length"] for e in self.episodes))

    @property
    def cameras(self) -> list[str]:
        return list(self.spec.cameras)

    def data_file(self, ep: int) -> Path:
        e = self._episode_row(ep)
        return layout.data_path(self.root, e["data/chunk_index"], e["data/file_index"])

    def video_file(self, ep: int, camera: str) -> Path:
        e = self._episode_row(ep)
        key = layout.image_key(camera)
        if f"videos/{key}/file_index" not in e:
            raise DatasetError(f"no video {key!r} recorded (cameras: {self.cameras})", episode=ep)
        return layout.video_path(self.root, key, e[f"videos/{key}/chunk_index"], e[f"videos/{key}/file_index"])

    def _episode_row(self, ep: int) -> dict:
        if not 0 <= ep < len(self.episodes):
            raise DatasetError(f"episode {ep} does not exist ({len(self.episodes)} episodes)", path=self.root)
        return self.episodes[ep]

    def episode_columns(self, ep: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """Non-video columns of one episode as numpy arrays shaped (length, *feature shape)."""
        e = self._episode_row(ep)
        path = self.data_file(ep)
        keys = keys or [k for k, f in self.features.items() if f["dtype"] != "video"]
        table = read_table(path, columns=list(dict.fromkeys([*keys, layout.EPISODE_INDEX])), episode=ep)
        # a data file may hold several episodes (LeRobot packs them): select this one's rows
        ep_col = table.column(layout.EPISODE_INDEX).to_numpy()
        rows = np.flatnonzero(ep_col == ep)
        if len(rows) != e["length"]:
            raise DatasetError(f"{len(rows)} rows in the data file, meta/episodes says length {e['length']}",
                               path=path, episode=ep)
        if len(rows) != len(ep_col):
            table = table.take(rows)
        out = {}
        for k in keys:
            feat = self.features.get(k)
            if feat is None:
                raise DatasetError(f"unknown feature {k!r} (features: {sorted(self.features)})", path=path, episode=ep)
            out[k] = column_numpy(table.column(k), feat["shape"], feat["dtype"], name=k, path=path, episode=ep)
        return out

    def episode_frames(self, ep: int, camera: str) -> np.ndarray:
        """Decoded uint8 (length, H, W, 3) video frames of one episode."""
        e = self._episode_row(ep)
        key = layout.image_key(camera)
        path = self.video_file(ep, camera)
        frames = video.decode_frames(path, start_s=e[f"videos/{key}/from_timestamp"],
                                     end_s=e[f"videos/{key}/to_timestamp"], fps=self.fps, episode=ep)
        if len(frames) != e["length"]:
            raise DatasetError(f"{len(frames)} video frames for {e['length']} parquet rows", path=path, episode=ep)
        return frames

    def subtask_segments(self, ep: int) -> list[tuple[str, int, int]]:
        """(subtask text, start, end) runs of one episode, from meta/episodes."""
        e = self._episode_row(ep)
        if "subtasks" not in e:  # no subtask annotation (e.g. written by LeRobot): the instruction throughout
            return [(e["tasks"][0], 0, e["length"])]
        return list(zip(e["subtasks"], e["subtask_starts"], e["subtask_ends"]))


def load_info(root: Path) -> dict:
    path = Path(root) / layout.INFO_PATH
    if not path.is_file():
        raise DatasetError("file is missing: not a dataset, or its metadata was deleted", path=path)
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"not valid JSON ({e})", path=path) from None
    if not isinstance(info, dict):
        raise DatasetError("must hold a JSON object", path=path)
    missing = [k for k in layout.LEROBOT_INFO_FIELDS if k not in info]
    if missing:
        raise DatasetError(f"missing field(s) {missing}", path=path)
    if info["codebase_version"] != layout.CODEBASE_VERSION:
        raise DatasetError(f"codebase_version {info['codebase_version']!r}, this reader reads "
                           f"{layout.CODEBASE_VERSION!r}", path=path)
    for k in (layout.STATE, layout.ACTION):
        if k not in info["features"]:
            raise DatasetError(f"features lack {k!r}", path=path)
    for k, f in info["features"].items():
        if f.get("dtype") not in layout.FEATURE_DTYPES or not isinstance(f.get("shape"), list):
            raise DatasetError(f"feature {k!r}: bad dtype/shape {f.get('dtype')!r} {f.get('shape')!r}", path=path)
    return info
