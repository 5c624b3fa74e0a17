"""Action-chunk heads. The equivariant head writes each predicted translation as a learned
combination of the encoder's odd l=1 vectors and each rotation as one of its even (pseudo-)
vectors, with coefficients from the (invariant) backbone output: rotate the scene and the
actions rotate; the gripper command is a scalar, so it does not change."""

from __future__ import annotations

import torch
from torch import nn


class EquivariantChunkHead(nn.Module):
    def __init__(self, d_model: int, n_odd: int, n_even: int, horizon: int, n_shape: int = 0):
        super().__init__()
        self.h, self.n_odd, self.n_even, self.n_shape = horizon, n_odd, n_even, n_shape
        self.coef_pos = nn.Linear(d_model, horizon * n_odd)
        self.coef_rot = nn.Linear(d_model, horizon * n_even)
        self.grip = nn.Linear(d_model, horizon)
        # Turns asked for by the object's shape (shape_harmonics.py), zero at first: a checkpoint
        # trained without them starts its fine-tune unchanged.
        self.coef_shape = nn.Linear(d_model, horizon * n_shape) if n_shape else None
        if n_shape:
            nn.init.zeros_(self.coef_shape.weight)
            nn.init.zeros_(self.coef_shape.bias)

    def forward(self, h, vec_odd, vec_even, vec_shape=None):
        """h (..., d); vec_odd (..., V_odd, 3), vec_even (..., V_even, 3), vec_shape (..., n_shape, 3)
        even vectors when the head has them -> normalized chunk (..., H, 7)."""
        c_pos = self.coef_pos(h).unflatten(-1, (self.h, self.n_odd))
        c_rot = self.coef_rot(h).unflatten(-1, (self.h, self.n_even))
        pos = torch.einsum("...hv,...vc->...hc", c_pos, vec_odd)
        rot = torch.einsum("...hv,...vc->...hc", c_rot, vec_even)
        if self.n_shape:
            rot = rot + torch.einsum("...hv,...vc->...hc", self.coef_shape(h).unflatten(-1, (self.h, self.n_shape)), vec_shape)
        return torch.cat([pos, rot, self.grip(h)[..., None]], dim=-1)


class PlainChunkHead(nn.Module):
    def __init__(self, d_model: int, horizon: int, action_dim: int = 7):
        super().__init__()
        self.h, self.a = horizon, action_dim
        self.out = nn.Linear(d_model, horizon * action_dim)

    def forward(self, h, vec_odd=None, vec_even=None, vec_shape=None):
        return self.out(h).unflatten(-1, (self.h, self.a))
