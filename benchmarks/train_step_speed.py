"""Where a policy training step's time goes: forward, backward and optimizer at two batch sizes, and
on a GPU the share of the step's wall time its kernels keep the device busy (torch.profiler).

Each row is timed three times, side by side: with the encoder's tensor product as it runs (`split_kernel`:
`policy/tensor_product.py`, the weights split per path, each edge's contraction by `kernels.edge_contract`,
Triton on CUDA; the unsuffixed figures), with the same split and a batched matmul of tiny matrices per edge
(`split_bmm`, the kernel's reference and the default until session 15), and with e3nn's own module
(`e3nn`), whose backward fills a zero tensor of all the per-edge weights for every path. Before session 15
the unsuffixed figures were `split_bmm`'s (`train_step_speed_cuda_s15.json` was run then: its
`_split_kernel_tp` figures are the kernel's). The `forward` rows run without gradients: on the CPU the
encoder then takes e3nn's forward in every variant (they differ only by noise); on CUDA the split variants
keep their contraction (`PointConv.split_for_cuda_inference`, since session 15; the s15 file predates it).

Why: GPU fine-tunes get ~6 minutes a session and run 3.5-4 steps/s at batch 128 (history 16, 1,024
points; `benchmarks/results/compositional_s13/full_sh_train.log`). If the step is launch-bound (time
flat in the batch, device mostly idle) CUDA graphs or torch.compile are the fix; if it scales with the
batch, the encoder's arithmetic is. Synthetic inputs of the training shapes: no dataset or simulator.

    python benchmarks/train_step_speed.py --device cuda          # the GPU box (torch only)
    python benchmarks/train_step_speed.py --batch-sizes 2 --history 2 --points 64 --iters 1   # smoke run

Writes benchmarks/results/train_step_speed_<device>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from policy_latency import time_fn   # benchmarks/ is first on the path when run as a script
from vla_stack import bench, kernels, schema
from vla_stack.policy.checkpoint import load_checkpoint
from vla_stack.policy.encoder_equivariant import PointConv
from vla_stack.policy.model import chunk_loss
from vla_stack.policy.object_channels import codes_for

ROOT = Path(__file__).resolve().parent.parent


def synthetic_batch(model, batch: int, history: int, points: int, device: torch.device, seed: int = 0) -> dict:
    """The tensors train.make_batch hands the model, with the training shapes."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    b, t = batch, history
    pts = (torch.rand(b, t, points, 3, generator=g) - 0.5) * 0.8
    state = torch.zeros(b, t, schema.STATE_DIM)
    state[..., 0:3] = torch.tensor([0.4, 0.0, 0.3])
    out = {"points": pts, "colors": torch.rand(b, t, points, 3, generator=g), "state": state,
           "text": torch.nn.functional.normalize(torch.randn(b, t, cfg.text_dim, generator=g), dim=-1),
           "action": torch.randn(b, t, cfg.horizon, schema.ACTION_DIM, generator=g) * 0.01,
           "pad": torch.zeros(b, t, cfg.horizon, dtype=torch.bool)}
    if cfg.object_channels:
        codes = torch.from_numpy(codes_for(cfg, ["put the red cube in the bowl"]))
        out["objects"] = codes.expand(b, t, *codes.shape[1:]).contiguous()
    return {k: v.to(device) for k, v in out.items()}


def step_fns(model, opt, batch, bf16: bool):
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and batch["points"].is_cuda)
    args = (batch["points"], batch["colors"], batch["state"], batch["text"], None, None, batch.get("objects"))

    def loss():
        with autocast:
            pred = model(*args)
        return chunk_loss(pred.float(), model.normalizer.normalize_action(batch["action"]), batch["pad"])

    def forward():
        with torch.no_grad():
            loss()

    def forward_backward():
        opt.zero_grad(set_to_none=True)
        loss().backward()

    def full_step():
        forward_backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return {"forward": forward, "forward_backward": forward_backward, "step": full_step}


