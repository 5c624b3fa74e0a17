"""The action expert's symmetry, checked in float64: rotate and translate the whole input
(points, end-effector pose) and the predicted translations and rotations rotate the same
way while the gripper command does not change."""

import pytest
import torch
from e3nn import o3

from vla_stack.policy import PolicyModel, tiny_config
from vla_stack.policy.geometry import quat_to_matrix

STATS = {"pos_scale": 0.013, "rot_scale": 0.07, "gripper_mean": 0.3, "gripper_std": 0.8,
         "opening_mean": 0.03, "opening_std": 0.01}


def quat_mul(a, b):
    w1, x1, y1, z1 = a.unbind(-1)
    w2, x2, y2, z2 = b.unbind(-1)
    return torch.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], -1)


def random_inputs(b=2, t=3, n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(b, t, n, 3, generator=g, dtype=torch.float64) * 0.3
    cols = torch.rand(b, t, n, 3, generator=g, dtype=torch.float64)
    state = torch.randn(b, t, 15, generator=g, dtype=torch.float64)
    text = torch.randn(b, t, 384, generator=g, dtype=torch.float64)
    return pts, cols, state, text


def transform(pts, state, R, shift):
    """Rotate by R then translate: points and ee position move, the ee quaternion turns by R."""
    q = o3.matrix_to_quaternion(R).expand(*state.shape[:-1], 4)
    state = state.clone()
    state[..., 0:3] = state[..., 0:3] @ R.T + shift
    state[..., 3:7] = quat_mul(q, state[..., 3:7])
    return pts @ R.T + shift, state


def actions(model, pts, cols, state, text):
    return model.normalizer.unnormalize_action(model(pts, cols, state, text))


@pytest.mark.parametrize("backbone", ["mamba", "transformer"])
def test_rotating_and_translating_the_scene_rotates_the_actions(backbone):
    torch.manual_seed(0)
    model = PolicyModel(tiny_config(backbone=backbone), STATS).double().eval()
    pts, cols, state, text = random_inputs()
    a = actions(model, pts, cols, state, text)
    assert a.abs().max() > 1e-3  # a non-trivial output, so the comparison means something
    for seed in range(3):
        torch.manual_seed(100 + seed)
        R = o3.rand_matrix(dtype=torch.float64)
        shift = torch.tensor([0.4, -1.3, 0.7], dtype=torch.float64) * (seed + 1)
        pts2, state2 = transform(pts, state, R, shift)
        b = actions(model, pts2, cols, state2, text)
        assert torch.allclose(b[..., :3], a[..., :3] @ R.T, atol=1e-4, rtol=0)  # translation rotates
        assert torch.allclose(b[..., 3:6], a[..., 3:6] @ R.T, atol=1e-4, rtol=0)  # axis-angle rotates
        assert torch.allclose(b[..., 6], a[..., 6], atol=1e-4, rtol=0)  # gripper unchanged


def test_streaming_step_is_equivariant_too():
    torch.manual_seed(1)
    model = PolicyModel(tiny_config(), STATS).double().eval()
    pts, cols, state, text = random_inputs(b=1, t=4)
    R = o3.rand_matrix(dtype=torch.float64)
    pts2, state2 = transform(pts, state, R, torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64))
    s1, s2 = model.init_state(1), model.init_state(1)
    for t in range(4):
        a = model.step(pts[:, t], cols[:, t], state[:, t], text[:, t], s1)
        b = model.step(pts2[:, t], cols[:, t], state2[:, t], text[:, t], s2)
        assert torch.allclose(b[..., :3], a[..., :3] @ R.T, atol=1e-4, rtol=0)
        assert torch.allclose(b[..., 6], a[..., 6], atol=1e-4, rtol=0)


def test_encoder_is_E3_equivariant_given_gripper_axes_as_vectors():
    """Inversion x -> -x: displacements (1o) flip, pseudovectors (1e: axis-angle) do not.
    Only reachable through the encoder: a quaternion cannot describe a mirrored gripper."""
    torch.manual_seed(2)
    model = PolicyModel(tiny_config(), STATS).double().eval()
    pts, cols, state, text = (x[:, 0] for x in random_inputs(t=1))
    ee = state[:, :3]
    axes = quat_to_matrix(state[:, 3:7])[..., [0, 2]].transpose(-1, -2)
    cond = model.condition(text)
    s, v_odd, v_even = model.encoder(pts, cols, ee, axes, cond)
    s2, v_odd2, v_even2 = model.encoder(-pts, cols, -ee, -axes, cond)
    assert torch.allclose(s2, s, atol=1e-8) and torch.allclose(v_odd2, -v_odd, atol=1e-8)
    assert torch.allclose(v_even2, v_even, atol=1e-8)
    assert v_even.abs().max() > 1e-4  # pseudovector channels are really populated


def test_pointnet_baseline_is_not_equivariant():
    """The same check fails for the non-equivariant baseline: the test can tell them apart."""
    torch.manual_seed(0)
    model = PolicyModel(tiny_config(encoder="pointnet"), STATS).double().eval()
    pts, cols, state, text = random_inputs()
    R = o3.rand_matrix(dtype=torch.float64)
    pts2, state2 = transform(pts, state, R, torch.zeros(3, dtype=torch.float64))
    a, b = actions(model, pts, cols, state, text), actions(model, pts2, cols, state2, text)
    assert (b[..., :3] - a[..., :3] @ R.T).abs().max() > 1e-3
