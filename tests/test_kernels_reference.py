"""The PyTorch references (the CPU path of `vla_stack.kernels`) against independent
formulations, and the dispatcher's input checks. Fresh random inputs every run."""

import numpy as np
import pytest
import torch

from vla_stack import kernels, schema


def scan_inputs(b=2, d=5, n=4, L=7, dtype=torch.float64, seed=None):
    g = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())) if seed is None else seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    return dict(u=r(b, d, L), delta=r(b, d, L) * 0.5, A=-torch.rand(d, n, generator=g, dtype=dtype) * 2,
                B=r(b, n, L), C=r(b, n, L), D=r(d), z=r(b, d, L), delta_bias=r(d) * 0.1)


def test_scan_equals_repeated_streaming_steps_in_float64():
    x = scan_inputs()
    out, last = kernels.selective_scan(**x, return_last_state=True)
    b, d, L = x["u"].shape
    state = torch.zeros(b, d, x["A"].shape[1], dtype=torch.float64)
    steps = [kernels.selective_state_update(state, x["u"][..., t], x["delta"][..., t], x["A"], x["B"][..., t],
                                            x["C"][..., t], x["D"], x["z"][..., t], x["delta_bias"])
             for t in range(L)]
    torch.testing.assert_close(out, torch.stack(steps, -1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last, state, rtol=1e-12, atol=1e-12)


def test_scan_matches_closed_form_without_gating():
    """h_t = sum_s prod_{s<r<=t} exp(dt_r A) dt_s B_s u_s, written as explicit sums (no recurrence)."""
    x = scan_inputs(b=1, d=3, n=2, L=5)
    out = kernels.selective_scan(x["u"], x["delta"], x["A"], x["B"], x["C"], delta_softplus=False)
    u, dt, A, B, C = x["u"][0], x["delta"][0], x["A"], x["B"][0], x["C"][0]
    want = torch.zeros_like(u)
    for t in range(u.shape[1]):
        for s in range(t + 1):
            decay = torch.exp(dt[:, s + 1:t + 1].sum(1)[:, None] * A)          # (d, n)
            want[:, t] += (decay * dt[:, s, None] * B[None, :, s] * u[:, s, None] * C[None, :, t]).sum(1)
    torch.testing.assert_close(out[0], want, rtol=1e-10, atol=1e-10)


def test_scan_keeps_low_precision_dtype_and_float32_state():
    x = {k: v.to(torch.bfloat16) if k in ("u", "delta", "B", "C", "z") else v.float()
         for k, v in scan_inputs(dtype=torch.float32).items()}
    out, last = kernels.selective_scan(**x, return_last_state=True)
    assert out.dtype == torch.bfloat16 and last.dtype == torch.float32 and out.shape == x["u"].shape


def test_state_update_changes_state_in_place():
    b, d, n = 3, 4, 2
    state = torch.randn(b, d, n)
    before, ptr = state.clone(), state.data_ptr()
    out = kernels.selective_state_update(state, torch.randn(b, d), torch.randn(b, d), -torch.rand(d, n),
                                         torch.randn(b, n), torch.randn(b, n))
    assert state.data_ptr() == ptr and not torch.equal(state, before) and out.shape == (b, d)


def fps_naive(p: np.ndarray, m: int) -> list[int]:
    chosen, dist = [0], np.full(len(p), np.inf)
    for _ in range(m - 1):
        dist = np.minimum(dist, ((p - p[chosen[-1]]) ** 2).sum(1))
        chosen.append(int(np.argmax(dist)))
    return chosen


def test_farthest_point_sample_matches_a_per_cloud_loop():
    pts = torch.randn(3, 200, 3)
    idx = kernels.farthest_point_sample(pts, 17)
    assert idx.dtype == torch.int64 and idx.shape == (3, 17) and (idx[:, 0] == 0).all()
    for b in range(3):
        assert idx[b].tolist() == fps_naive(pts[b].double().numpy(), 17)
        assert len(set(idx[b].tolist())) == 17


def test_knn_matches_sorting_all_distances():
    q, p = torch.randn(2, 9, 3), torch.randn(2, 50, 3)
    idx = kernels.knn(q, p, 6)
    assert idx.dtype == torch.int64 and idx.shape == (2, 9, 6)
    d = ((q[:, :, None] - p[:, None]) ** 2).sum(-1)
    want = torch.from_numpy(np.argsort(d.numpy(), axis=-1, kind="stable")[..., :6])
    assert torch.equal(idx, want)


@pytest.mark.parametrize("call, name", [
    (lambda: kernels.selective_scan(torch.randn(2, 3, 4), torch.randn(2, 3, 5), -torch.rand(3, 2),
                                    torch.randn(2, 2, 4), torch.randn(2, 2, 4)), "delta"),
    (lambda: kernels.selective_state_update(torch.randn(2, 3, 4), torch.randn(2, 3), torch.randn(2, 3),
                                            -torch.rand(3, 4), torch.randn(2, 5), torch.randn(2, 4)), "B"),
    (lambda: kernels.farthest_point_sample(torch.randn(2, 10, 2), 4), "points"),
    (lambda: kernels.farthest_point_sample(torch.randn(2, 10, 3), 11), "n_samples"),
    (lambda: kernels.knn(torch.randn(3, 4, 3), torch.randn(2, 10, 3), 2), "query"),
    (lambda: kernels.knn(torch.full((1, 4, 3), float("nan")), torch.randn(1, 10, 3), 2), "NaN"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(schema.SchemaError, match=name):
        call()


def test_unknown_backend_name_is_refused(monkeypatch):
    monkeypatch.setenv("VLA_KERNELS", "cuda-magic")
    with pytest.raises(schema.SchemaError, match="VLA_KERNELS"):
        kernels.backend_for(torch.device("cpu"))
