"""PointNet-style baseline encoder (not equivariant): shared per-point MLP on gripper-relative
coordinates and colours, max-pooled; for the "does equivariance help" ablation."""

from __future__ import annotations

import torch
from torch import nn

from .config import PolicyConfig
from .object_channels import N_CHANNELS


class PointNetEncoder(nn.Module):
    def __init__(self, cfg: PolicyConfig, cond_dim: int):
        super().__init__()
        width = 4 * cfg.scalars
        self.point_mlp = nn.Sequential(nn.Linear(6 + (N_CHANNELS if cfg.object_channels else 0), width), nn.SiLU(), nn.Linear(width, width))
        self.film = nn.Linear(cond_dim, 2 * width)
        self.post = nn.Sequential(nn.SiLU(), nn.Linear(width, width))
        self.out = nn.Linear(width + 6, cfg.scalars)
        self.out_scalars = cfg.scalars

    def forward(self, points, colors, ee_pos, ee_axes, cond, masks=None):
        gamma, beta = self.film(cond).chunk(2, dim=-1)
        h = self.point_mlp(torch.cat([points - ee_pos[:, None], colors] + ([] if masks is None else [masks]), dim=-1))
        h = self.post(h * (1 + gamma[:, None]) + beta[:, None]).amax(dim=1)
        return self.out(torch.cat([h, ee_axes.flatten(1)], dim=-1)), None, None
