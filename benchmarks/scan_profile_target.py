"""One launch of each scan kernel at the issue's target size, after warm-up: what Nsight Compute profiles.

    ncu --section SpeedOfLight --section WarpStateStats --section ComputeWorkloadAnalysis \
        --section InstructionStats -k regex:_scan -s 3 python benchmarks/scan_profile_target.py

(-s 3 skips the warm-up launches: one inference forward, one training forward, one backward.)
"""

from __future__ import annotations

import torch

from kernel_speed import scan_inputs   # benchmarks/ is first on the path when run as a script
from vla_stack.kernels import selective_scan_triton as S


def main() -> None:
    assert torch.cuda.is_available(), "profiles GPU kernels: run it on a CUDA machine"
    torch.manual_seed(0)
    x = {**scan_inputs(16, 1024, 512, 16, torch.float32), "softplus_on": True}
    dout = torch.randn_like(x["u"])
    for _ in range(2):   # warm-up (compile), then the profiled launches
        S._fwd(**x, save_states=False)
        out, _, states = S._fwd(**x, save_states=True)
        S._bwd(dout, None, x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"], x["delta_bias"], True, states)
    torch.cuda.synchronize()
    print("configs", S.FWD_CONFIG[16], S.BWD_CONFIG[16])


if __name__ == "__main__":
    main()
