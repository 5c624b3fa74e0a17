"""Triton kernels against their PyTorch references (computed in float64).

Without a GPU the kernels run in Triton's interpreter (TRITON_INTERPRET=1, set only while
this module's tests run) at tiny sizes; on a CUDA machine the same tests run compiled at
real sizes (VLA_KERNEL_TEST_SIZE=small|real overrides). Every run draws fresh inputs, and
every output buffer starts poisoned (NaN / -1), so an element left unwritten fails.
"""

import importlib
import os

import pytest
import torch

from vla_stack import kernels

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
REAL = os.environ.get("VLA_KERNEL_TEST_SIZE", "real" if CUDA else "small") == "real"
# ||out - ref|| / ||ref|| bounds: fp32 arithmetic, bf16 inputs/outputs (rounding ~4e-3).
RTOL = {torch.float32: 2e-5, torch.bfloat16: 1.5e-2}


@pytest.fixture(scope="module")
def tk():
    """The Triton modules, imported in interpreter mode when there is no GPU."""
    old = os.environ.get("TRITON_INTERPRET")
    if not CUDA:
        os.environ["TRITON_INTERPRET"] = "1"
    names = ["triton_utils", "selective_scan_triton", "selective_scan_chunked", "state_update_triton",
             "point_ops_triton", "edge_contract_triton"]
    mods = {n: importlib.import_module(f"vla_stack.kernels.{n}") for n in names}
    mods["triton_utils"].POISON_OUTPUTS = True
    yield type("Triton", (), mods)
    mods["triton_utils"].POISON_OUTPUTS = False
    if old is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = old


def rel_err(got, want):
    got, want = got.double(), want.double()
    assert torch.isfinite(got).all(), "output has NaN/Inf (unwritten poisoned elements?)"
    return ((got - want).norm() / want.norm().clamp_min(1e-30)).item()


def scan_inputs(b, d, n, L, dtype, gating=True):
    r = lambda *s: torch.randn(*s, device=DEVICE)  # noqa: E731
    x = dict(u=r(b, d, L), delta=r(b, d, L) * 0.5 - 1.0, A=-torch.rand(d, n, device=DEVICE) * 4 - 0.1,
             B=r(b, n, L), C=r(b, n, L), D=r(d), z=r(b, d, L), delta_bias=r(d) * 0.2)
    x = {k: v.to(dtype) if k in ("u", "delta", "B", "C", "z") else v for k, v in x.items()}
    if not gating:
        x.update(z=None, D=None, delta_bias=None)
    return x


