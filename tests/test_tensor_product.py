"""The encoder's split tensor product against e3nn's own module (the reference), values and gradients."""

import pytest
import torch
from e3nn import o3

from vla_stack.policy.checkpoint import load_checkpoint
from vla_stack.policy.encoder_equivariant import SH_IRREPS, PointConv
from vla_stack.policy.tensor_product import SplitTensorProduct

ENCODER_CONVS = [("16x0e", "44x0e+8x1o+4x2e"), ("32x0e+8x1o+4x2e", "52x0e+8x1o+8x1e+4x2e"),
                 ("32x0e+8x1o+8x1e+4x2e", "32x0e+8x1o+8x1e")]


@pytest.fixture
def float64_constants():
    """Both modules build their Wigner 3j constants in the default dtype: float64 here, for a 1e-12 bound."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("irreps_in, irreps_out", ENCODER_CONVS)
def test_split_tensor_product_matches_e3nn_in_float64(irreps_in, irreps_out, float64_constants):
    tp = o3.FullyConnectedTensorProduct(irreps_in, SH_IRREPS, irreps_out, shared_weights=False)
    split = SplitTensorProduct(tp)
    g = torch.Generator().manual_seed(torch.seed())   # fresh inputs every run
    e = 37
    x1 = torch.randn(e, tp.irreps_in1.dim, generator=g, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(e, tp.irreps_in2.dim, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(e, tp.weight_numel, generator=g, dtype=torch.float64, requires_grad=True)
    ref, out = tp(x1, x2, w), split(x1, x2, w)
    assert out.shape == ref.shape
    assert torch.linalg.norm(out - ref) <= 1e-12 * torch.linalg.norm(ref)
    cot = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(ref, (x1, x2, w), cot), torch.autograd.grad(out, (x1, x2, w), cot)):
        assert torch.linalg.norm(a - b) <= 1e-12 * torch.linalg.norm(a)


def test_the_shipped_encoder_gives_the_same_features_with_either_tensor_product(float64_constants):
    model, _ = load_checkpoint("shipped/policy")
    enc = model.encoder
    g = torch.Generator().manual_seed(0)
    points = (torch.rand(2, 200, 3, generator=g, dtype=torch.float64) - 0.5) * 0.6
    convs = [m for m in enc.modules() if isinstance(m, PointConv)]
    assert len(convs) == 3
    feats = {}
    for on in (True, False):
        for m in convs:
            m.use_split_tp = on
        feat = torch.randn(2, 200, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        idx = torch.randint(0, 200, (2, 32, 16), generator=torch.Generator().manual_seed(2))
        feats[on] = convs[0](feat, points, points[:, :32], idx)
    assert torch.allclose(feats[True], feats[False], rtol=1e-10, atol=1e-12)


def test_training_takes_the_split_and_inference_e3nns_faster_forward(monkeypatch):
    model, _ = load_checkpoint("shipped/policy")
    conv = model.encoder.conv1
    used = []
    monkeypatch.setattr(conv.split_tp, "forward", lambda *a: used.append("split") or conv.tp(*a))
    points = torch.rand(1, 64, 3) * 0.3
    args = (torch.randn(1, 64, 16), points, points[:, :8], torch.randint(0, 64, (1, 8, 4)))
    conv(*args)
    with torch.no_grad():
        conv(*args)
    assert used == ["split"]


def test_shared_weights_are_refused():
    with pytest.raises(ValueError, match="per-sample weights"):
        SplitTensorProduct(o3.FullyConnectedTensorProduct("2x0e", "1x1o", "2x1o"))
