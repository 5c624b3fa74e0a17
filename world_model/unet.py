"""The subgoal network: a U-Net over the current RGB-D frame, conditioned on the subtask.

The subtask embedding reaches every residual block through FiLM (a per-channel scale and
shift), so the same image can be pushed toward different futures by different words. The
network predicts a *change* to the current frame: most pixels do not move during a subtask,
so the identity is the starting point and capacity goes to what the subtask alters. One
self-attention layer at the coarsest level lets an object's appearance move across the
whole image (pick here, place there), which a stack of 3x3 convolutions reaches only slowly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import WorldModelConfig
from .objects import N_MASKS


def _groups(channels: int) -> int:
    return 8 if channels % 8 == 0 else 1


class FiLMResBlock(nn.Module):
    """conv -> GroupNorm -> FiLM(text) -> SiLU -> conv, with a residual path."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.film = nn.Linear(cond_dim, 2 * c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.normal_(self.film.weight, std=0.02)  # near identity, yet the text reaches every block
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the pixels of a (small) feature map."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        out, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class WordCrossAttention2d(nn.Module):
    """Pixels of a small feature map attend to the subtask's word tokens (padding masked)."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor, words: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attn(q, words, words, key_padding_mask=pad, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class SubgoalUNet(nn.Module):
    """(current RGB-D in [-1, 1], subtask embedding) -> (subgoal RGB-D, about [-1, 1], latent).

    The output is not clamped here (clamping would stop gradients at saturated pixels);
    `WorldModel` clamps when it turns the prediction back into an image.
    """

    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        ch = config.channels
        self.in_channels = 4 if config.predict_depth else 3
        self.mask_channels = N_MASKS if config.object_masks else 0
        self.colour_inputs = (N_MASKS * 4) if (config.object_masks and config.object_colour_input) else 0
        self.cond = nn.Sequential(nn.Linear(config.text_dim + self.colour_inputs, config.cond_dim), nn.SiLU(),
                                  nn.Linear(config.cond_dim, config.cond_dim))
        self.stem = nn.Conv2d(self.in_channels + self.mask_channels + 2, ch[0], 3, padding=1)  # +2: pixel coordinates
        self.enc = nn.ModuleList(FiLMResBlock(c, c, config.cond_dim) for c in ch)
        self.down = nn.ModuleList(nn.Conv2d(ch[i], ch[i + 1], 3, stride=2, padding=1) for i in range(len(ch) - 1))
        self.mid_attn = SelfAttention2d(ch[-1], config.attention_heads)
        if config.word_tokens:
            self.word_proj = nn.Linear(config.text_dim, ch[-1])
            self.word_pos = nn.Parameter(torch.randn(config.max_words, ch[-1]) * 0.02)
            self.word_attn = nn.ModuleList(WordCrossAttention2d(ch[-1], config.attention_heads) for _ in range(2))
        self.mid = FiLMResBlock(ch[-1], ch[-1], config.cond_dim)
        self.up = nn.ModuleList(nn.Conv2d(ch[i + 1], ch[i], 3, padding=1) for i in range(len(ch) - 1))
        self.dec = nn.ModuleList(FiLMResBlock(2 * ch[i], ch[i], config.cond_dim) for i in range(len(ch) - 1))
        self.head_norm = nn.GroupNorm(_groups(ch[0]), ch[0])
        self.head = nn.Conv2d(ch[0], self.in_channels, 3, padding=1)
        self.to_latent = nn.Linear(2 * ch[-1], config.latent_dim)
        nn.init.zeros_(self.head.weight)  # start as the copy-current-frame predictor
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor, text_embedding: torch.Tensor, word_embeddings: torch.Tensor | None = None,
                word_mask: torch.Tensor | None = None, object_masks: torch.Tensor | None = None,
                object_colours: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """word_embeddings (B, L, text_dim) and word_mask (B, L) bool are needed when config.word_tokens;
        object_masks (B, N_MASKS, H, W) in {0, 1} (objects.py) when config.object_masks; object_colours
        (B, N_MASKS * 4): per mask channel RGB in [0, 1] and a named-or-not flag, when config.object_colour_input."""
        b, _, h, w = image.shape
        ys = torch.linspace(-1, 1, h, device=image.device, dtype=image.dtype)
        xs = torch.linspace(-1, 1, w, device=image.device, dtype=image.dtype)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")).expand(b, 2, h, w)
        if self.colour_inputs:
            if object_colours is None or object_colours.shape != (b, self.colour_inputs):
                got = None if object_colours is None else tuple(object_colours.shape)
                raise ValueError(f"this world model takes object colours of shape {(b, self.colour_inputs)}, got {got}")
            text_embedding = torch.cat([text_embedding, object_colours.to(text_embedding.dtype)], dim=1)
        cond = self.cond(text_embedding)
        inputs = [image, grid]
        if self.mask_channels:
            if object_masks is None or object_masks.shape != (b, self.mask_channels, h, w):
                got = None if object_masks is None else tuple(object_masks.shape)
                raise ValueError(f"this world model takes object masks of shape {(b, self.mask_channels, h, w)}, got {got}")
            inputs.append(object_masks.to(image.dtype) * 2 - 1)
        x = self.stem(torch.cat(inputs, dim=1))
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x, cond)
            if i < len(self.down):
                skips.append(x)
                x = self.down[i](x)
        if self.config.word_tokens:
            if word_embeddings is None or word_mask is None:
                raise ValueError("this world model cross-attends to word tokens: pass word_embeddings and word_mask")
            n = word_embeddings.shape[1]
            words = self.word_proj(word_embeddings) + self.word_pos[:n]
            x = self.word_attn[0](x, words, ~word_mask)
        x = self.mid(self.mid_attn(x), cond)
        if self.config.word_tokens:
            x = self.word_attn[1](x, words, ~word_mask)
        latent = self.to_latent(torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1))
        for i in reversed(range(len(self.up))):
            x = self.up[i](F.interpolate(x, scale_factor=2.0, mode="nearest"))
            x = self.dec[i](torch.cat([x, skips[i]], dim=1), cond)
        delta = self.head(F.silu(self.head_norm(x)))
        return image + delta, latent
