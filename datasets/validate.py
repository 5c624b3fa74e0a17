"""Full check of a dataset: every problem found, each naming its file and episode.

Unlike the reader (which stops at the first problem it trips over), validation keeps going
so one run lists everything wrong: schema, shapes, NaN/inf, monotonic timestamps, index
bookkeeping, totals in info.json, and decoded video frame counts against parquet rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_stack.datasets import layout, video
from vla_stack.datasets.errors import DatasetError
from vla_stack.datasets.reader import DatasetReader


@dataclass
class ValidationReport:
    root: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    episodes_checked: int = 0
    frames_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        lines = [f"{self.root}: {self.episodes_checked} episodes, {self.frames_checked} frames checked: "
                 + ("OK" if self.ok else f"{len(self.errors)} error(s)")]
        lines += [f"  ERROR {e}" for e in self.errors]
        lines += [f"  warning {w}" for w in self.warnings]
        return "\n".join(lines)


def validate_dataset(root: Path | str, *, videos: bool = True) -> ValidationReport:
    root = Path(root)
    report = ValidationReport(root)
    try:
        reader = DatasetReader(root)
    except DatasetError as e:
        report.errors.append(str(e))
        return report
    info = reader.info
    info_path = root / layout.INFO_PATH
    if info["total_episodes"] != reader.num_episodes:
        report.errors.append(f"{info_path}: total_episodes is {info['total_episodes']} but meta/episodes lists "
                             f"{reader.num_episodes} (an interrupted commit: `vla record --resume` repairs it)")
    if info["total_frames"] != reader.num_frames:
        report.errors.append(f"{info_path}: total_frames is {info['total_frames']} but episodes sum to {reader.num_frames}")
    if info["total_tasks"] != len(reader.task_texts):
        report.errors.append(f"{info_path}: total_tasks is {info['total_tasks']} but meta/tasks has {len(reader.task_texts)}")
    _check_stats(reader, report)
    expected_from = 0
    referenced: set[Path] = set()
    for ep, row in enumerate(reader.episodes):
        where = f"{root / layout.EPISODES_PATH} episode {ep}"
        if row["dataset_from_index"] != expected_from or row["dataset_to_index"] - row["dataset_from_index"] != row["length"]:
            report.errors.append(f"{where}: dataset_from/to_index {row['dataset_from_index']}..{row['dataset_to_index']} "
                                 f"do not follow on from {expected_from} with length {row['length']}")
        expected_from = row["dataset_from_index"] + row["length"]
        try:
            referenced.add(reader.data_file(ep).resolve())
            _check_episode(reader, ep, row, report)
        except DatasetError as e:
            report.errors.append(str(e))
        for cam in reader.cameras:
            try:
                path = reader.video_file(ep, cam)
                referenced.add(path.resolve())
                if videos:
                    key = layout.image_key(cam)
                    n = video.count_frames(path, start_s=row[f"videos/{key}/from_timestamp"],
                                           end_s=row[f"videos/{key}/to_timestamp"], fps=reader.fps, episode=ep)
                    if n != row["length"]:
                        report.errors.append(f"{path} episode {ep}: video has {n} frames, parquet has {row['length']} rows")
            except DatasetError as e:
                report.errors.append(str(e))
        report.episodes_checked += 1
        report.frames_checked += row["length"]
    for p in sorted([*root.glob("data/*/*.parquet"), *root.glob("videos/*/*/*.mp4")]):
        if p.resolve() not in referenced:
            report.warnings.append(f"{p}: not referenced by meta/episodes (left by an interrupted episode; "
                                   "the next recorded episode overwrites it)")
    return report


def _check_stats(reader: DatasetReader, report: ValidationReport) -> None:
    if not reader.episodes:
        return
    path = reader.root / layout.STATS_PATH
    for key in (layout.STATE, layout.ACTION):
        s = reader.stats.get(key)
        dim = reader.features[key]["shape"][0]
        if s is None or any(k not in s for k in ("mean", "std", "min", "max")):
            report.errors.append(f"{path}: no mean/std/min/max for {key!r}")
            continue
        for k in ("mean", "std", "min", "max"):
            v = np.asarray(s[k])
            if v.shape != (dim,) or not np.all(np.isfinite(v)):
                report.errors.append(f"{path}: {key}.{k} must be {dim} finite numbers, got shape {v.shape}")


def _check_episode(reader: DatasetReader, ep: int, row: dict, report: ValidationReport) -> None:
    cols = reader.episode_columns(ep)  # raises on missing columns, wrong shapes, row count
    path = reader.data_file(ep)
    where = f"{path} episode {ep}"
    n = row["length"]
    for key, x in cols.items():
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            bad = np.flatnonzero(~np.isfinite(x.reshape(n, -1)).all(axis=1))
            report.errors.append(f"{where}: {key} has NaN/inf at frame(s) {bad[:10].tolist()}")
    ts = cols[layout.TIMESTAMP].astype(np.float64)
    if n > 1 and not np.all(np.diff(ts) > 0):
        bad = int(np.flatnonzero(np.diff(ts) <= 0)[0]) + 1
        report.errors.append(f"{where}: timestamps not strictly increasing at frame {bad} ({ts[bad - 1]} -> {ts[bad]})")
    elif not np.allclose(ts, np.arange(n) / reader.fps, atol=0.5 / reader.fps):
        report.warnings.append(f"{where}: timestamps drift from frame_index / fps ({reader.fps})")
    if cols[layout.FRAME_INDEX].tolist() != list(range(n)):
        report.errors.append(f"{where}: frame_index is not 0..{n - 1}")
    if cols[layout.INDEX].tolist() != list(range(row["dataset_from_index"], row["dataset_to_index"])):
        report.errors.append(f"{where}: index does not run dataset_from_index..dataset_to_index")
    for key, table in ((layout.TASK_INDEX, reader.task_texts), (layout.SUBTASK_INDEX, reader.subtask_texts)):
        if key in cols and (cols[key].min() < 0 or cols[key].max() >= len(table)):
            report.errors.append(f"{where}: {key} out of range 0..{len(table) - 1}")
