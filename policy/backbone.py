"""The sequence model over per-tick tokens: pre-norm residual stack of Mamba blocks (or the
Transformer baseline), with a parallel `forward` for training and a `step` for streaming."""

from __future__ import annotations

import torch
from torch import nn

from .config import PolicyConfig
from .mamba import MambaBlock
from .transformer import TransformerBlock, sinusoidal_position


class Backbone(nn.Module):
    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        self.kind = cfg.backbone
        if cfg.backbone == "mamba":
            make = lambda: MambaBlock(cfg.d_model, cfg.d_state, cfg.d_conv, cfg.expand, cfg.dt_min, cfg.dt_max)  # noqa: E731
        elif cfg.backbone == "transformer":
            make = lambda: TransformerBlock(cfg.d_model, cfg.n_heads)  # noqa: E731
        else:
            raise ValueError(f"policy config: unknown backbone {cfg.backbone!r} (expected 'mamba' or 'transformer')")
        self.norms = nn.ModuleList(nn.RMSNorm(cfg.d_model) for _ in range(cfg.n_layers))
        self.layers = nn.ModuleList(make() for _ in range(cfg.n_layers))
        self.norm_f = nn.RMSNorm(cfg.d_model)
        self.d_model = cfg.d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, d) -> (B, L, d), causal."""
        if self.kind == "transformer":
            x = x + sinusoidal_position(torch.arange(x.shape[1], device=x.device), self.d_model).to(x.dtype)
        for norm, layer in zip(self.norms, self.layers):
            x = x + layer(norm(x))
        return self.norm_f(x)

    def init_state(self, batch: int, device=None, dtype=torch.float32) -> dict:
        return {"t": 0, "layers": [layer.init_state(batch, device, dtype) for layer in self.layers]}

    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        """x (B, d) -> (B, d); advances `state` by one tick in place."""
        if self.kind == "transformer":
            pos = torch.tensor([state["t"]], device=x.device)
            x = x + sinusoidal_position(pos, self.d_model).to(x.dtype)
        for norm, layer, s in zip(self.norms, self.layers, state["layers"]):
            x = x + layer.step(norm(x), s)
        state["t"] += 1
        return self.norm_f(x)


def state_nbytes(state: dict) -> int:
    """Bytes held by a backbone's streaming state (flat for Mamba, growing for the Transformer)."""
    return sum(s.nbytes() for s in state["layers"])
