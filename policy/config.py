"""The action expert's architecture as one typed dataclass: stored as config.json beside
the weights, so a checkpoint can always be rebuilt, and reused as CLI options."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from vla_stack.schema import SchemaError

CONFIG_VERSION = 1


@dataclass
class PolicyConfig:
    # Encoder: "equivariant" (e3nn, SE(3)/E(3)) or the "pointnet" baseline (not equivariant).
    encoder: Literal["equivariant", "pointnet"] = "equivariant"
    # Backbone: "mamba" (O(1) state per tick) or the causal "transformer" baseline (KV cache).
    backbone: Literal["mamba", "transformer"] = "mamba"
    n_centers: int = 32  # FPS centres the point convolution pools onto
    k_points: int = 16  # neighbours per centre (points -> centres)
    k_centers: int = 8  # neighbours per centre (centres -> centres)
    min_points: int = 32  # fewer points than this is refused at the API boundary
    point_channels: int = 16  # invariant per-point features (colour MLP, FiLM'd by the subtask)
    scalars: int = 32  # invariant channels in the hidden equivariant layers
    vectors: int = 8  # l=1 channels (odd and even parity each) in hidden layers and to the head
    tensors2: int = 4  # l=2 channels in hidden layers
    radial_basis: int = 8
    radius_points_m: float = 0.15
    radius_centers_m: float = 0.4
    radius_readout_m: float = 1.5
    d_model: int = 128
    n_layers: int = 2
    d_state: int = 16  # Mamba
    d_conv: int = 4  # Mamba
    expand: int = 2  # Mamba
    # Initial range of Mamba's input-dependent step size. Larger than language models' 1e-3..1e-1:
    # memory of ~20-50 ticks, so the state after a training window (history ticks) already looks
    # like the state deep into an episode, when the policy streams for hundreds of ticks.
    dt_min: float = 0.02
    dt_max: float = 0.5
    n_heads: int = 4  # Transformer
    horizon: int = 8  # actions per chunk
    text_dim: int = 384  # MiniLM
    subgoal_dim: int = 0  # 0: no subgoal latent input
    subgoal_dropout: float = 0.5  # training: drop the subgoal so the expert also runs without it
    # Two invariant per-point input channels: "belongs to the object the subtask names" and "to its
    # reference/destination" (object_channels.py). Off in checkpoints from before the flag existed.
    object_channels: bool = False
    # Which named objects the channels mark (by colour). The button is left out: its cap is the red
    # cube's red, so "press the button" marked the red cube (policy.md, PressButton diagnosis); with
    # solid_cube_masks its channel keeps the flat cap alone (none trained so yet; the shipped checkpoint marks
    # it since session 18 without retraining, as the object acted on only: target_only_objects).
    marked_objects: tuple[str, ...] = ("red_cube", "green_cube", "blue_cube", "bowl")
    # Of marked_objects, those marked only as the object acted on (channel 0), never as the destination:
    # "press the button" marks the cap, "push the green cube toward the button" leaves channel 1 empty, as
    # a checkpoint trained with the button unmarked saw it there.
    target_only_objects: tuple[str, ...] = ()
    # How each marked object is turned about the gripper's approach axis (shape_harmonics.py): the
    # cube yaw the encoders did not see. Needs object channels. Off in checkpoints from before the flag.
    shape_harmonics: bool = False
    # Channels that name a cube keep only its solid cluster (object_channels.solid_cube_clusters): "the red
    # cube" stops marking the flat red button cap too. Off in checkpoints from before the flag.
    solid_cube_masks: bool = False

    def validate(self) -> "PolicyConfig":
        for name in ("n_centers", "k_points", "k_centers", "min_points", "point_channels", "scalars", "vectors",
                     "radial_basis", "d_model", "n_layers", "d_state", "d_conv", "expand", "n_heads", "horizon",
                     "text_dim"):
            if getattr(self, name) < 1:
                raise SchemaError(f"policy config: {name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise SchemaError(f"policy config: d_model {self.d_model} not divisible by n_heads {self.n_heads}")
        if self.k_centers > self.n_centers:
            raise SchemaError(f"policy config: k_centers {self.k_centers} > n_centers {self.n_centers}")
        if self.min_points < max(self.n_centers, self.k_points):
            raise SchemaError(f"policy config: min_points {self.min_points} must be >= n_centers and k_points")
        if not 0.0 < self.dt_min <= self.dt_max:
            raise SchemaError(f"policy config: need 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}")
        if not 0.0 <= self.subgoal_dropout <= 1.0:
            raise SchemaError(f"policy config: subgoal_dropout must be in [0, 1], got {self.subgoal_dropout}")
        if self.shape_harmonics and not self.object_channels:
            raise SchemaError("policy config: shape_harmonics needs object_channels (it measures the marked objects)")
        if self.solid_cube_masks and not self.object_channels:
            raise SchemaError("policy config: solid_cube_masks needs object_channels (it edits their masks)")
        from .object_channels import OBJECT_COLORS

        self.marked_objects = tuple(self.marked_objects)  # a list after a JSON round trip
        unknown = [o for o in self.marked_objects if o not in OBJECT_COLORS]
        if unknown:
            raise SchemaError(f"policy config: marked_objects {unknown} unknown; known: {sorted(OBJECT_COLORS)}")
        self.target_only_objects = tuple(self.target_only_objects)
        stray = [o for o in self.target_only_objects if o not in self.marked_objects]
        if stray:
            raise SchemaError(f"policy config: target_only_objects {stray} are not in marked_objects {self.marked_objects}")
        return self

    def to_dict(self) -> dict:
        return {"version": CONFIG_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "PolicyConfig":
        d = dict(d)
        version = d.pop("version", None)
        if version != CONFIG_VERSION:
            raise SchemaError(f"policy config: version {version!r}, this code reads version {CONFIG_VERSION}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SchemaError(f"policy config: unknown field(s) {unknown}")
        return cls(**d).validate()


def tiny_config(**overrides) -> PolicyConfig:
    """A few-thousand-parameter model for tests and CPU smoke runs."""
    base = dict(n_centers=8, k_points=8, k_centers=4, min_points=16, point_channels=8, scalars=8, vectors=4,
                tensors2=2, radial_basis=4, d_model=32, n_layers=1, d_state=4, n_heads=2, horizon=4)
    base.update(overrides)
    return PolicyConfig(**base).validate()
