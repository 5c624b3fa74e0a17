"""Compile the scan kernels for sm_90 on any machine (no GPU needed) and count their SASS.

    python benchmarks/scan_sass_counts.py [--configs 16,2,1 16,2,2 ...] [--backward]

Why: device time is scarce, and a launch-config variant can be judged before it is timed: does it
compile, how many registers, how many instructions, and how wide are its global loads (4-, 8- or
16-byte cp.async). Integer arguments are specialised as the JIT does at the issue's target size
(16 x 1024 x 512, d_state 16: every stride a multiple of 16, A's strides not specialised). The
Triton installed here may lay out the same code differently from the GPU machine's (kernels/README.md).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import tempfile

os.environ.pop("TRITON_INTERPRET", None)

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from vla_stack import bench  # noqa: E402
from vla_stack.kernels import selective_scan_bwd_lanes as SL  # noqa: E402
from vla_stack.kernels import selective_scan_triton as S  # noqa: E402

POINTERS = {"u", "delta", "A", "B", "C", "D", "z", "delta_bias", "out", "last_state", "chunk_states", "seg_state",
            "seg_dsum", "BT", "CT", "dout", "dlast", "seg_adj", "du", "ddelta", "dA", "dB", "dC", "dD", "dz", "dbias"}
MEMORY_OPS = r"(?:LDGSTS|LDG|STG|LDS|STS|REDG)(?:\.[A-Z0-9_]+)*"


def compile_forward(block_d: int, sub: int, flat: int, save_states: bool, stages: int = 4) -> dict:
    const = dict(NSEG=1, HAS_D=True, HAS_Z=True, HAS_BIAS=True, SOFTPLUS=True, SAVE_STATES=save_states, EVEN=True,
                 BLOCK_D=block_d, BLOCK_N=16, CHUNK=S.CHUNK, STAGES=stages, SUB=sub, FLAT=flat)
    return compile_kernel(S._scan_fwd_kernel, const, stages)


def compile_backward(lanes: int) -> dict:
    """The tile backward (BWD_CONFIG's other fields at d_state 16) or the two-lanes-per-channel one
    (lanes 2: with its permuted state slots)."""
    const = dict(NSEG=1, HAS_D=True, HAS_Z=True, HAS_BIAS=True, SOFTPLUS=True, HAS_DLAST=False, EVEN=True)
    if lanes:
        return compile_kernel(SL._scan_bwd_lanes_kernel, {**const, "PERM": lanes == 2}, 1)
    block_d, _, stages, cpi, _, pair, half = S._full(S.BWD_CONFIG[16], 7)[:7]
    const.update(BLOCK_D=block_d, BLOCK_N=16, PAIR=pair or max(1, block_d // 8), STAGES=stages, CPI=cpi, HALF=bool(half))
    return compile_kernel(S._scan_bwd_kernel, const, stages)


def compile_kernel(fn, const: dict, stages: int) -> dict:
    sig = {a: "*fp32" if a in POINTERS else "constexpr" if a in const else "i32" for a in fn.arg_names}
    attrs = {(i,): [["tt.divisibility", 16]] for i, a in enumerate(fn.arg_names)
             if sig[a] != "constexpr" and a not in fn.do_not_specialize}
    kernel = triton.compile(ASTSource(fn, sig, constexprs=const, attrs=attrs), target=GPUTarget("cuda", 90, 32),
                            options=dict(num_warps=1, num_stages=stages))
    tools = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(kernel.asm["cubin"])
        f.flush()
        usage = subprocess.run([f"{tools}/cuobjdump", "-res-usage", f.name], capture_output=True, text=True).stdout
        sass = subprocess.run([f"{tools}/cuobjdump", "-sass", f.name], capture_output=True, text=True).stdout
    instructions = [line for line in sass.splitlines() if line.strip().startswith("/*") and ";" in line]
    ops = collections.Counter(re.findall(MEMORY_OPS, sass))
    return {"registers": int(re.search(r"REG:(\d+)", usage).group(1)), "instructions": len(instructions),
            "spill_stack_bytes": int(re.search(r"STACK:(\d+)", usage).group(1)),
            "shuffles": sum("SHFL" in line for line in instructions),
            "shared_memory_ops": sum(k.startswith(("LDS", "STS")) for k in re.findall(MEMORY_OPS, sass)),
            "mufu": sum("MUFU" in line for line in instructions),
            "global_async_loads": {k: v for k, v in ops.items() if k.startswith("LDGSTS")},
            "global_loads": {k: v for k, v in ops.items() if k.startswith("LDG") and not k.startswith("LDGSTS")},
            "global_stores": {k: v for k, v in ops.items() if k.startswith("STG")},
            "global_atomics": {k: v for k, v in ops.items() if k.startswith("REDG")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["16,2,1", "16,2,2", "16,4,2", "8,2,1", "8,2,2"],
                    help="BLOCK_D,SUB,flat triples (flat 2 reads rows 8 steps at a time)")
    ap.add_argument("--backward", action="store_true", help="also the backward kernels (tile, lanes, lanes_perm)")
    ap.add_argument("--name", default="scan_sass_counts")
    args = ap.parse_args()
    metrics, details = {}, {"triton": triton.__version__, "target": "sm_90", "configs": {}}
    if args.backward:
        print("| backward (d_state 16) | registers | spill bytes | instructions | shuffles | shared-memory ops | MUFU |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name, lanes in (("tile", 0), ("lanes", 1), ("lanes_perm", 2)):
            r = compile_backward(lanes)
            key = f"scan_bwd_{name}_d16"
            details["configs"][key] = r
            for field in ("registers", "spill_stack_bytes", "instructions", "shuffles", "shared_memory_ops", "mufu"):
                metrics[f"{key}_{field}"] = r[field]
            print(f"| {name} | {r['registers']} | {r['spill_stack_bytes']} | {r['instructions']} | {r['shuffles']} | "
                  f"{r['shared_memory_ops']} | {r['mufu']} |")
    print("| BLOCK_D, SUB, flat | forward | registers | instructions | shuffles | MUFU | global async loads | stores |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for text in args.configs:
        block_d, sub, flat = (int(v) for v in text.split(","))
        for save in (False, True):
            r = compile_forward(block_d, sub, flat, save)
            kind = "training" if save else "inference"
            key = f"scan_fwd_{kind}_d{block_d}_sub{sub}_flat{flat}"
            details["configs"][key] = r
            metrics[f"{key}_registers"] = r["registers"]
            metrics[f"{key}_sass_instructions"] = r["instructions"]
            print(f"| {text} | {kind} | {r['registers']} | {r['instructions']} | {r['shuffles']} | {r['mufu']} | "
                  f"{r['global_async_loads']} | {r['global_stores']} |")
    print(bench.write_results(args.name, metrics, details=details))


if __name__ == "__main__":
    main()
