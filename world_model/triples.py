"""Training data for the world model: (frame, subtask, frame at that subtask's end) triples.

Stored compactly as *episodes*, not as triples: every recorded frame once, plus a table of
subtask segments. Each frame inside a segment is a "current" frame whose target is the
segment's last frame, so one episode of F frames yields about F triples without storing
any image twice. One `.npz` file per split (no pickle: strings are stored as unicode arrays).

Per segment the file also keeps what the placement probe needs: which object the subtask
moves, that object's colour, and where the simulator says it truly is when the subtask ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_stack import schema
from vla_stack.text import EMBED_DIM

DEPTH_SCALE_MM = 1000.0  # depth is stored as uint16 millimetres
FORMAT_VERSION = 1


@dataclass
class SubgoalEpisodes:
    """Frames and subtask segments of one split, ready to be sampled as triples."""

    rgb: np.ndarray  # uint8 (F, H, W, 3)
    depth_mm: np.ndarray  # uint16 (F, H, W)
    seg_first: np.ndarray  # int32 (S,) first frame of the segment (a "current" frame)
    seg_last: np.ndarray  # int32 (S,) frame recorded when the subtask completed (the target)
    seg_text: np.ndarray  # int32 (S,) index into texts
    seg_episode: np.ndarray  # int32 (S,)
    seg_object: np.ndarray  # int32 (S,) index into object_names, -1 when the subtask moves no object
    seg_object_pos: np.ndarray  # float32 (S, 3) true object position at the segment end, base frame (NaN if none)
    texts: list[str]
    text_embeddings: np.ndarray  # float32 (T, EMBED_DIM)
    object_names: list[str]
    object_colors: np.ndarray  # float32 (O, 3) RGB in [0, 1], as in the scene description
    intrinsics: np.ndarray  # float64 (3, 3)
    extrinsics: np.ndarray  # float64 (E, 4, 4) per episode base_T_camera (OpenCV optical frame; the sim jitters it)
    exclude_discs: np.ndarray | None = None  # float32 (E, C, 3): per episode (x, y, radius) of same-coloured fixtures
    split: str = ""
    tasks: list[str] = field(default_factory=list)  # per episode: the task / instruction
    camera: str = ""  # which fixed camera the frames come from
    word_embeddings: np.ndarray | None = None  # float32 (T, MAX_WORDS, EMBED_DIM), see words.py
    word_mask: np.ndarray | None = None  # bool (T, MAX_WORDS)

    # -- derived ---------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        return int(self.rgb.shape[1])

    def depth_m(self, frames) -> np.ndarray:
        return self.depth_mm[frames].astype(np.float32) / DEPTH_SCALE_MM

    def calibration(self, segment: int) -> tuple[np.ndarray, np.ndarray]:
        """(intrinsics 3x3, base_T_camera 4x4) of the episode a segment belongs to."""
        return self.intrinsics, self.extrinsics[self.seg_episode[segment]]

    def discs(self, segment: int) -> np.ndarray:
        """(C, 3) x, y, radius of fixtures the placement probe must ignore (the red button)."""
        return self.exclude_discs[self.seg_episode[segment]]

    def pairs(self) -> np.ndarray:
        """int64 (P, 2): (current frame, segment) for every frame strictly before its segment's end."""
        out = [np.stack([np.arange(f, l), np.full(l - f, s)], 1) for s, (f, l) in enumerate(zip(self.seg_first, self.seg_last)) if l > f]
        return np.concatenate(out).astype(np.int64) if out else np.zeros((0, 2), np.int64)

    def validate(self) -> "SubgoalEpisodes":
        if self.exclude_discs is None:
            self.exclude_discs = np.zeros((len(self.extrinsics), 0, 3), np.float32)
        if self.exclude_discs.ndim != 3 or self.exclude_discs.shape[0] != len(self.extrinsics) or self.exclude_discs.shape[2] != 3:
            raise schema.SchemaError(f"triples.exclude_discs: expected ({len(self.extrinsics)}, C, 3), got {self.exclude_discs.shape}")
        n_frames, h, w = self.depth_mm.shape
        if self.rgb.dtype != np.uint8 or self.rgb.shape != (n_frames, h, w, 3) or h != w:
            raise schema.SchemaError(f"triples.rgb: expected uint8 ({n_frames}, {h}, {h}, 3), got {self.rgb.dtype} {self.rgb.shape}")
        if self.depth_mm.dtype != np.uint16:
            raise schema.SchemaError(f"triples.depth_mm: expected uint16, got {self.depth_mm.dtype}")
        s = len(self.seg_first)
        for name in ("seg_last", "seg_text", "seg_episode", "seg_object"):
            if len(getattr(self, name)) != s:
                raise schema.SchemaError(f"triples.{name}: {len(getattr(self, name))} entries, expected {s}")
        if s and (self.seg_first.min() < 0 or self.seg_last.max() >= n_frames or np.any(self.seg_last < self.seg_first)):
            raise schema.SchemaError("triples.seg_first/seg_last: segment frame range outside the recorded frames")
        if s and (self.seg_text.min() < 0 or self.seg_text.max() >= len(self.texts)):
            raise schema.SchemaError("triples.seg_text: index outside texts")
        if self.text_embeddings.shape != (len(self.texts), EMBED_DIM):
            raise schema.SchemaError(f"triples.text_embeddings: expected ({len(self.texts)}, {EMBED_DIM}), got {self.text_embeddings.shape}")
        n_ep = int(self.seg_episode.max()) + 1 if s else 0
        if self.extrinsics.ndim != 3 or self.extrinsics.shape[1:] != (4, 4) or len(self.extrinsics) < n_ep:
            raise schema.SchemaError(f"triples.extrinsics: expected ({n_ep}, 4, 4) (one camera pose per episode), got {self.extrinsics.shape}")
        if self.intrinsics.shape != (3, 3):
            raise schema.SchemaError(f"triples.intrinsics: expected (3, 3), got {self.intrinsics.shape}")
        if s and self.seg_object.max() >= len(self.object_names):
            raise schema.SchemaError("triples.seg_object: index outside object_names")
        return self

    # -- files ------------------------------------------------------------------------------
    def save(self, path: Path | str) -> Path:
        self.validate()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path, format_version=np.int32(FORMAT_VERSION), rgb=self.rgb, depth_mm=self.depth_mm,
            seg_first=self.seg_first.astype(np.int32), seg_last=self.seg_last.astype(np.int32),
            seg_text=self.seg_text.astype(np.int32), seg_episode=self.seg_episode.astype(np.int32),
            seg_object=self.seg_object.astype(np.int32), seg_object_pos=self.seg_object_pos.astype(np.float32),
            texts=np.array(self.texts, dtype=str), text_embeddings=self.text_embeddings.astype(np.float32),
            object_names=np.array(self.object_names, dtype=str), object_colors=self.object_colors.astype(np.float32),
            intrinsics=self.intrinsics.astype(np.float64), extrinsics=self.extrinsics.astype(np.float64),
            exclude_discs=self.exclude_discs.astype(np.float32), split=np.array(self.split), camera=np.array(self.camera),
            tasks=np.array(self.tasks, dtype=str), **self._word_arrays())
        return path

    def _word_arrays(self) -> dict:
        if self.word_embeddings is None:
            return {}
        return {"word_embeddings": self.word_embeddings.astype(np.float32), "word_mask": self.word_mask.astype(bool)}

    @classmethod
    def load(cls, path: Path | str) -> "SubgoalEpisodes":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"world model triples {path}: no such file (make one with `python -m vla_stack.world_model.generate`)")
        try:
            z = np.load(path, allow_pickle=False)
            version = int(z["format_version"])
            if version != FORMAT_VERSION:
                raise schema.SchemaError(f"{path}: triples format version {version}, this code reads {FORMAT_VERSION}")
            ep = cls(
                rgb=z["rgb"], depth_mm=z["depth_mm"], seg_first=z["seg_first"], seg_last=z["seg_last"],
                seg_text=z["seg_text"], seg_episode=z["seg_episode"], seg_object=z["seg_object"],
                seg_object_pos=z["seg_object_pos"], texts=[str(t) for t in z["texts"]],
                text_embeddings=z["text_embeddings"], object_names=[str(t) for t in z["object_names"]],
                object_colors=z["object_colors"], intrinsics=z["intrinsics"], extrinsics=z["extrinsics"],
                exclude_discs=z["exclude_discs"], split=str(z["split"]), camera=str(z["camera"]), tasks=[str(t) for t in z["tasks"]],
                word_embeddings=z["word_embeddings"] if "word_embeddings" in z else None,
                word_mask=z["word_mask"] if "word_mask" in z else None)
        except (KeyError, ValueError, OSError, EOFError) as e:
            if isinstance(e, schema.SchemaError):
                raise
            raise schema.SchemaError(f"{path}: not a readable world model triples file ({type(e).__name__}: {e})") from None
        return ep.validate()


