"""How each marked object is turned about the gripper's approach axis: angular harmonics of its points.

Why: the experts never squared the hand with a cube before grasping (docs/agent.md, "why place
fails"): closed, the fingers sat 35 deg off the faces, the cube was held by its edges and turned
out over the bowl. A cube looks the same every 90 deg, so its yaw lives only in 4-fold angular
structure (l >= 4 in spherical-harmonic terms); every pooled feature of the equivariant encoder
stops at l = 2, and a linear probe found the cube's yaw in neither encoder (R^2 0.28). This module
measures it directly, keeping the symmetry: in the plane across the approach axis z, with the
closing axis a as 0 deg, each marked point's offset from its object's centroid is u = x + iy
(x = r.a, y = r.(z x a)), and

    Z_m = sum_n u_n^m / sum_n |u_n|^m        (m = 2: elongation, m = 4: square faces)

is 1 when the object's m-fold structure lines up with the fingers. Re Z_m and |Z_m| are invariant
under any rotation or reflection of the scene together with the gripper; Im Z_m flips sign under a
reflection (a pseudo-scalar), so it reaches the action head only as the even vector Im Z_m * z,
the axis-angle of a turn about z: the rotation it asks for transforms as the head's rotations do.
Flipping the closing axis (a -> -a, a parallel gripper's symmetry) changes nothing: m is even.

Only each channel's densest cluster counts (`densest_cluster`): the colour test that marks "the red cube"
also marks the red button cap 20+ cm away, and over both the harmonics described the pair, not the cube
(at reset, Im Z_4 correlated with the hand's yaw off the red cube's faces at -0.04; for the blue cube, which
nothing else shares a colour with, at -0.94). Distances are invariant, so the symmetry above still holds.
"""

from __future__ import annotations

import torch

HARMONICS = (2, 4)
AMPLITUDE_FLOOR = 0.05  # below this |Z| the direction is noise (a round or barely seen object)
# The model multiplies both outputs by this before its (zero-initialised) weights. Adam moves a weight
# by about the learning rate per step, and turning at the expert's rate needs a head coefficient of
# about 5 in normalized action units: from zero at lr 3e-4, 15k steps; with the gain, under 1k. A
# 1,400-step fine-tune without it turned the hand at 0.006 rad per tick where the expert turns at 0.2.
GAIN = 20.0
CLUSTER_RADIUS_M = 0.05  # a 4 cm cube's visible points lie within this of its densest point
MAX_MARKED = 64  # marked points per channel searched for the densest one (a cube gets 11-30)
# A flat cluster must be flat this far around its peak: farther than any two of a 4 cm cube's visible points
# (6.9 cm), so a corner of a cube's top face, whose 5 cm neighbourhood may miss the cube's side, is not flat.
FLAT_RADIUS_M = 0.075


def n_scalars(n_channels: int) -> int:
    return 2 * len(HARMONICS) * n_channels


def n_even(n_channels: int) -> int:
    return len(HARMONICS) * n_channels


