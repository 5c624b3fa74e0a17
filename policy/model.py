"""The action expert network: point-cloud encoder -> one token per tick -> backbone -> chunk head.

`forward` runs whole windows (training); `step` runs one tick from a carried backbone state
(streaming). Both share `encode` and the head, so the two paths differ only in the backbone.
Inputs are raw schema units (metres, quaternions); outputs are normalized action chunks
(`normalizer.unnormalize_action` gives schema units).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from vla_stack.schema import SchemaError

from .backbone import Backbone
from .config import PolicyConfig
from .encoder_equivariant import EquivariantEncoder
from .encoder_pointnet import PointNetEncoder
from .geometry import ee_frame
from .heads import EquivariantChunkHead, PlainChunkHead
from .normalization import Normalizer
from .object_channels import CODE_DIM, N_CHANNELS, object_masks
from .shape_harmonics import GAIN, n_even, n_scalars, shape_harmonics


class PolicyModel(nn.Module):
    def __init__(self, cfg: PolicyConfig, stats: dict[str, float] | None = None):
        super().__init__()
        self.cfg = cfg.validate()
        d = cfg.d_model
        cond_in = cfg.text_dim + (cfg.subgoal_dim + 1 if cfg.subgoal_dim else 0)
        self.cond = nn.Sequential(nn.Linear(cond_in, d), nn.SiLU(), nn.Linear(d, d))
        n_shape = n_even(N_CHANNELS) if cfg.shape_harmonics else 0
        if cfg.encoder == "equivariant":
            self.encoder = EquivariantEncoder(cfg, cond_dim=d)
            self.head = EquivariantChunkHead(d, self.encoder.out_odd, cfg.vectors, cfg.horizon, n_shape)
            shape_in = n_scalars(N_CHANNELS)
        elif cfg.encoder == "pointnet":
            self.encoder = PointNetEncoder(cfg, cond_dim=d)
            self.head = PlainChunkHead(d, cfg.horizon)
            shape_in = n_scalars(N_CHANNELS) + n_shape  # not equivariant: the turn's sign is a plain input
        else:
            raise ValueError(f"policy config: unknown encoder {cfg.encoder!r} (expected 'equivariant' or 'pointnet')")
        self.token = nn.Sequential(nn.Linear(self.encoder.out_scalars + 1 + d, d), nn.SiLU(), nn.Linear(d, d))
        # Shape harmonics join the token's first layer; zero at first, like the head's coef_shape.
        self.shape_in = nn.Linear(shape_in, d, bias=False) if cfg.shape_harmonics else None
        if self.shape_in is not None:
            nn.init.zeros_(self.shape_in.weight)
        self.backbone = Backbone(cfg)
        self.normalizer = Normalizer(stats)

    def condition(self, text, subgoal=None, subgoal_mask=None):
        """text (..., text_dim); subgoal (..., subgoal_dim) or None; mask (...) bool: subgoal present."""
        if not self.cfg.subgoal_dim:
            return self.cond(text)
        if subgoal is None:
            subgoal = text.new_zeros(*text.shape[:-1], self.cfg.subgoal_dim)
            subgoal_mask = torch.zeros(text.shape[:-1], dtype=torch.bool, device=text.device)
        elif subgoal_mask is None:
            subgoal_mask = torch.ones(text.shape[:-1], dtype=torch.bool, device=text.device)
        m = subgoal_mask.to(text.dtype)[..., None]
        return self.cond(torch.cat([text, subgoal * m, m], dim=-1))

    def masks(self, points, colors, objects):
        """Object channels (B, N, N_CHANNELS) from the subtask's object codes, or None when the
        config has none (then `objects` is ignored: older checkpoints run unchanged)."""
        if not self.cfg.object_channels:
            return None
        if objects is None:
            raise SchemaError("policy: this checkpoint has object channels (config object_channels=true) and needs "
                              "the subtask's object codes: objects=object_channels.codes_for(cfg, subtask_texts)")
        if objects.shape[-2:] != (N_CHANNELS, CODE_DIM):
            raise SchemaError(f"policy: object codes must end in ({N_CHANNELS}, {CODE_DIM}), got {tuple(objects.shape)}")
        return object_masks(colors, objects.to(colors.dtype), points, solid_cubes=self.cfg.solid_cube_masks)

    def encode(self, points, colors, state, text, subgoal=None, subgoal_mask=None, objects=None):
        """One token per cloud. points, colors (B, N, 3); state (B, STATE_DIM); text (B, text_dim);
        objects (B, N_CHANNELS, CODE_DIM) object codes (needed when the config has object channels).

        Returns token (B, d) and the head's vectors: odd (B, V, 3), even (B, V, 3), shape (B, n, 3),
        each None where the encoder or config has none."""
        cond = self.condition(text, subgoal, subgoal_mask)
        ee_pos, ee_axes, opening = ee_frame(state)
        masks = self.masks(points, colors, objects)
        scalars, v_odd, v_even = self.encoder(points, colors, ee_pos, ee_axes, cond, masks)
        pre = self.token[0](torch.cat([scalars, self.normalizer.normalize_opening(opening), cond], dim=-1))
        v_shape = None
        if self.shape_in is not None:
            shape_scalars, v_shape = (GAIN * x for x in shape_harmonics(points, masks, ee_axes))
            if v_odd is None:  # PointNet: no vectors; the turn's sign enters as a plain number
                shape_scalars, v_shape = torch.cat([shape_scalars, (v_shape * ee_axes[:, 1:]).sum(-1)], dim=-1), None
            pre = pre + self.shape_in(shape_scalars)
        return self.token[2](self.token[1](pre)), (v_odd, v_even, v_shape)

    def forward(self, points, colors, state, text, subgoal=None, subgoal_mask=None, objects=None):
        """Windows: points, colors (B, T, N, 3); state (B, T, S); text (B, T, E); objects (B, T, 2, 4)
        -> chunks (B, T, H, 7)."""
        b, t = points.shape[:2]
        flat = lambda x: None if x is None else x.flatten(0, 1)  # noqa: E731
        token, vectors = self.encode(flat(points), flat(colors), flat(state), flat(text), flat(subgoal),
                                     flat(subgoal_mask), flat(objects))
        h = self.backbone(token.unflatten(0, (b, t)))
        unflat = lambda x: None if x is None else x.unflatten(0, (b, t))  # noqa: E731
        return self.head(h, *map(unflat, vectors))

    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        p = next(self.parameters())
        return self.backbone.init_state(batch, device or p.device, dtype or p.dtype)

    def step(self, points, colors, state, text, backbone_state: dict, subgoal=None, subgoal_mask=None, objects=None):
        """One tick for B robots: points (B, N, 3) ... -> normalized chunk (B, H, 7)."""
        token, vectors = self.encode(points, colors, state, text, subgoal, subgoal_mask, objects)
        return self.head(self.backbone.step(token, backbone_state), *vectors)


def chunk_loss(pred: torch.Tensor, target: torch.Tensor, is_pad: torch.Tensor) -> torch.Tensor:
    """L1 over normalized action chunks, ignoring steps past the episode end. (B, T, H, 7), (B, T, H)."""
    err = F.l1_loss(pred, target, reduction="none").mean(-1)
    keep = (~is_pad).to(err.dtype)
    return (err * keep).sum() / keep.sum().clamp_min(1.0)
