"""Object-centric perception: segment the coloured cloud, then summarise each segment.

A standard tabletop pipeline. A small edge-convolution network (DGCNN-style: each point
looks at its k nearest neighbours' colours and offsets) labels every point with a segment
(a cube, the bowl, the drawer, the button, the cabinet, or background). Colour alone is not
enough here: the button cap is as red as the red cube (and lights up as green as the green
cube), the drawer front is close to the cabinet's blue-grey; the neighbourhood (a dark base
ring, a table around it) tells them apart. Each segment is then summarised by a few numbers
the fact heads can judge geometry from: point count, visibility, centroid, spread, top and
bottom height, mean colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

SEGMENTS = ("background", "red cube", "green cube", "blue cube", "bowl", "drawer", "button", "cabinet")
CUBE_SEGMENTS = (1, 2, 3)
# per segment: log count, visible, centroid (3), spread (3), top z, bottom z, mean colour (3)
FEATURE_DIM = 13
COLOUR_SLICE = slice(10, 13)
GEOMETRY_SCALE = 10.0  # metres -> decimetres: unit-sized inputs


@dataclass
class SegmenterConfig:
    width: int = 48
    k: int = 16  # neighbours per point


def knn(points: torch.Tensor, k: int) -> torch.Tensor:
    """(B, N, k) indices of each point's k nearest neighbours (itself included)."""
    return torch.cdist(points, points).topk(k, dim=-1, largest=False).indices


def gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, N, C), idx (B, N, k) -> (B, N, k, C)."""
    B, N, k = idx.shape
    return x.gather(1, idx.reshape(B, N * k, 1).expand(-1, -1, x.shape[-1])).reshape(B, N, k, x.shape[-1])


class EdgeConv(nn.Module):
    """max over neighbours j of GELU(A h_i + B h_j + C (p_j - p_i)), then a pointwise layer.
    (DGCNN's edge MLP with its first layer split, so it runs per point, not per edge.)"""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.center = nn.Linear(c_in, c_out)
        self.neighbour = nn.Linear(c_in, c_out, bias=False)
        self.offset = nn.Linear(3, c_out, bias=False)
        self.post = nn.Linear(c_out, c_out)

    def forward(self, h, points, idx):
        dp = (gather(points, idx) - points[:, :, None]) * 20.0
        e = self.center(h)[:, :, None] + gather(self.neighbour(h), idx) + self.offset(dp)
        return self.post(nn.functional.gelu(e).max(dim=2).values)


class PointSegmenter(nn.Module):
    def __init__(self, cfg: SegmenterConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SegmenterConfig()
        w = cfg.width
        self.point = nn.Sequential(nn.Linear(4, w), nn.GELU(), nn.Linear(w, w))
        self.edge1 = EdgeConv(w, w)
        self.edge2 = EdgeConv(w, w)
        self.out = nn.Sequential(nn.Linear(3 * w, w), nn.GELU(), nn.Linear(w, len(SEGMENTS)))

    def forward(self, points: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        """Segment logits (B, N, S). Absolute x/y are not inputs: layouts move objects around."""
        h0 = self.point(torch.cat([colors, points[..., 2:3] * GEOMETRY_SCALE], dim=-1))
        idx = knn(points, min(self.cfg.k, points.shape[1]))
        h1 = self.edge1(h0, points, idx)
        h2 = self.edge2(h1, points, idx)
        return self.out(torch.cat([h0, h1, h2], dim=-1))


def segment_features(points: torch.Tensor, colors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-segment summary (B, S, FEATURE_DIM) from membership weights (B, N, S) in [0, 1].

    Geometry is in decimetres; an invisible segment (no points) has zero centroid/spread."""
    w = weights.transpose(1, 2)  # (B, S, N)
    count = w.sum(-1, keepdim=True)
    denom = count.clamp(min=1e-3)
    cent = (w @ points) / denom
    spread = ((w @ points.square()) / denom - cent.square()).clamp(min=0).sqrt()
    colour = (w @ colors) / denom
    z = points[..., 2][:, None].expand_as(w)
    member = w > 0.5
    top = torch.where(member, z, torch.full_like(z, -1.0)).max(-1).values
    bottom = torch.where(member, z, torch.full_like(z, 9.0)).min(-1).values
    any_member = member.any(-1)
    top = torch.where(any_member, top, torch.zeros_like(top))[..., None]
    bottom = torch.where(any_member, bottom, torch.zeros_like(bottom))[..., None]
    visible = (count / 3.0).clamp(max=1.0)
    return torch.cat([torch.log1p(count), visible, cent * GEOMETRY_SCALE, spread * GEOMETRY_SCALE,
                      top * GEOMETRY_SCALE, bottom * GEOMETRY_SCALE, colour], dim=-1)


def hand_weights(points: torch.Tensor, probs: torch.Tensor, ee: torch.Tensor, radius: float = 0.06) -> torch.Tensor:
    """(B, N, 1) membership of "a cube at the hand": any cube's points within `radius` of the
    end effector (the hand hides which cube it is; the plan knows)."""
    near = (torch.linalg.vector_norm(points - ee[:, None], dim=-1) < radius).float()
    return (probs[..., list(CUBE_SEGMENTS)].sum(-1) * near)[..., None]
