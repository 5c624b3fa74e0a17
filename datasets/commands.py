"""`vla data info | validate | view | import-bag` and `vla record`: thin CLI wrappers."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import tyro

from vla_stack.datasets.errors import DatasetError

DatasetDir = tyro.conf.Positional[Path]


@dataclass
class InfoConfig:
    """Summarize a dataset: size, features, tasks, subtasks, success rate."""

    root: DatasetDir
    json: bool = False
    """print meta/info.json as stored instead of the summary"""


@dataclass
class ValidateConfig:
    """Check schema, shapes, NaN, timestamps, indices and video frame counts; exit 1 on errors."""

    root: DatasetDir
    videos: bool = True
    """decode every video to count its frames (slow on large datasets)"""


@dataclass
class ViewConfig:
    """Render an episode to MP4 (subtask captioned) and a PNG sheet with the actions plotted."""

    root: DatasetDir
    episode: int = 0
    out: Path = Path("episode_view")
    camera: str | None = None


def _fail(e: DatasetError) -> int:
    print(f"vla data: {e}", file=sys.stderr)
    return 1


def info(cfg: InfoConfig) -> int:
    from vla_stack.datasets.reader import DatasetReader

    try:
        r = DatasetReader(cfg.root)
    except DatasetError as e:
        return _fail(e)
    if cfg.json:
        print(json.dumps(r.info, indent=2))
        return 0
    succ = [bool(e.get("success")) for e in r.episodes]
    lengths = [e["length"] for e in r.episodes]
    print(f"{r.root}  (LeRobot {r.info['codebase_version']}, robot {r.info['robot_type']}, {r.fps} fps)")
    print(f"  episodes {r.num_episodes}  frames {r.num_frames}  "
          + (f"length {min(lengths)}..{max(lengths)}  success {sum(succ)}/{len(succ)}" if lengths else ""))
    print("  features:")
    for k, f in r.features.items():
        print(f"    {k:28s} {f['dtype']:8s} {f['shape']}")
    print(f"  tasks ({len(r.task_texts)}):")
    for i, t in enumerate(r.task_texts):
        print(f"    {i}: {t}")
    print(f"  subtasks ({len(r.subtask_texts)}):")
    for i, t in enumerate(r.subtask_texts):
        print(f"    {i}: {t}")
    return 0


def validate(cfg: ValidateConfig) -> int:
    from vla_stack.datasets.validate import validate_dataset

    report = validate_dataset(cfg.root, videos=cfg.videos)
    print(report.summary())
    return 0 if report.ok else 1


def view(cfg: ViewConfig) -> int:
    from vla_stack.datasets.view import render_episode

    try:
        mp4, png = render_episode(cfg.root, cfg.episode, cfg.out, camera=cfg.camera)
    except DatasetError as e:
        return _fail(e)
    print(f"wrote {mp4}\nwrote {png}")
    return 0
