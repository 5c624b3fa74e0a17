"""Causal Transformer block with a KV cache: the baseline backbone. Same `forward` / `step`
API as the Mamba block, but its cache grows with every tick (memory O(episode length))."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class KVCache:
    k: torch.Tensor  # (B, heads, capacity, head_dim), doubled when full
    v: torch.Tensor
    length: int = 0

    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        if self.length == self.k.shape[2]:
            self.k = torch.cat([self.k, torch.zeros_like(self.k)], dim=2)
            self.v = torch.cat([self.v, torch.zeros_like(self.v)], dim=2)
        self.k[:, :, self.length] = k
        self.v[:, :, self.length] = v
        self.length += 1


def sinusoidal_position(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """positions (L,) -> (L, dim); any length, so streaming never runs out of positions."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float64) / half)
    ang = positions.to(torch.float64)[:, None] * freq
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


class TransformerBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.RMSNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def _heads(self, x):  # (B, L, 3 d) -> 3 x (B, h, L, hd)
        return [t.unflatten(-1, (self.n_heads, self.head_dim)).transpose(1, 2) for t in x.chunk(3, dim=-1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, d): the mixer's output (the caller adds the residual); MLP included."""
        q, k, v = self._heads(self.qkv(x))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).flatten(2)
        h = self.proj(a)
        return h + self.mlp(self.norm2(x + h))

    def init_state(self, batch: int, device=None, dtype=torch.float32, capacity: int = 16) -> KVCache:
        shape = (batch, self.n_heads, capacity, self.head_dim)
        return KVCache(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))

    def step(self, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
        q, k, v = self._heads(self.qkv(x[:, None]))
        cache.append(k[:, :, 0], v[:, :, 0])
        n = cache.length
        a = F.scaled_dot_product_attention(q, cache.k[:, :, :n], cache.v[:, :, :n]).transpose(1, 2).flatten(1)
        h = self.proj(a)
        return h + self.mlp(self.norm2(x + h))
