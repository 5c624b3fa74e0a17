"""Action/state normalization that keeps the equivariance: vector parts are divided by one
isotropic scale (RMS over the 3 components, no offset: subtracting a mean vector or scaling
x, y, z differently would not commute with rotations); the gripper command is affine."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vla_stack import schema

ACTION_KEY, STATE_KEY = "action", "observation.state"


def isotropic_scale(mean: np.ndarray, std: np.ndarray) -> float:
    """RMS of a 3-vector over the data: sqrt(mean over components of (std^2 + mean^2))."""
    return float(max(np.sqrt(np.mean(np.square(std) + np.square(mean))), 1e-6))


def stats_from_dataset(stats: dict) -> dict[str, float]:
    """Dataset meta/stats.json (per-dimension mean/std) -> the few numbers the policy uses."""
    try:
        a_mean = np.asarray(stats[ACTION_KEY]["mean"], np.float64)
        a_std = np.asarray(stats[ACTION_KEY]["std"], np.float64)
        s_mean = np.asarray(stats[STATE_KEY]["mean"], np.float64)
        s_std = np.asarray(stats[STATE_KEY]["std"], np.float64)
    except KeyError as e:
        raise schema.SchemaError(f"dataset stats: missing {e.args[0]!r} (need 'action' and 'observation.state')") from None
    if a_mean.shape != (schema.ACTION_DIM,) or s_mean.shape != (schema.STATE_DIM,):
        raise schema.SchemaError(f"dataset stats: action/state mean shapes {a_mean.shape}/{s_mean.shape}, expected "
                                 f"({schema.ACTION_DIM},)/({schema.STATE_DIM},)")
    g = schema.STATE_GRIPPER.start
    return {
        "pos_scale": isotropic_scale(a_mean[:3], a_std[:3]),
        "rot_scale": isotropic_scale(a_mean[3:6], a_std[3:6]),
        "gripper_mean": float(a_mean[6]), "gripper_std": float(max(a_std[6], 1e-3)),
        "opening_mean": float(s_mean[g]), "opening_std": float(max(s_std[g], 1e-4)),
    }


DEFAULT_STATS = {"pos_scale": schema.MAX_DELTA_POS_M / 2, "rot_scale": schema.MAX_DELTA_ROT_RAD / 2,
                 "gripper_mean": 0.0, "gripper_std": 1.0, "opening_mean": 0.04, "opening_std": 0.02}


class Normalizer(nn.Module):
    """Stored as buffers, so the numbers travel inside model.safetensors too."""

    def __init__(self, stats: dict[str, float] | None = None):
        super().__init__()
        stats = {**DEFAULT_STATS, **(stats or {})}
        for k in DEFAULT_STATS:
            self.register_buffer(k, torch.tensor(float(stats[k])))

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in DEFAULT_STATS}

    def load_stats(self, stats: dict[str, float]) -> None:
        for k in DEFAULT_STATS:
            getattr(self, k).fill_(float(stats[k]))

    def normalize_action(self, a: torch.Tensor) -> torch.Tensor:
        return torch.cat([a[..., :3] / self.pos_scale, a[..., 3:6] / self.rot_scale,
                          (a[..., 6:] - self.gripper_mean) / self.gripper_std], dim=-1)

    def unnormalize_action(self, a: torch.Tensor) -> torch.Tensor:
        return torch.cat([a[..., :3] * self.pos_scale, a[..., 3:6] * self.rot_scale,
                          a[..., 6:] * self.gripper_std + self.gripper_mean], dim=-1)

    def normalize_opening(self, g: torch.Tensor) -> torch.Tensor:
        return (g - self.opening_mean) / self.opening_std
