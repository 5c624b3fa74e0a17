"""The world model's architecture config: saved beside the weights as config.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from vla_stack.text import EMBED_DIM

from .objects import DEFAULT_OBJECT_COLORS, DEFAULT_OBJECT_WORDS


@dataclass
class WorldModelConfig:
    """A FiLM-conditioned U-Net; sizes chosen to run >5 Hz on a 2-core CPU at 128x128."""

    image_size: int = 128
    """Square camera resolution the model runs at (must be divisible by 2**len(channels))."""
    channels: tuple[int, ...] = (24, 48, 96, 128, 192)
    """Feature width per resolution level; level i runs at image_size / 2**i."""
    text_dim: int = EMBED_DIM
    """Width of the subtask embedding (MiniLM, 384)."""
    cond_dim: int = 128
    """Width of the projected text condition that produces every FiLM scale/shift."""
    latent_dim: int = 128
    """Width of the subgoal latent handed to the action expert."""
    attention_heads: int = 4
    """Self-attention heads at the coarsest level (lets the subgoal move objects far)."""
    predict_depth: bool = True
    """Also predict the subgoal depth (gives a subgoal point cloud and the placement probe)."""
    depth_max_m: float = 2.5
    """Depth is normalised by this and clipped; farther returns carry no task information."""
    word_tokens: bool = True
    """Cross-attend from the coarsest image features to per-word embeddings (words.py):
    lets held-out combinations of known words steer the subgoal."""
    max_words: int = 16
    camera: str = "scene"
    """The fixed camera the weights were trained on (set by training from the data); feed that camera's images."""
    object_masks: bool = False
    """Name the subtask's cubes by image masks (objects.py) and feed delexicalised text:
    held-out colour x destination pairs become trained pairs."""
    object_colour_input: bool = False
    """Object-mask models: also feed the named cubes' RGB colours (and whether each is named) into
    the FiLM condition, so the cube's identity survives an empty mask (a cube the gripper hides)."""
    object_words: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_OBJECT_WORDS))
    """How each maskable object is named in subtask text."""
    object_colors: dict[str, tuple[float, float, float]] = field(default_factory=lambda: dict(DEFAULT_OBJECT_COLORS))
    """RGB in [0, 1] of each maskable object (set by training from the data's scene)."""

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        self.object_colors = {k: tuple(float(x) for x in v) for k, v in self.object_colors.items()}
        if set(self.object_colors) != set(self.object_words):
            raise ValueError(f"world model config: object_colors {sorted(self.object_colors)} and "
                             f"object_words {sorted(self.object_words)} must name the same objects")
        factor = 2 ** (len(self.channels) - 1)
        if self.image_size % factor:
            raise ValueError(f"image_size {self.image_size} must be divisible by {factor} for {len(self.channels)} levels")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "WorldModelConfig":
        raw = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"world model config: unknown field(s) {sorted(unknown)}")
        return cls(**raw)

    @classmethod
    def load(cls, path: Path | str) -> "WorldModelConfig":
        return cls.from_json(Path(path).read_text())
