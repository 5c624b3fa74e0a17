"""A benchmark runs as `python benchmarks/<name>.py`, which puts benchmarks/ first on sys.path: no script
there may shadow a module that a library imports. `benchmarks/kernels.py` did: transformers probes an
optional PyPI package named `kernels`, found the script, and every benchmark that embeds text failed."""

import os
import subprocess
import sys

from benchmark_scripts import BENCHMARKS


def test_a_benchmark_script_can_embed_text_with_benchmarks_first_on_the_path(tmp_path):
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from vla_stack import text; "
            "print(text.default_encoder()('open the drawer').shape)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-c", code, str(BENCHMARKS)], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("(384,)")
