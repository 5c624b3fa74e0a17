"""Object-reference conditioning: which cube the subtask means, given as image masks.

A text-only model has to bind "blue" to "bowl" itself, and with a dozen training subtasks
it learns each colour x destination pair as one memorised point: a held-out pair ("put the
blue cube in the bowl" when only red and green went there in training) is out of reach.
Here the cube the subtask moves and the cube it is put on are named *in the image*
instead: one mask channel each, from colour segmentation of the current frame (the grammar
knows each cube's colour). The text is delexicalised to what happens ("put the cube in the
bowl"). "Move the masked thing into the bowl" is then one skill learned from every colour,
and every held-out colour x destination pair is a training pair at the level the network sees.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from .probe import MAX_CHROMA_DISTANCE, MIN_SATURATION, colour_mask

#: How a cube is named in subtask text (sim/skills.py OBJECT_WORDS), kept here so a
#: checkpoint needs no simulator at inference; the checkpoint's config stores its own copy.
DEFAULT_OBJECT_WORDS = {"red_cube": "red cube", "green_cube": "green cube", "blue_cube": "blue cube"}
#: Cube colours of the sim's scene (RGB in [0, 1]); the generator records the true ones.
DEFAULT_OBJECT_COLORS = {"red_cube": (0.85, 0.1, 0.1), "green_cube": (0.1, 0.7, 0.15), "blue_cube": (0.1, 0.25, 0.9)}
MOVED, REFERENCE = "cube", "other cube"
N_MASKS = 2  # the moved cube, the cube it goes onto


def named_objects(text: str, object_words: dict[str, str]) -> list[str]:
    """Objects named in `text`, in order of mention (the first is the one the skill moves)."""
    hits = sorted((m.start(), name) for name, word in object_words.items()
                  for m in re.finditer(rf"\b{re.escape(word)}\b", text))
    return [name for _, name in hits]


def delexicalise(text: str, object_words: dict[str, str]) -> str:
    """'stack the blue cube on the red cube' -> 'stack the cube on the other cube'."""
    names = named_objects(text, object_words)
    out = text
    for name, generic in zip(names[:N_MASKS], (MOVED, REFERENCE)):
        out = re.sub(rf"\b{re.escape(object_words[name])}\b", generic, out, count=1)
    return out


def mask_colours(text: str, object_words: dict[str, str], object_colors: dict[str, tuple]) -> list[np.ndarray | None]:
    """Colour per mask channel (None: the subtask names no object for that channel)."""
    names = named_objects(text, object_words)[:N_MASKS]
    cols = [np.asarray(object_colors[n], np.float32) for n in names]
    return cols + [None] * (N_MASKS - len(cols))


def object_masks(rgb: np.ndarray, colours: list[np.ndarray | None]) -> np.ndarray:
    """Reference path: uint8 (H, W, 3) -> float32 (N_MASKS, H, W) in {0, 1} (probe.colour_mask)."""
    h, w = rgb.shape[:2]
    return np.stack([np.zeros((h, w), np.float32) if c is None else colour_mask(rgb, c).astype(np.float32)
                     for c in colours])


def object_masks_torch(rgb: torch.Tensor, colours: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Batched device path of `object_masks`: uint8 (B, H, W, 3), colours (B, M, 3), present (B, M) bool
    -> float32 (B, M, H, W). Same test as probe.colour_mask (chromaticity cosine and saturation)."""
    px = rgb.float() / 255.0  # (B, H, W, 3)
    sat = px.amax(-1) - px.amin(-1)
    norm = px.norm(dim=-1)
    c = colours.float()
    cos = torch.einsum("bhwc,bmc->bmhw", px, c) / (norm[:, None] * c.norm(dim=-1)[:, :, None, None] + 1e-6)
    m = ((1.0 - cos) < MAX_CHROMA_DISTANCE) & (sat[:, None] > MIN_SATURATION) & present[:, :, None, None]
    return m.float()


def colour_vector(colours: list[np.ndarray | None]) -> np.ndarray:
    """float32 (N_MASKS * 4,): per mask channel its RGB and 1, or zeros when the subtask names no cube there."""
    return np.concatenate([np.zeros(4, np.float32) if c is None else np.append(np.asarray(c, np.float32), 1.0)
                           for c in colours]).astype(np.float32)
