"""MP4 encode/decode of camera streams with PyAV (FFmpeg bundled in the `av` wheel).

Frame i of an episode has presentation time i / fps, so a frame is found by timestamp the
way LeRobot's decoder finds it.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vla_stack.datasets.errors import DatasetError


def encode_frames(path: Path | str, frames: np.ndarray, fps: int, *, codec: str = "libx264",
                  pix_fmt: str = "yuv420p", crf: int = 18) -> None:
    """Write uint8 frames (T, H, W, 3) to `path` (the caller makes the write atomic)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise DatasetError(f"video frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}", path=path)
    t, h, w, _ = frames.shape
    if pix_fmt == "yuv420p" and (h % 2 or w % 2):
        raise DatasetError(f"yuv420p needs even frame sizes, got {h}x{w}", path=path)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.time_base = Fraction(1, fps)
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast", "g": "10", "bf": "0"}
        for i in range(t):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _frames_in_range(path: Path, start_s: float, end_s: float | None, fps: int | None, episode: int | None):
    """Decoded frames with start_s <= pts < end_s (the one decode loop both readers share)."""
    if not path.is_file():
        raise DatasetError("video file is missing", path=path, episode=episode)
    tol = 0.5 / fps if fps else 1e-4
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                ts = float(frame.pts * stream.time_base) if frame.pts is not None else frame.time
                if ts < start_s - tol:
                    continue
                if end_s is not None and ts >= end_s - tol:
                    break
                yield frame
    except (av.error.FFmpegError, EOFError, IndexError) as e:
        raise DatasetError(f"video cannot be decoded ({type(e).__name__}: {e})", path=path, episode=episode) from None


def decode_frames(path: Path | str, *, start_s: float = 0.0, end_s: float | None = None,
                  fps: int | None = None, episode: int | None = None) -> np.ndarray:
    """All frames with start_s <= pts < end_s as uint8 (T, H, W, 3)."""
    path = Path(path)
    out = [f.to_ndarray(format="rgb24") for f in _frames_in_range(path, start_s, end_s, fps, episode)]
    if not out:
        raise DatasetError("video holds no frames in the episode's time range", path=path, episode=episode)
    return np.stack(out)


def count_frames(path: Path | str, *, start_s: float = 0.0, end_s: float | None = None, fps: int | None = None,
                 episode: int | None = None) -> int:
    """Frames that actually decode in [start_s, end_s) (a container's frame count can lie for
    truncated files; a file may hold several episodes, as LeRobot packs them)."""
    return sum(1 for _ in _frames_in_range(Path(path), start_s, end_s, fps, episode))
