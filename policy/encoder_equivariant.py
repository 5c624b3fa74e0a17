"""E(3)-equivariant point-cloud encoder (e3nn): point convolutions with spherical harmonics
(l <= 2) on kNN graphs, points -> FPS centres -> centres -> one readout at the gripper.

Every edge uses a relative vector, so the output does not depend on where the scene is
(translation invariance); features are e3nn irreps, so rotating the scene rotates the
vector outputs and leaves the scalars unchanged. The subtask conditions only the scalar
per-point features (FiLM), which keeps the symmetry.

Outputs per cloud: invariant scalars (for the backbone), `vectors` odd-parity l=1 vectors
(1o: translate like displacements) and `vectors` even-parity ones (1e: pseudovectors, how
an axis-angle rotation transforms under a reflection) for the equivariant action head.
"""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace
from e3nn.nn import FullyConnectedNet, Gate
from torch import nn
from torch.nn import functional as F

from vla_stack import kernels

from .config import PolicyConfig
from .geometry import gather_points
from .object_channels import N_CHANNELS
from .tensor_product import SplitTensorProduct

SH_IRREPS = o3.Irreps.spherical_harmonics(2)  # 0e + 1o + 2e
OBJECT_BIAS_INIT = 8.0  # e^8 ~ 3000: ten marked points outweigh a thousand unmarked ones


class PointConv(nn.Module):
    """Messages  TP(feature_j, Y(r_ij); R(|r_ij|))  averaged over each node's neighbours."""

    def __init__(self, irreps_in, irreps_out, n_basis: int, r_max: float):
        super().__init__()
        self.n_basis, self.r_max = n_basis, r_max
        self.tp = o3.FullyConnectedTensorProduct(irreps_in, SH_IRREPS, irreps_out, shared_weights=False)
        # Same products. The split's backward skips e3nn's per-path zero fills, and on CUDA its contractions run
        # as one Triton kernel each: 2.5x a batch-128 training step, 1.18x a batch-256 inference tick on an H100
        # (benchmarks/results/train_step_speed_cuda_s15.json, policy_latency_cuda_s15.json). Without gradients on
        # the CPU e3nn's forward is faster than the split's batched matmuls, so CPU inference keeps it.
        self.split_tp = SplitTensorProduct(self.tp)
        self.use_split_tp = True   # False: e3nn's module when training too (benchmarks/train_step_speed.py)
        self.split_for_cuda_inference = True   # False: e3nn's forward for CUDA inference (benchmarks/policy_latency.py)
        self.radial = FullyConnectedNet([n_basis, 32, self.tp.weight_numel], act=F.silu)
        self.irreps_out = self.tp.irreps_out

    def forward(self, feat, pos_src, pos_dst, idx):
        """feat (B, Ns, F), pos_src (B, Ns, 3), pos_dst (B, Nd, 3), idx (B, Nd, k) -> (B, Nd, F_out)."""
        b, nd, k = idx.shape
        rel = gather_points(pos_src, idx) - pos_dst[:, :, None, :]
        sh = o3.spherical_harmonics(SH_IRREPS, rel, normalize=True, normalization="component")
        emb = soft_one_hot_linspace(rel.norm(dim=-1), 0.0, self.r_max, self.n_basis, basis="gaussian",
                                    cutoff=False) * self.n_basis ** 0.5
        split = torch.is_grad_enabled() or (feat.is_cuda and self.split_for_cuda_inference)
        tp = self.split_tp if self.use_split_tp and split else self.tp
        msg = tp(gather_points(feat, idx).reshape(b * nd * k, -1), sh.reshape(b * nd * k, -1),
                 self.radial(emb.reshape(b * nd * k, -1)))
        return msg.reshape(b, nd, k, -1).mean(dim=2)


def _gate(scalars: int, gated: str) -> Gate:
    gated = o3.Irreps(gated)
    return Gate(f"{scalars}x0e", [F.silu], f"{gated.num_irreps}x0e", [torch.sigmoid], gated)


