"""Frame helpers shared by the encoders: the end-effector pose as equivariant vectors."""

from __future__ import annotations

import torch

from vla_stack import schema


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternion w, x, y, z (any norm > 0) -> (..., 3, 3) rotation matrix."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).unflatten(-1, (3, 3))


def ee_frame(state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """state (..., STATE_DIM) -> ee position (..., 3), gripper axes (..., 2, 3), opening (..., 1).

    The orientation enters as two columns of its rotation matrix (x and z axes of the gripper):
    plain vectors that rotate with the scene, unlike a quaternion's components. The third
    axis is their cross product, so it carries no extra information.
    """
    pos = state[..., schema.STATE_EE_POS]
    rot = quat_to_matrix(state[..., schema.STATE_EE_QUAT])
    axes = torch.stack([rot[..., :, 0], rot[..., :, 2]], dim=-2)
    return pos, axes, state[..., schema.STATE_GRIPPER]


def gather_points(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, N, F), idx (B, M, k) -> (B, M, k, F)."""
    b, m, k = idx.shape
    flat = idx.reshape(b, m * k, 1).expand(-1, -1, x.shape[-1])
    return torch.gather(x, 1, flat).reshape(b, m, k, x.shape[-1])