@torch.no_grad()
def densest_cluster(points: torch.Tensor, masks: torch.Tensor, min_height_m: float = 0.0,
                    flat: torch.Tensor | None = None) -> torch.Tensor:
    """masks (B, N, C) -> the same, keeping per channel only the marked points within CLUSTER_RADIUS_M of
    the marked point with the most marked neighbours in that radius (the first MAX_MARKED marked points,
    in cloud order, are searched).

    `min_height_m` > 0: a point whose marked neighbours span at least that much height (z) wins over any
    that does not, so a solid object beats a flat one of the same colour (the red cube's 3-4 cm against
    the button cap's 0.4-1.6 cm). `flat` (B, C) bool: in those channels the other way round, and only a
    flat cluster counts (none: the channel is emptied). Heights are measured along the base frame's z,
    gravity: invariant under turns about it (the workspace yaw), not under tilts."""
    b, n, c = masks.shape
    k = min(MAX_MARKED, n)
    per_channel = masks.transpose(1, 2)                                        # (B, C, N)
    order = torch.argsort(-per_channel, dim=-1, stable=True)[..., :k]          # marked first, cloud order
    valid = torch.gather(per_channel, 2, order)                                # (B, C, k)
    cand = torch.gather(points[:, None].expand(b, c, n, 3), 2, order[..., None].expand(b, c, k, 3))
    dist = torch.cdist(cand, cand)                                             # (B, C, k, k)
    near = (dist < CLUSTER_RADIUS_M).to(masks.dtype)
    neighbours = near * valid[..., None, :]
    score = neighbours.sum(-1) * valid                                         # marked neighbours of marked points
    if min_height_m > 0:
        z = cand[..., None, :, 2]                                               # (B, C, 1, k)

        def height(seen):
            return torch.where(seen, z, -torch.inf).amax(-1) - torch.where(seen, z, torch.inf).amin(-1)

        wanted = height(neighbours > 0) >= min_height_m
        if flat is not None:
            wide = (dist < FLAT_RADIUS_M) & (valid[..., None, :] > 0)
            wanted = torch.where(flat[..., None], height(wide) < min_height_m, wanted)
        wanted = wanted & (valid > 0)
        score = score + (k + 1) * wanted.to(score.dtype)
    peak = torch.gather(cand, 2, score.argmax(-1)[..., None, None].expand(b, c, 1, 3))  # (B, C, 1, 3)
    inside = (points[:, None] - peak).norm(dim=-1) < CLUSTER_RADIUS_M          # (B, C, N)
    if min_height_m > 0 and flat is not None:
        inside = inside & (~flat | wanted.any(-1))[..., None]                  # a flat channel without a flat cluster
    return masks * inside.transpose(1, 2).to(masks.dtype)


@torch.no_grad()
def shape_harmonics(points: torch.Tensor, masks: torch.Tensor, ee_axes: torch.Tensor, cluster: bool = True):
    """points (B, N, 3), masks (B, N, C) in {0, 1}, ee_axes (B, 2, 3) (closing axis a, approach z).

    Returns invariant scalars (B, 2 * len(HARMONICS) * C): per channel and m, Re Z_m / (|Z_m| + floor)
    and |Z_m|; and even vectors (B, len(HARMONICS) * C, 3): Im Z_m / (|Z_m| + floor) * z.
    A channel with no marked points gives zeros."""
    a, z = ee_axes[:, 0], ee_axes[:, 1]
    b = torch.cross(z, a, dim=-1)
    masks = densest_cluster(points, masks) if cluster else masks  # cluster=False: every marked point
    count = masks.sum(dim=1)                                                   # (B, C)
    centroid = torch.einsum("bnc,bnk->bck", masks, points) / count.clamp_min(1.0)[..., None]
    rel = points[:, None] - centroid[:, :, None]                               # (B, C, N, 3)
    x, y = torch.einsum("bcnk,bk->bcn", rel, a), torch.einsum("bcnk,bk->bcn", rel, b)
    rho, theta = torch.hypot(x, y), torch.atan2(y, x)
    w = masks.transpose(1, 2)                                                  # (B, C, N)
    scalars, pseudo = [], []
    for m in HARMONICS:
        wm = w * rho ** m
        norm = wm.sum(-1).clamp_min(1e-12)
        re, im = (wm * torch.cos(m * theta)).sum(-1) / norm, (wm * torch.sin(m * theta)).sum(-1) / norm
        amp = torch.hypot(re, im)
        scalars += [re / (amp + AMPLITUDE_FLOOR), amp]
        pseudo.append(im / (amp + AMPLITUDE_FLOOR))
    present = (count > 0).to(points.dtype)                                     # (B, C)
    scalars = torch.stack(scalars, dim=-1) * present[..., None]                # (B, C, 2M)
    pseudo = torch.stack(pseudo, dim=-1) * present[..., None]                  # (B, C, M)
    return scalars.flatten(1), pseudo.flatten(1)[..., None] * z[:, None, :]