class EquivariantEncoder(nn.Module):
    def __init__(self, cfg: PolicyConfig, cond_dim: int):
        super().__init__()
        self.cfg = cfg
        s, v, t = cfg.scalars, cfg.vectors, cfg.tensors2
        n_obj = N_CHANNELS if cfg.object_channels else 0
        self.point_mlp = nn.Sequential(nn.Linear(3 + n_obj, cfg.point_channels), nn.SiLU(),
                                       nn.Linear(cfg.point_channels, cfg.point_channels))
        self.film = nn.Linear(cond_dim, 2 * cfg.point_channels)
        self.gate1 = _gate(s, f"{v}x1o + {t}x2e")
        self.conv1 = PointConv(f"{cfg.point_channels}x0e", self.gate1.irreps_in, cfg.radial_basis,
                               cfg.radius_points_m)
        self.gate2 = _gate(s, f"{v}x1o + {v}x1e + {t}x2e")
        self.conv2 = PointConv(self.gate1.irreps_out, self.gate2.irreps_in, cfg.radial_basis, cfg.radius_centers_m)
        readout = o3.Irreps(f"{s}x0e + {v}x1o + {v}x1e")
        self.readout = PointConv(self.gate2.irreps_out, readout, cfg.radial_basis, cfg.radius_readout_m)
        # Mix the scene features with the gripper's own axes (2x1o): alignment scalars, cross products.
        self.mix = o3.FullyConnectedTensorProduct(readout + o3.Irreps("2x1o"), "1x0e + 2x1o", readout)
        # Attention pooling of exact displacements: V weighted centroids (point - gripper) with
        # invariant weights (colour, subtask, distance): centimetre-precise "where is the target",
        # which the FPS-centre graph blurs. Their norms and alignments with the gripper axes are
        # invariant scalars for the backbone (how far, so when to close the gripper).
        # With object channels the masks also enter the logits directly (no FiLM in between).
        self.attn = nn.Sequential(nn.Linear(cfg.point_channels + 1 + n_obj, cfg.point_channels), nn.SiLU(),
                                  nn.Linear(cfg.point_channels, v))
        # Object channel c biases head c's logits (learnable, starts at OBJECT_BIAS_INIT: ~all of the
        # head's weight on the marked points), so from step 0 one centroid is "where the named object is";
        # as plain inputs alone the masks went unused in short runs (benchmarks/results/policy_object_channel).
        if n_obj:
            bias = torch.zeros(n_obj, v)
            bias[torch.arange(min(n_obj, v)), torch.arange(min(n_obj, v))] = OBJECT_BIAS_INIT
            self.object_bias = nn.Parameter(bias)
        self.out_scalars = s + 3 * v
        self.out_odd = 2 * v

    def point_features(self, colors, cond, masks=None):
        """Invariant per-point features (B, N, C): colour (+ object masks), FiLM'd by the subtask."""
        gamma, beta = self.film(cond).chunk(2, dim=-1)
        x = colors if masks is None else torch.cat([colors, masks], dim=-1)
        return self.point_mlp(x) * (1 + gamma[:, None]) + beta[:, None]

    def attention(self, feat, dist, masks=None):
        """Pooling weights (B, N, V), softmax over the points."""
        if masks is None:
            return torch.softmax(self.attn(torch.cat([feat, dist], dim=-1)), dim=1)
        logits = self.attn(torch.cat([feat, dist, masks], dim=-1)) + masks @ self.object_bias
        return torch.softmax(logits, dim=1)

    def forward(self, points, colors, ee_pos, ee_axes, cond, masks=None):
        """points, colors (B, N, 3); ee_pos (B, 3); ee_axes (B, 2, 3); cond (B, cond_dim);
        masks (B, N, N_CHANNELS) object channels when the config has them, else None.

        Returns scalars (B, S), odd vectors (B, V, 3), even vectors (B, V, 3)."""
        cfg = self.cfg
        b = points.shape[0]
        feat = self.point_features(colors, cond, masks)
        centre_idx = kernels.farthest_point_sample(points.detach(), cfg.n_centers)
        centres = torch.gather(points, 1, centre_idx[..., None].expand(-1, -1, 3))
        x = self.gate1(self.conv1(feat, points, centres, kernels.knn(centres.detach(), points.detach(), cfg.k_points)))
        idx_cc = kernels.knn(centres.detach(), centres.detach(), cfg.k_centers)
        x = self.gate2(self.conv2(x, centres, centres, idx_cc))
        all_centres = torch.arange(cfg.n_centers, device=points.device).expand(b, 1, -1)
        g = self.readout(x, centres, ee_pos[:, None, :], all_centres)[:, 0]          # (B, readout)
        axes = ee_axes.reshape(b, 6)
        g = self.mix(torch.cat([g, axes], dim=-1), torch.cat([torch.ones_like(axes[:, :1]), axes], dim=-1))
        s, v = cfg.scalars, cfg.vectors
        rel = points - ee_pos[:, None, :]                                                # (B, N, 3)
        dist = rel.norm(dim=-1, keepdim=True)
        weights = self.attention(feat, dist, masks)                                         # (B, N, V)
        centroids = torch.einsum("bnv,bnc->bvc", weights, rel)                              # (B, V, 3), 1o
        align = torch.einsum("bvc,bac->bva", centroids, ee_axes).flatten(1)                # (B, 2V)
        scalars = torch.cat([g[:, :s], centroids.norm(dim=-1), align], dim=-1)
        odd = torch.cat([g[:, s:s + 3 * v].reshape(b, v, 3), centroids], dim=1)
        return scalars, odd, g[:, s + 3 * v:].reshape(b, v, 3)
