"""`vla policy diagnose`: attention mass on the target and first-action agreement, checked on a
policy whose attention is uniform (so the expected numbers are known)."""

import os

import numpy as np
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from vla_stack import schema  # noqa: E402
from vla_stack.policy import PolicyModel, save_checkpoint, tiny_config  # noqa: E402
from vla_stack.policy.diagnose import DiagnoseConfig, attention_on_target, diagnose  # noqa: E402


def uniform_attention_model():
    torch.manual_seed(0)
    model = PolicyModel(tiny_config()).eval()
    last = model.encoder.attn[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    return model


def test_uniform_attention_puts_the_target_share_of_weight_on_it():
    model = uniform_attention_model()
    g = torch.Generator().manual_seed(1)
    points = torch.rand(1, 100, 3, generator=g)
    points[0, :10] = torch.tensor([0.5, 0.5, 0.5]) + 0.001 * torch.rand(10, 3, generator=g)  # 10 target points
    state = torch.zeros(1, schema.STATE_DIM)
    state[0, 3] = 1.0
    row = attention_on_target(model, points, torch.rand(1, 100, 3, generator=g), state, torch.randn(1, 384),
                              torch.tensor([0.5, 0.5, 0.5]), radius_m=0.01)
    assert row["target_points"] == 10
    assert np.allclose(row["mass"], 0.1, atol=1e-6)
    centroid_error = np.linalg.norm(points[0].mean(0).numpy() - np.array([0.5, 0.5, 0.5]))
    assert np.allclose(row["centroid_error_m"], centroid_error, atol=1e-5)


def test_diagnose_runs_over_layouts_of_a_task(tmp_path):
    ckpt = save_checkpoint(tmp_path / "ckpt", uniform_attention_model())
    r = diagnose(DiagnoseConfig(checkpoint=ckpt, task="PickRedCube", seeds=3, n_points=64, image_size=32))
    assert r["target"] == "red_cube" and r["layouts"] == 3
    assert np.allclose(r["attention_mass_on_target_per_head"], r["uniform_mass"], atol=1e-5)
    assert all(c > 0 for c in r["centroid_error_cm_per_head"])
