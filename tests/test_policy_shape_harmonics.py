"""Shape harmonics: how a marked cube is turned relative to the fingers, and the symmetry they keep."""

import math

import torch
from e3nn import o3

from test_policy_equivariance import STATS, random_inputs, transform

from vla_stack.policy import PolicyModel, tiny_config
from vla_stack.policy.checkpoint import load_checkpoint, save_checkpoint
from vla_stack.policy.object_channels import OBJECT_COLORS, object_codes
from vla_stack.policy.shape_harmonics import shape_harmonics


def cube_top(yaw: float, n: int = 200, seed: int = 0) -> torch.Tensor:
    """Points on a 4 cm square face at height 0, turned by `yaw` about z, (1, n, 3) float64."""
    g = torch.Generator().manual_seed(seed)
    xy = (torch.rand(n, 2, generator=g, dtype=torch.float64) - 0.5) * 0.04
    c, s = math.cos(yaw), math.sin(yaw)
    xy = xy @ torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
    return torch.cat([xy + torch.tensor([0.3, -0.1], dtype=torch.float64), torch.zeros(n, 1, dtype=torch.float64)], -1)[None]


def gripper(yaw: float) -> torch.Tensor:
    """Closing axis at `yaw` in the table plane, approach straight down: (1, 2, 3)."""
    return torch.tensor([[[math.cos(yaw), math.sin(yaw), 0.0], [0.0, 0.0, -1.0]]], dtype=torch.float64)


def turn_to_faces(points, axes):
    """The yaw (rad, in (-45, 45] deg) that the 4-fold harmonic says separates fingers and faces."""
    masks = torch.ones(points.shape[0], points.shape[1], 2, dtype=points.dtype)
    scalars, vectors = shape_harmonics(points, masks, axes)
    re4, im4 = scalars[:, 2], (vectors[:, 1] * axes[:, 1]).sum(-1)
    # Corners lie farthest out, so the harmonic points at a corner, 45 deg from the faces.
    return torch.remainder(torch.atan2(im4, re4) / 4 + math.pi / 4 + math.pi / 4, math.pi / 2) - math.pi / 4


def test_reads_a_cubes_yaw_relative_to_the_fingers_modulo_90_degrees():
    for cube_deg, hand_deg in ((0, 0), (20, 0), (-30, 10), (80, 5), (10, 190)):
        got = turn_to_faces(cube_top(math.radians(cube_deg)), gripper(math.radians(hand_deg)))
        want = (cube_deg - hand_deg + 45) % 90 - 45
        # the approach axis points down, so the angle from the fingers to the faces is read clockwise
        assert abs(math.degrees(-got.item()) - want) < 3.0, (cube_deg, hand_deg, math.degrees(got.item()))


def test_a_distant_blob_of_the_same_colour_does_not_change_the_reading():
    """The red cube's colour test also marks the red button cap: only the densest cluster counts."""
    cube, axes = cube_top(math.radians(20)), gripper(0.0)
    cap = torch.tensor([[[0.3, 0.15, 0.02]]], dtype=torch.float64) + 0.004 * torch.randn(1, 12, 3, dtype=torch.float64)
    alone, with_cap = turn_to_faces(cube, axes), turn_to_faces(torch.cat([cube, cap], dim=1), axes)
    assert abs(math.degrees(-alone.item()) - 20) < 3.0
    assert abs(math.degrees(with_cap.item() - alone.item())) < 1e-6


def test_rotating_or_mirroring_scene_and_gripper_keeps_scalars_and_turns_the_vectors_as_rotations():
    points, axes = cube_top(0.4), gripper(-0.2)
    masks = torch.ones(1, points.shape[1], 2, dtype=points.dtype)
    s, v = shape_harmonics(points, masks, axes)
    assert v.abs().max() > 1e-2  # the cube is turned relative to the fingers: a non-zero turn
    for R in (o3.rand_matrix(dtype=torch.float64), -o3.rand_matrix(dtype=torch.float64)):
        s2, v2 = shape_harmonics(points @ R.T + 1.5, masks, axes @ R.T)
        assert torch.allclose(s2, s, atol=1e-9)
        assert torch.allclose(v2, torch.det(R) * v @ R.T, atol=1e-9)  # even vectors: axis-angles


def test_an_unmarked_channel_gives_zeros():
    points, axes = cube_top(0.3), gripper(0.0)
    masks = torch.zeros(1, points.shape[1], 2, dtype=points.dtype)
    masks[..., 0] = 1
    s, v = shape_harmonics(points, masks, axes)
    assert s[0, :4].abs().max() > 1e-3 and s[0, 4:].abs().max() == 0 and v[0, 2:].abs().max() == 0


def marked_inputs():
    pts, cols, state, text = random_inputs(b=2, t=3, n=48)
    cols[..., :16, :] = torch.tensor(OBJECT_COLORS["green_cube"], dtype=torch.float64)
    objects = torch.from_numpy(object_codes(["pick up the green cube"] * 6, ("green_cube",))).double().reshape(2, 3, 2, 4)
    return pts, cols, state, text, objects


def test_the_action_expert_with_shape_harmonics_stays_equivariant():
    torch.manual_seed(3)
    model = PolicyModel(tiny_config(object_channels=True, shape_harmonics=True, marked_objects=("green_cube",)), STATS)
    for p in (model.shape_in.weight, model.head.coef_shape.weight):
        torch.nn.init.normal_(p, std=0.3)  # they start at zero; give them weight so the check means something
    model = model.double().eval()
    pts, cols, state, text, objects = marked_inputs()
    a = model.normalizer.unnormalize_action(model(pts, cols, state, text, objects=objects))
    R = o3.rand_matrix(dtype=torch.float64)
    pts2, state2 = transform(pts, state, R, torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64))
    b = model.normalizer.unnormalize_action(model(pts2, cols, state2, text, objects=objects))
    assert torch.allclose(b[..., :3], a[..., :3] @ R.T, atol=1e-4, rtol=0)
    assert torch.allclose(b[..., 3:6], a[..., 3:6] @ R.T, atol=1e-4, rtol=0)
    assert torch.allclose(b[..., 6], a[..., 6], atol=1e-4, rtol=0)


def test_a_checkpoint_without_them_loads_with_them_added_and_acts_the_same(tmp_path):
    torch.manual_seed(4)
    cfg = tiny_config(object_channels=True, marked_objects=("green_cube",))
    for encoder in ("equivariant", "pointnet"):
        cfg.encoder = encoder
        before = PolicyModel(cfg, STATS).eval()
        save_checkpoint(tmp_path / encoder, before)
        after, _ = load_checkpoint(tmp_path / encoder, add_shape_harmonics=True)
        assert after.cfg.shape_harmonics and after.shape_in is not None
        pts, cols, state, text, objects = (x.float() for x in marked_inputs())
        with torch.no_grad():
            assert torch.allclose(after(pts, cols, state, text, objects=objects),
                                  before(pts, cols, state, text, objects=objects), atol=1e-6)