def concatenate(parts: list[SubgoalEpisodes]) -> SubgoalEpisodes:
    """Join splits/shards into one (frame and text indices re-based)."""
    if not parts:
        raise ValueError("concatenate: nothing to join")
    texts: list[str] = []
    words: list[tuple[np.ndarray, np.ndarray]] = []
    objects: list[str] = []
    colors: list[np.ndarray] = []
    emb: list[np.ndarray] = []
    arrays: dict[str, list] = {k: [] for k in ("rgb", "depth_mm", "seg_first", "seg_last", "seg_text", "seg_episode", "seg_object", "seg_object_pos")}
    frame_off = episode_off = 0
    tasks: list[str] = []
    extrinsics: list[np.ndarray] = []
    discs: list[np.ndarray] = []
    for p in parts:
        t_map = []
        for i, t in enumerate(p.texts):
            if t not in texts:
                texts.append(t)
                emb.append(p.text_embeddings[i])
                if p.word_embeddings is not None:
                    words.append((p.word_embeddings[i], p.word_mask[i]))
            t_map.append(texts.index(t))
        o_map = []
        for i, o in enumerate(p.object_names):
            if o not in objects:
                objects.append(o)
                colors.append(p.object_colors[i])
            o_map.append(objects.index(o))
        arrays["rgb"].append(p.rgb)
        arrays["depth_mm"].append(p.depth_mm)
        arrays["seg_first"].append(p.seg_first + frame_off)
        arrays["seg_last"].append(p.seg_last + frame_off)
        arrays["seg_text"].append(np.asarray(t_map, np.int32)[p.seg_text])
        arrays["seg_episode"].append(p.seg_episode + episode_off)
        arrays["seg_object"].append(np.where(p.seg_object >= 0, np.asarray(o_map + [-1], np.int32)[p.seg_object], -1))
        arrays["seg_object_pos"].append(p.seg_object_pos)
        frame_off += len(p.rgb)
        n_ep = (int(p.seg_episode.max()) + 1) if len(p.seg_episode) else 0
        episode_off += n_ep
        extrinsics.append(p.extrinsics[:n_ep])
        discs.append(p.exclude_discs[:n_ep])
        if not np.allclose(p.intrinsics, parts[0].intrinsics):
            raise ValueError("concatenate: parts were recorded with different camera intrinsics")
        tasks += p.tasks
    return SubgoalEpisodes(
        **{k: np.concatenate(v) for k, v in arrays.items()}, texts=texts,
        text_embeddings=np.stack(emb).astype(np.float32), object_names=objects,
        object_colors=np.stack(colors).astype(np.float32) if colors else np.zeros((0, 3), np.float32),
        intrinsics=parts[0].intrinsics, extrinsics=np.concatenate(extrinsics),
        exclude_discs=np.concatenate(discs) if len({d.shape[1] for d in discs}) == 1 else None,
        split="+".join(dict.fromkeys(p.split for p in parts)), tasks=tasks,
        camera="+".join(dict.fromkeys(p.camera for p in parts)),
        word_embeddings=np.stack([w for w, _ in words]) if len(words) == len(texts) else None,
        word_mask=np.stack([m for _, m in words]) if len(words) == len(texts) else None).validate()
