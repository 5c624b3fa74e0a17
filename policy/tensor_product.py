"""Per-edge-weighted tensor product, the fast path beside e3nn's `FullyConnectedTensorProduct` (the reference).

Why: e3nn's generated code takes each path's weights as a slice `w[:, a:b]` of the (edges, weight_numel)
tensor, and PyTorch's backward of a slice writes a zero tensor of the *whole* input and adds the slices'
gradients one by one: 13 full-size fills and adds of (edges, 2992) per step in the encoder's second
convolution. `torch.split` has one backward (a `cat`), so the same products cost one pass over the weights.
Same instructions, path weights and Wigner 3j blocks as the module it is given; the output agrees with
`tp(x1, x2, weight)` to float rounding (tests/test_tensor_product.py). Only for training: e3nn's own
forward is faster, so the encoder takes it when no gradient is needed.
"""

from __future__ import annotations

import torch
from e3nn import o3

from vla_stack import kernels


class SplitTensorProduct(torch.nn.Module):
    """Computes `tp(x1, x2, weight)` for an e3nn FullyConnectedTensorProduct with `shared_weights=False`."""

    def __init__(self, tp: o3.TensorProduct):
        super().__init__()
        if tp.shared_weights or any(ins.connection_mode != "uvw" or not ins.has_weight for ins in tp.instructions):
            raise ValueError("SplitTensorProduct handles weighted 'uvw' paths with per-sample weights only")
        self.irreps_in1, self.irreps_in2, self.irreps_out = tp.irreps_in1, tp.irreps_in2, tp.irreps_out
        self.instructions = [(ins.i_in1, ins.i_in2, ins.i_out, ins.path_shape, ins.path_weight) for ins in tp.instructions]
        self.weight_sizes = [u * v * w for *_, (u, v, w), _ in self.instructions]
        # Triton on CUDA (a batch-128 training step 2.5x faster than with the batched matmul on an H100:
        # benchmarks/results/train_step_speed_cuda_s15.json), the batched matmul elsewhere.
        self.contract = kernels.edge_contract
        for n, (i1, i2, io, _, pw) in enumerate(self.instructions):
            l1, l2, lo = self.irreps_in1[i1].ir.l, self.irreps_in2[i2].ir.l, self.irreps_out[io].ir.l
            self.register_buffer(f"w3j_{n}", o3.wigner_3j(l1, l2, lo) * pw, persistent=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        e = x1.shape[0]
        x1s = [x.reshape(e, mi.mul, mi.ir.dim) for x, mi in
               zip(x1.split([mi.dim for mi in self.irreps_in1], dim=-1), self.irreps_in1)]
        x2s = [x.reshape(e, mi.mul, mi.ir.dim) for x, mi in
               zip(x2.split([mi.dim for mi in self.irreps_in2], dim=-1), self.irreps_in2)]
        outs: list[torch.Tensor | None] = [None] * len(self.irreps_out)
        for n, (w, (i1, i2, io, shape, _)) in enumerate(zip(weight.split(self.weight_sizes, dim=-1), self.instructions)):
            u, v, wo = shape
            w3j = getattr(self, f"w3j_{n}").to(x1.dtype)
            if w3j.shape[0] == 1 and v == 1:
                # Scalar x1 (most of the weights): contract the weights with x1 alone, then one outer
                # product with x2's (1, k) part, instead of contracting with every k.
                c = torch.einsum("zvj,jk->zvk", x2s[i2], w3j[0])                          # (e, 1, k)
                y = self.contract(w.reshape(e, u, wo), x1s[i1]) * c                      # (e, w, k)
            else:
                # (e, u, i) x (e, v, j) x (i, j, k) -> (e, u*v, k): the small outer product first, then
                # the path's (u*v, w) weights of each sample.
                pair = torch.einsum("zui,zvj,ijk->zuvk", x1s[i1], x2s[i2], w3j)
                y = self.contract(w.reshape(e, u * v, wo), pair.reshape(e, u * v, -1))   # (e, w, k)
            outs[io] = y if outs[io] is None else outs[io] + y
        return torch.cat([(o if o is not None else x1.new_zeros(e, mi.mul, mi.ir.dim)).reshape(e, mi.dim)
                          for o, mi in zip(outs, self.irreps_out)], dim=-1)
