"""Mamba (selective state-space) block with its two paths side by side, as in mamba_simple:
`forward` scans a whole sequence (training), `step` advances one control tick from a
carried state (streaming, O(1) time and memory per tick). The scan and the one-tick update
come from `vla_stack.kernels` (Triton on CUDA, the PyTorch reference elsewhere)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from vla_stack import kernels


@dataclass
class MambaState:
    conv: torch.Tensor  # (B, d_inner, d_conv): the last d_conv inputs of the causal conv
    ssm: torch.Tensor  # (B, d_inner, d_state)

    def nbytes(self) -> int:
        return self.conv.nbytes + self.ssm.nbytes


class MambaBlock(nn.Module):
    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state, self.d_conv = d_state, d_conv
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        with torch.no_grad():  # input-dependent step size starts in [dt_min, dt_max] (softplus inverse)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def _ssm_inputs(self, x):
        """x (..., d_inner) -> dt (..., d_inner) without bias, B, C (..., d_state)."""
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.linear(dt, self.dt_proj.weight), B, C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, d_model) -> (B, L, d_model): the parallel (training) path."""
        L = x.shape[1]
        xs, z = self.in_proj(x).chunk(2, dim=-1)
        xs = F.silu(self.conv1d(xs.transpose(1, 2))[..., :L])                 # causal conv (B, d_inner, L)
        dt, B, C = self._ssm_inputs(xs.transpose(1, 2))
        y = kernels.selective_scan(xs, dt.transpose(1, 2).contiguous(), -torch.exp(self.A_log),
                                   B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(), self.D,
                                   z.transpose(1, 2).contiguous(), delta_bias=self.dt_proj.bias, delta_softplus=True)
        return self.out_proj(y.transpose(1, 2))

    def init_state(self, batch: int, device=None, dtype=torch.float32) -> MambaState:
        state_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        return MambaState(conv=torch.zeros(batch, self.d_inner, self.d_conv, device=device, dtype=dtype),
                          ssm=torch.zeros(batch, self.d_inner, self.d_state, device=device, dtype=state_dtype))

    def step(self, x: torch.Tensor, state: MambaState) -> torch.Tensor:
        """x (B, d_model) -> (B, d_model); `state` is updated in place (the streaming path)."""
        xs, z = self.in_proj(x).chunk(2, dim=-1)
        state.conv.copy_(torch.roll(state.conv, shifts=-1, dims=-1))
        state.conv[:, :, -1] = xs
        xs = F.silu((state.conv * self.conv1d.weight[:, 0, :]).sum(-1) + self.conv1d.bias)
        dt, B, C = self._ssm_inputs(xs)
        y = kernels.selective_state_update(state.ssm, xs, dt, -torch.exp(self.A_log), B, C, self.D, z,
                                           dt_bias=self.dt_proj.bias, dt_softplus=True)
        return self.out_proj(y)
