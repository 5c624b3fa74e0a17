"""Render one episode for a human: an MP4 with the subtask captioned, and a PNG sheet of
frame thumbnails above a plot of every action dimension (drawn with OpenCV, a core
dependency, so viewing needs no plotting extra)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vla_stack import schema
from vla_stack.datasets import atomic, layout, video
from vla_stack.datasets.reader import DatasetReader

_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194)]


def episode_images(reader: DatasetReader, ep: int, camera: str | None) -> np.ndarray:
    """Camera frames, or (no video recorded) a top view of the point cloud per step."""
    if camera or reader.cameras:
        return reader.episode_frames(ep, camera or reader.cameras[0])
    cols = reader.episode_columns(ep, [layout.POINTS, layout.COLORS])
    return np.stack([_top_view(p, c) for p, c in zip(cols[layout.POINTS], cols[layout.COLORS])])


def _top_view(points: np.ndarray, colors: np.ndarray, size: int = 128) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    xy = points[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    uv = ((xy - lo) / np.maximum(hi - lo, 1e-6) * (size - 1)).astype(int)
    img[size - 1 - uv[:, 0], size - 1 - uv[:, 1]] = (np.clip(colors, 0, 1) * 255).astype(np.uint8)
    return img


def captioned(frames: np.ndarray, captions: list[str], scale: int = 2) -> np.ndarray:
    out = []
    for img, text in zip(frames, captions):
        big = cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
        bar = np.zeros((18, big.shape[1], 3), np.uint8)
        cv2.putText(bar, text[:60], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        out.append(np.concatenate([big, bar], 0))
    return np.stack(out)


def action_plot(actions: np.ndarray, boundaries: list[int], width: int, height: int = 240) -> np.ndarray:
    """Each action dimension scaled by its schema limit to [-1, 1], one polyline per dimension."""
    img = np.full((height, width, 3), 255, np.uint8)
    n = len(actions)
    scaled = actions / np.maximum(np.abs(schema.ACTION_HIGH[: actions.shape[1]]), 1e-9)
    x = (np.arange(n) / max(1, n - 1) * (width - 20) + 10).astype(int)
    y_of = lambda v: (height / 2 - np.clip(v, -1, 1) * (height / 2 - 20)).astype(int)  # noqa: E731
    cv2.line(img, (10, height // 2), (width - 10, height // 2), (200, 200, 200), 1)
    for b in boundaries:
        xb = int(b / max(1, n - 1) * (width - 20) + 10)
        cv2.line(img, (xb, 0), (xb, height), (180, 180, 180), 1)
    for d in range(scaled.shape[1]):
        pts = np.stack([x, y_of(scaled[:, d])], 1).reshape(-1, 1, 2).astype(np.int32)
        cv2.polylines(img, [pts], False, _COLORS[d % len(_COLORS)], 1, cv2.LINE_AA)
        name = schema.ACTION_NAMES[d] if d < len(schema.ACTION_NAMES) else str(d)
        cv2.putText(img, name, (10 + 55 * d, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, _COLORS[d % len(_COLORS)], 1)
    return img


def render_episode(root: Path | str, ep: int, out_dir: Path | str, *, camera: str | None = None,
                   thumbnails: int = 8) -> tuple[Path, Path]:
    reader = DatasetReader(root)
    frames = episode_images(reader, ep, camera)
    segments = reader.subtask_segments(ep)
    cols = reader.episode_columns(ep, [layout.ACTION])
    subtasks = [text for text, start, end in segments for _ in range(start, end)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    movie = captioned(frames, [f"{t}/{len(frames)}  {s}" for t, s in enumerate(subtasks)])
    if movie.shape[1] % 2 or movie.shape[2] % 2:
        movie = movie[:, : movie.shape[1] // 2 * 2, : movie.shape[2] // 2 * 2]
    mp4 = out_dir / f"episode_{ep:06d}.mp4"
    with atomic.atomic_path(mp4) as tmp:
        video.encode_frames(tmp, movie, reader.fps)
    picks = np.linspace(0, len(frames) - 1, min(thumbnails, len(frames))).astype(int)
    row = np.concatenate([captioned(frames[i:i + 1], [f"t={i}"], scale=1)[0] for i in picks], 1)
    boundaries = [s for _, s, _ in segments[1:]]
    plot = action_plot(cols[layout.ACTION], boundaries, row.shape[1])
    sheet = np.concatenate([row, plot], 0)
    png = out_dir / f"episode_{ep:06d}.png"
    with atomic.atomic_path(png) as tmp:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        tmp.write_bytes(buf.tobytes())
    return mp4, png
