"""transformers imports the PyPI package `kernels` (a dependency since 5.2x). A benchmark runs as
`python benchmarks/<name>.py`, which puts benchmarks/ first on sys.path, and `python -m ...` from the
checkout puts our own `kernels/` folder there: either shadowed the package and loading MiniLM failed
(`vla_stack.text` now imports the installed one from outside the checkout first)."""

import os
import subprocess
import sys

import pytest
from benchmark_scripts import BENCHMARKS


@pytest.mark.parametrize("first_on_path", [BENCHMARKS, BENCHMARKS.parent], ids=["benchmarks", "checkout"])
def test_text_embeds_with_a_folder_of_the_checkout_first_on_the_path(first_on_path, tmp_path):
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from vla_stack import text; "
            "print(text.default_encoder()('open the drawer').shape)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-c", code, str(first_on_path)], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("(384,)")