TP_VARIANTS = ("split_kernel", "split_bmm", "e3nn")   # the first is the encoder's default


def use_tp(model, variant: str) -> None:
    """split_bmm: weights split per path, a batched matmul per edge; split_kernel: the same split, the
    edge-contraction kernel (Triton on CUDA); e3nn: e3nn's own module."""
    for m in model.modules():
        if isinstance(m, PointConv):
            m.use_split_tp = variant != "e3nn"
            m.split_tp.contract = kernels.edge_contract if variant == "split_kernel" else kernels.edge_contract_ref


def kernel_share(fn) -> tuple[float, int]:
    """(device time of the kernels / wall time, kernels launched) over one CUDA step."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        wall_us = (time.perf_counter() - t0) * 1e6
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=20))   # where the device time goes
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy_us = sum(e.device_time for e in kernels)
    return busy_us / wall_us, len(kernels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(ROOT / "shipped" / "policy"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--history", type=int, default=16)
    ap.add_argument("--points", type=int, default=1024)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--name", default="")
    args = ap.parse_args()
    device = torch.device(args.device)
    model, _ = load_checkpoint(args.checkpoint, add_shape_harmonics=True)   # the fine-tunes' architecture
    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    metrics, rows = {}, []
    warm = synthetic_batch(model, min(args.batch_sizes), args.history, args.points, device)
    for tp in TP_VARIANTS:   # first calls (e3nn's code generation, allocator growth) before any timing
        use_tp(model, tp)
        step_fns(model, opt, warm, bf16=True)["step"]()
    for b in args.batch_sizes:
        batch = synthetic_batch(model, b, args.history, args.points, device)
        for tp in TP_VARIANTS:   # side by side: the default tensor product and its two references
            use_tp(model, tp)
            fns = step_fns(model, opt, batch, bf16=True)
            tag = "" if tp == TP_VARIANTS[0] else f"_{tp}_tp"
            for part, fn in fns.items():
                ms, _ = time_fn(fn, device, args.iters, warmup=2)   # median per call
                metrics[f"train_{part}_b{b}{tag}_ms"] = ms
                rows.append(dict(tensor_product=tp, part=part, batch=b, ms=ms, steps_per_s=1e3 / ms))
            metrics[f"train_steps_per_s_b{b}{tag}"] = 1e3 / metrics[f"train_step_b{b}{tag}_ms"]
            if device.type == "cuda":
                try:
                    share, n = kernel_share(fns["step"])
                except Exception as e:  # noqa: BLE001 - profiler API drift must not lose the timings above
                    print(f"kernel share at batch {b} not measured: {type(e).__name__}: {e}")
                else:
                    metrics[f"train_step_b{b}{tag}_gpu_kernel_time_fraction"] = share
                    metrics[f"train_step_b{b}{tag}_kernels_launched"] = float(n)
        for ref in TP_VARIANTS[1:]:
            metrics[f"train_step_b{b}_speedup_over_{ref}_tp"] = metrics[f"train_step_b{b}_{ref}_tp_ms"] / metrics[f"train_step_b{b}_ms"]
    use_tp(model, TP_VARIANTS[0])
    lo, hi = min(args.batch_sizes), max(args.batch_sizes)
    if hi > lo:   # 1.0: time flat in the batch (launch-bound); hi/lo: proportional to it
        metrics[f"train_step_time_ratio_b{hi}_over_b{lo}"] = metrics[f"train_step_b{hi}_ms"] / metrics[f"train_step_b{lo}_ms"]
    details = dict(checkpoint=args.checkpoint, history=args.history, points=args.points, iters=args.iters,
                   table=rows, parameters=sum(p.numel() for p in model.parameters()))
    path = bench.write_results(args.name or f"train_step_speed_{device.type}", metrics, details=details)
    bench.print_table(rows, title=f"policy training step ({bench.describe_device()})")
    for k, v in metrics.items():
        print(f"{k}: {v:.4g}")
    print("wrote", path)


if __name__ == "__main__":
    main()
