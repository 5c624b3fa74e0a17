"""Per-point "this is the subtask's object" channels, from the subtask text and the point colours.

Why: learned from demos alone, the encoder's attention does not find a randomly placed cube
(<= 9 % of its weight on the cube's points; "red" averages cube and button). Naming the
object structurally, as the world model does with its image masks, turns "find the blue
cube" into "go to the marked points". Channel 0 marks the object the subtask acts on,
channel 1 the reference/destination where it names one ("on the red cube", "toward the
button"). Each is one invariant scalar per point (a colour test), so the encoder's E(3)
equivariance is untouched.

Two steps: `object_codes` (text -> per channel RGB + present flag, at the API boundary and
per subtask in training) and `object_masks` (codes + point colours -> (B, N, 2), inside the
model, so training and inference compute the masks identically).

Known limit (the scene's colours): the button cap is as red as the red cube, so "red cube"
also marks the cap and "button" also marks the red cube (the world model's probe excludes
the button by position). With `solid_cubes` (PolicyConfig.solid_cube_masks) a channel that
names a cube keeps only one solid cluster (`solid_cube_clusters`): the red cube, not the flat
cap; and one naming the button (marked only where `marked_objects` lists it) keeps only the flat cap
(the shipped checkpoint marks it so where a subtask presses it, `target_only_objects`, session 18). Without it, "stack the blue cube on the red cube" (held out: no training subtask has the
red cube as its destination) carried the cube to a point between the two (session 16 trace).
The drawer has no colour of its own (blue-grey like the cabinet, dark handle): never marked.
"""

from __future__ import annotations

import numpy as np
import torch

from vla_stack.world_model.objects import DEFAULT_OBJECT_COLORS, DEFAULT_OBJECT_WORDS, named_objects
from vla_stack.world_model.probe import MAX_CHROMA_DISTANCE, MIN_SATURATION

from .shape_harmonics import densest_cluster

N_CHANNELS = 2  # the object acted on, the reference / destination
CODE_DIM = 4  # RGB + present
#: Objects with a distinctive colour (RGB in [0, 1], the scene's rgba): the world model's cubes
#: plus the fixtures a subtask can name as a destination.
OBJECT_COLORS = {**DEFAULT_OBJECT_COLORS, "bowl": (0.95, 0.75, 0.3), "button": (0.9, 0.15, 0.15)}
OBJECT_WORDS = {**DEFAULT_OBJECT_WORDS, "bowl": "bowl", "button": "button"}
CUBE_COLORS = tuple(rgb for name, rgb in OBJECT_COLORS.items() if name.endswith("_cube"))
# A 4 cm cube's visible points span 2.8-3.9 cm of height (5th-95th percentile over expert episodes of
# three red-cube tasks, on the table and in the hand; benchmarks/solid_cube_masks.py); the button cap's 0.4-1.6 cm.
SOLID_MIN_HEIGHT_M = 0.022


def object_codes(texts: list[str], marked: tuple[str, ...], target_only: tuple[str, ...] = ()) -> np.ndarray:
    """float32 (B, N_CHANNELS, CODE_DIM): per channel the named object's colour and 1, zeros if none.

    Marked objects in order of mention: "push the red cube toward the bowl" -> red cube, bowl.
    `marked`: the checkpoint's `marked_objects` (unmarked names are skipped; no default, so a
    caller cannot silently mark what the checkpoint was not trained to see); `target_only`: marked
    only in channel 0 (a destination left empty). A model's own: `codes_for(cfg, texts)`."""
    words = {name: OBJECT_WORDS[name] for name in marked}
    out = np.zeros((len(texts), N_CHANNELS, CODE_DIM), np.float32)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"object_codes: subtask text must be a string, got {type(text).__name__}")
        for c, name in enumerate(named_objects(text.lower(), words)[:N_CHANNELS]):
            if c > 0 and name in target_only:
                continue
            out[i, c, :3] = OBJECT_COLORS[name]
            out[i, c, 3] = 1.0
    return out


def codes_for(cfg, texts: list[str]) -> np.ndarray:
    """The object codes a policy with config `cfg` (PolicyConfig) is given for these subtask texts."""
    return object_codes(texts, cfg.marked_objects, cfg.target_only_objects)


def object_masks(colors: torch.Tensor, codes: torch.Tensor, points: torch.Tensor | None = None,
                 solid_cubes: bool = False) -> torch.Tensor:
    """colors (B, N, 3) in [0, 1], codes (B, N_CHANNELS, CODE_DIM) -> (B, N, N_CHANNELS) in {0, 1}.

    The world model's colour test (world_model.probe.colour_mask) per point: chromaticity cosine
    distance below MAX_CHROMA_DISTANCE and saturation above MIN_SATURATION (shading changes
    brightness, not colour direction)."""
    if codes.shape[-2:] != (N_CHANNELS, CODE_DIM) or codes.shape[0] != colors.shape[0]:
        raise ValueError(f"object codes: expected ({colors.shape[0]}, {N_CHANNELS}, {CODE_DIM}), "
                         f"got {tuple(codes.shape)}")
    rgb, present = codes[..., :3], codes[..., 3] > 0.5
    sat = colors.amax(-1) - colors.amin(-1)  # (B, N)
    cos = torch.einsum("bnc,bmc->bnm", colors, rgb) / (colors.norm(dim=-1)[..., None] * rgb.norm(dim=-1)[:, None] + 1e-6)
    hit = ((1.0 - cos) < MAX_CHROMA_DISTANCE) & (sat[..., None] > MIN_SATURATION) & present[:, None]
    masks = hit.to(colors.dtype)
    if solid_cubes:
        if points is None:
            raise ValueError("object masks: solid_cubes needs the points")
        masks = solid_cube_clusters(points, masks, codes)
    return masks


def solid_cube_clusters(points: torch.Tensor, masks: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """In the channels whose code names a cube, only the densest solid cluster stays marked (points
    within shape_harmonics.CLUSTER_RADIUS_M of it); in a channel naming the button, only the densest flat
    one (its cap: the red cube is the same red) or nothing; other channels (the bowl) unchanged."""
    def names(rgbs) -> torch.Tensor:                                                       # (B, C)
        rgb = torch.tensor(rgbs, dtype=codes.dtype, device=codes.device)
        return ((codes[..., None, :3] - rgb).abs().amax(-1) < 1e-3).any(-1) & (codes[..., 3] > 0.5)

    is_cube, is_button = names(CUBE_COLORS), names((OBJECT_COLORS["button"],))
    clustered = densest_cluster(points, masks, min_height_m=SOLID_MIN_HEIGHT_M, flat=is_button)
    return torch.where((is_cube | is_button)[:, None, :], clustered, masks)


def object_masks_reference(colors: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Reference path (one cloud, numpy, via the world model's own colour test): (N, 3), (M, 4) -> (N, M)."""
    from vla_stack.world_model.probe import colour_mask

    rgb8 = np.clip(np.round(colors * 255.0), 0, 255).astype(np.uint8)[None]  # colour_mask reads uint8 images
    cols = [colour_mask(rgb8, code[:3])[0] if code[3] > 0.5 else np.zeros(len(colors), bool) for code in codes]
    return np.stack(cols, axis=-1).astype(np.float32)