# (batch, dim, dstate, L): the target size, d_state 64 with a ragged length; on the CPU a
# ragged case (masked path) and one that divides evenly (the unmasked fast path).
SCAN_SIZES = [(16, 512, 16, 1024), (2, 256, 64, 700)] if REAL else [(2, 6, 16, 37), (1, 3, 5, 20), (2, 8, 16, 32)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("size", SCAN_SIZES)
def test_selective_scan_forward_and_backward_match_reference(tk, dtype, size, monkeypatch):
    scan = tk.selective_scan_triton
    if not REAL:   # narrow channel blocks so that the tiny sizes still span several programs
        # d_state 16: the forward walks 16-step tiles in 16-step segments, the backward two 8-step
        # chunks per iteration in 8-step segments; d_state 5 (padded to 8): automatic, one segment
        monkeypatch.setattr(scan, "FWD_CONFIG", {16: (4, 1, 3, 4, 16), 8: (2, 1, 3, 1, 0)})
        monkeypatch.setattr(scan, "BWD_CONFIG", {16: (4, 1, 3, 2, 8), 8: (2, 1, 3, 2, 0)})
    gating = size[2] != 5
    x = {k: None if v is None else v.requires_grad_() for k, v in scan_inputs(*size, dtype, gating).items()}
    x64 = {k: None if v is None else v.detach().double().requires_grad_() for k, v in x.items()}
    out, last = scan.selective_scan_triton(**x, return_last_state=True)
    ref, ref_last = kernels.selective_scan_ref(**x64, return_last_state=True)
    assert out.dtype == dtype and last.dtype == torch.float32
    assert rel_err(out, ref) < RTOL[dtype]
    assert rel_err(last, ref_last) < RTOL[torch.float32] * (1 if dtype == torch.float32 else 10)
    with torch.no_grad():   # the inference path (no states saved) gives the same output, launched again too
        again = [scan.selective_scan_triton(**x) for _ in range(2)]   # on a GPU the 2nd reuses the cached binary
    assert all(torch.equal(a, out) for a in again)
    g_out, g_last = torch.randn_like(ref), torch.randn_like(ref_last)
    names = [k for k, v in x.items() if v is not None]
    loss = (out * g_out.to(dtype)).sum() + (last * g_last.float()).sum()
    grads = torch.autograd.grad(loss, [x[k] for k in names], retain_graph=CUDA)
    if CUDA:   # the backward launched a second time (cached binary) agrees up to the order of its atomic adds
        # (fp32 sums in another order; cast to bf16, a few elements then round to the neighbouring value)
        for g, g2 in zip(grads, torch.autograd.grad(loss, [x[k] for k in names])):
            assert rel_err(g2, g) < (1e-5 if dtype == torch.float32 else 1e-3)
    want = torch.autograd.grad((ref * g_out.to(dtype).double()).sum() + (ref_last * g_last).sum(), [x64[k] for k in names])
    for name, g, w in zip(names, grads, want):
        assert g.dtype == x[name].dtype
        assert rel_err(g, w) < 4 * RTOL[dtype], name


# Variant launch configs (kernels/selective_scan_triton.py): the forward's flattened per-(channel,
# step) math (flat 1; flat 2 also reads rows 8 steps at a time), the backward's contiguity hint (pair) and half-chunk rebuild (half). On the CPU
# over segments and ragged tiles as above; on a GPU at the configs benchmarks/kernel_speed.py sweeps.
_V16 = ({16: (16, 1, 4, 2, 0, 2), 64: (8, 1, 4, 2, 0, 1)}, {16: (8, 1, 4, 1, 0, 2, 1), 64: (4, 1, 3, 1, 0, 2, 1)})
_V16b = ({16: (16, 1, 4, 2, 0), 64: (4, 1, 4, 2, 0, 1)}, {16: (8, 1, 4, 1, 0), 64: (4, 1, 3, 1, 0, 1, 1)})   # the defaults before session 8
_VCPU = ({16: (4, 1, 3, 4, 16, 1), 8: (2, 1, 3, 1, 0, 1)}, {16: (4, 1, 3, 2, 8, 2, 1), 8: (2, 1, 3, 2, 0, 1, 1)})
_VCPUb = ({16: (8, 1, 3, 2, 0, 2), 8: (8, 1, 3, 1, 0, 1)}, {16: (8, 1, 3, 1, 0, 0, 1), 8: (4, 1, 3, 1, 0, 2, 0)})
# the two-lanes-per-channel backward (8th field; d_state 16 only, selective_scan_bwd_lanes.py): one segment, and
# segments (8 steps on the CPU, 256 on a GPU) so that the adjoints handed back between segments are checked too
_VLANES = ({16: (16, 1, 4, 4, 0, 2), 64: (8, 1, 4, 2, 0)},
           {16: (16, 1, 1, 1, 0, 0, 0, 1), 64: (4, 1, 3, 1, 0), 8: (2, 1, 3, 2, 0)})
_VLANES_SEG = ({16: (16, 1, 4, 4, 0, 2), 64: (8, 1, 4, 2, 0), 8: (2, 1, 3, 1, 0)},
               {16: (16, 1, 1, 1, 256 if REAL else 8, 0, 0, 1), 64: (4, 1, 3, 1, 0), 8: (2, 1, 3, 2, 0)})
# lanes 2: the same kernel with its permuted state slots (a reduce-scatter with fewer selects)
_VLANES_PERM = (_VLANES_SEG[0], {**_VLANES_SEG[1], 16: (16, 1, 1, 1, 256 if REAL else 8, 0, 0, 2)})
SCAN_VARIANTS = [_V16, _V16b, _VLANES, _VLANES_SEG, _VLANES_PERM] if REAL else [_VCPU, _VCPUb, _VLANES, _VLANES_SEG,
                                                                                _VLANES_PERM]


@pytest.mark.parametrize("variant", range(len(SCAN_VARIANTS)))
@pytest.mark.parametrize("size", SCAN_SIZES)
def test_selective_scan_variant_configs_match_reference(tk, size, variant, monkeypatch):
    scan = tk.selective_scan_triton
    fwd_cfg, bwd_cfg = SCAN_VARIANTS[variant]
    monkeypatch.setattr(scan, "FWD_CONFIG", fwd_cfg)
    monkeypatch.setattr(scan, "BWD_CONFIG", bwd_cfg)
    x = {k: None if v is None else v.requires_grad_()
         for k, v in scan_inputs(*size, torch.float32, size[2] != 5).items()}
    x64 = {k: None if v is None else v.detach().double().requires_grad_() for k, v in x.items()}
    out, last = scan.selective_scan_triton(**x, return_last_state=True)
    ref, ref_last = kernels.selective_scan_ref(**x64, return_last_state=True)
    assert rel_err(out, ref) < RTOL[torch.float32]
    assert rel_err(last, ref_last) < RTOL[torch.float32]
    with torch.no_grad():
        assert torch.equal(scan.selective_scan_triton(**x), out)
    g_out, g_last = torch.randn_like(ref), torch.randn_like(ref_last)
    names = [k for k, v in x.items() if v is not None]
    grads = torch.autograd.grad((out * g_out.float()).sum() + (last * g_last.float()).sum(), [x[k] for k in names])
    want = torch.autograd.grad((ref * g_out).sum() + (ref_last * g_last).sum(), [x64[k] for k in names])
    for name, g, w in zip(names, grads, want):
        assert rel_err(g, w) < 4 * RTOL[torch.float32], name


STEP_SIZES = [(1, 512, 16), (8192, 512, 16), (64, 256, 64)] if REAL else [(3, 40, 16), (2, 9, 64)]


@pytest.mark.parametrize("x_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("size", STEP_SIZES)
def test_streaming_step_updates_state_in_place_like_reference(tk, x_dtype, size):
    b, d, n = size
    r = lambda *s: torch.randn(*s, device=DEVICE)  # noqa: E731
    state = r(b, d, n)
    args = [r(b, d).to(x_dtype), r(b, d).to(x_dtype), -torch.rand(d, n, device=DEVICE) * 4, r(b, n).to(x_dtype),
            r(b, n).to(x_dtype), r(d), r(b, d).to(x_dtype), r(d) * 0.2]
    state64 = state.double()
    want = kernels.selective_state_update_ref(state64, *[a.double() for a in args])
    out = tk.state_update_triton.selective_state_update_triton(state, *args)
    assert out.dtype == x_dtype
    assert rel_err(out, want) < RTOL[x_dtype]
    assert rel_err(state, state64) < RTOL[torch.float32]


@pytest.mark.skipif(not CUDA, reason="CUDA graphs need a GPU")
def test_streaming_step_replays_in_a_cuda_graph(tk):
    b, d, n = 4, 512, 16
    r = lambda *s: torch.randn(*s, device="cuda")  # noqa: E731
    state, x, dt, A, B, C = r(b, d, n), r(b, d), r(b, d), -torch.rand(d, n, device="cuda"), r(b, n), r(b, n)
    step = tk.state_update_triton.selective_state_update_triton
    out = torch.empty_like(x)
    step(state.clone(), x, dt, A, B, C, out=out)     # compile outside the capture
    start = state.clone()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step(state, x, dt, A, B, C, out=out)
    state.copy_(start)
    ref_state = start.double()
    for _ in range(3):
        x.copy_(r(b, d))
        graph.replay()
        want = kernels.selective_state_update_ref(ref_state, x.double(), dt.double(), A.double(), B.double(), C.double())
        assert rel_err(out, want) < RTOL[torch.float32]
    assert rel_err(state, ref_state) < RTOL[torch.float32]


def check_farthest_point_order(points, idx):
    """Each chosen point is (within rounding) the farthest from those chosen before it."""
    p = points.double()
    rows = torch.arange(p.shape[0], device=p.device)
    assert (idx[:, 0] == 0).all() and ((idx >= 0) & (idx < p.shape[1])).all()
    min_d = torch.full(p.shape[:2], float("inf"), dtype=torch.float64, device=p.device)
    for i in range(1, idx.shape[1]):
        min_d = torch.minimum(min_d, ((p - p[rows, idx[:, i - 1]][:, None]) ** 2).sum(-1))
        got = min_d[rows, idx[:, i]]
        assert (got >= min_d.max(1).values * (1 - 1e-5)).all(), f"step {i} did not take the farthest point"


FPS_SIZES = [(16, 8192, 1024), (2, 20000, 256)] if REAL else [(2, 300, 24), (1, 70, 70)]


@pytest.mark.parametrize("size", FPS_SIZES)
@pytest.mark.parametrize("chunked", [False, True])
def test_farthest_point_sample_picks_the_farthest_point_each_step(tk, size, chunked, monkeypatch):
    if chunked:
        monkeypatch.setattr(tk.point_ops_triton, "FPS_MAX_BLOCK", 64)
    b, n, m = size
    points = torch.rand(b, n, 3, device=DEVICE) * torch.tensor([1.0, 0.6, 0.3], device=DEVICE)
    idx = tk.point_ops_triton.farthest_point_sample_triton(points, m)
    assert idx.dtype == torch.int64 and idx.shape == (b, m)
    check_farthest_point_order(points, idx)
    agree = (idx == kernels.farthest_point_sample_ref(points, m)).float().mean().item()
    assert agree > 0.5   # identical except after a float near-tie, which is rare


KNN_SIZES = [(8, 1024, 8192, 16), (2, 100, 3000, 32)] if REAL else [(2, 37, 300, 5), (1, 5, 9, 9)]


@pytest.mark.parametrize("size", KNN_SIZES)
def test_knn_returns_nearest_points_nearest_first(tk, size):
    b, m, n, k = size
    query, points = torch.randn(b, m, 3, device=DEVICE), torch.randn(b, n, 3, device=DEVICE)
    idx = tk.point_ops_triton.knn_triton(query, points, k)
    assert idx.dtype == torch.int64 and idx.shape == (b, m, k)
    assert ((idx >= 0) & (idx < n)).all()
    assert (idx.sort(-1).values.diff(dim=-1) > 0).all(), "repeated neighbour"
    d = ((query.double()[:, :, None] - points.double()[:, None]) ** 2).sum(-1)
    got = d.gather(-1, idx)
    want = d.topk(k, dim=-1, largest=False).values
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert (got.diff(dim=-1) >= -1e-6).all(), "not nearest first"


# (edges, U, Wo, K): the encoder's widest path (conv2, l=0 out) and an l=2 one at the training size of
# one batch row; on the CPU a ragged edge count and a weight block split out of a wider row, as the
# tensor product hands them over.
EDGE_SIZES = [(65536, 32, 52, 1), (65536, 8, 8, 5), (4097, 4, 4, 3)] if REAL else [(13, 32, 52, 1), (37, 8, 8, 5), (5, 4, 4, 3)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("size", EDGE_SIZES)
def test_edge_contract_forward_and_backward_match_reference(tk, dtype, size):
    e, u, wo, k = size
    row = torch.randn(e, 3 + u * wo + 7, device=DEVICE, dtype=dtype)      # a wider weight row, split below
    weight = row[:, 3:3 + u * wo].reshape(e, u, wo).detach().requires_grad_()
    pair = torch.randn(e, u, k, device=DEVICE, dtype=dtype, requires_grad=True)
    y = tk.edge_contract_triton.edge_contract_triton(weight, pair)
    w64, p64 = weight.detach().double().requires_grad_(), pair.detach().double().requires_grad_()
    ref = kernels.edge_contract_ref(w64, p64)
    assert y.shape == (e, wo, k) and y.dtype == dtype
    assert rel_err(y, ref) < RTOL[dtype]
    dy = torch.randn(e, wo, k, device=DEVICE, dtype=dtype)
    dw, dp = torch.autograd.grad(y, (weight, pair), dy)
    dw_ref, dp_ref = torch.autograd.grad(ref, (w64, p64), dy.double())
    assert dw.shape == weight.shape and dp.shape == pair.shape
    assert rel_err(dw, dw_ref) < 4 * RTOL[dtype] and rel_err(dp, dp_ref) < 4 * RTOL[dtype]


def test_encoder_tensor_product_with_the_kernel_matches_e3nn(tk, monkeypatch):
    from e3nn import o3

    from vla_stack.policy.tensor_product import SplitTensorProduct

    monkeypatch.setenv("VLA_KERNELS", "triton" if not CUDA else "auto")
    tp = o3.FullyConnectedTensorProduct("32x0e+8x1o+4x2e", "1x0e+1x1o+1x2e", "52x0e+8x1o+8x1e+4x2e",
                                        shared_weights=False).to(DEVICE)
    e = 4096 if REAL else 9
    x1, x2 = torch.randn(e, tp.irreps_in1.dim, device=DEVICE), torch.randn(e, 9, device=DEVICE)
    w = torch.randn(e, tp.weight_numel, device=DEVICE, requires_grad=True)
    split = SplitTensorProduct(tp).to(DEVICE)
    split.contract = kernels.edge_contract   # the dispatcher: the kernel here (interpreter on the CPU)
    calls = []
    real = tk.edge_contract_triton.edge_contract_triton
    monkeypatch.setattr(tk.edge_contract_triton, "edge_contract_triton", lambda *a: calls.append(1) or real(*a))
    ref, out = tp(x1, x2, w), split(x1, x2, w)
    assert len(calls) == len(tp.instructions)
    assert rel_err(out, ref) < RTOL[torch.float32]
    dy = torch.randn_like(ref)
    (g_ref,), (g_out,) = torch.autograd.grad(ref, w, dy), torch.autograd.grad(out, w, dy)
    assert rel_err(g_out, g_ref) < 4 * RTOL[torch.float32]


def test_dispatcher_sends_forced_triton_calls_to_the_kernels(tk, monkeypatch):
    calls = []
    real = tk.point_ops_triton.knn_triton
    monkeypatch.setattr(tk.point_ops_triton, "knn_triton", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setenv("VLA_KERNELS", "triton" if not CUDA else "auto")
    query, points = torch.randn(1, 6, 3, device=DEVICE), torch.randn(1, 40, 3, device=DEVICE)
    got = kernels.knn(query, points, 4)
    assert calls == [1]
    monkeypatch.setenv("VLA_KERNELS", "reference")
    assert torch.equal(got, kernels.knn(query, points, 4)) and calls == [1]


@pytest.mark.parametrize("size", [(16, 512, 16, 1000)] if REAL else [(2, 6, 16, 37), (1, 3, 5, 20)])
def test_time_parallel_forward_matches_reference(tk, size):
    """The associative-scan forward (kernels/selective_scan_chunked.py), at chunks shorter than the
    sequence so that the state is carried across chunks (ragged last chunk included)."""
    x = scan_inputs(*size, torch.float32)
    out, last = tk.selective_scan_chunked.selective_scan_chunked(**x, block_d=4 if not REAL else 16,
                                                                  chunk=16 if not REAL else 128)
    ref, ref_last = kernels.selective_scan_ref(**{k: v.double() for k, v in x.items()}, return_last_state=True)
    assert rel_err(out, ref) < RTOL[torch.float32]
    assert rel_err(last, ref_last) < RTOL[torch.float32]


def test_cached_launch_passes_what_triton_would(tk, monkeypatch):
    """The scan's launcher calls a compiled binary directly after the first launch; it must pass
    the binary the runtime arguments, then the constexpr values in the kernel's parameter order,
    and key on what Triton specializes (a new alignment or a new flag goes through Triton again)."""
    scan = tk.selective_scan_triton
    launches = []

    class Binary:
        function, packed_metadata = "fn", "meta"

        def run(self, *a):
            launches.append(("binary", a))

    class Kernel:
        arg_names = ["x", "n", "FLAG", "BLOCK"]

        def __getitem__(self, grid):
            return lambda *args, **meta: launches.append(("triton", grid, args, meta)) or Binary()

    monkeypatch.setattr(scan, "INTERPRET", False)
    monkeypatch.setattr(scan, "_current_stream", lambda device: 7)
    launch = scan._Launcher(Kernel())
    x = torch.zeros(8)
    launch((2, 1, 1), x, 5, BLOCK=4, FLAG=True, num_warps=1)
    launch((3, 1, 1), torch.ones(8), 5, BLOCK=4, FLAG=True, num_warps=1)   # another grid and tensor, same key
    assert launches[0] == ("triton", (2, 1, 1), (x, 5), dict(BLOCK=4, FLAG=True, num_warps=1))
    assert launches[1][0] == "binary" and launches[1][1][:9] == (3, 1, 1, 7, "fn", "meta", None, None, None)
    assert launches[1][1][10:] == (5, True, 4)                          # runtime args, then FLAG, BLOCK
    launch((3, 1, 1), x, 5, BLOCK=4, FLAG=False, num_warps=1)        # another flag: Triton's path
    launch((3, 1, 1), x[1:], 5, BLOCK=4, FLAG=True, num_warps=1)     # 4-byte offset: not 16-byte aligned
    launch((3, 1, 1), x, 16, BLOCK=4, FLAG=True, num_warps=1)        # another int (Triton: divisible by 16)
    assert [entry[0] for entry in launches[2:]] == ["triton", "triton", "triton"]
