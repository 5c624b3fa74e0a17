"""The README's results table is generated from the committed result files, never typed."""

from pathlib import Path

from benchmark_scripts import load_benchmark

ROOT = Path(__file__).resolve().parent.parent


def test_readme_results_table_matches_the_committed_result_files():
    mod = load_benchmark("readme_results")
    readme = (ROOT / "README.md").read_text()
    assert mod.render(readme) == readme, "README results are stale: run benchmarks/readme_results.py"
    # every row quoted names a result file that exists and a metric that is in it
    for name, metric, *_ in mod.ROWS:
        if f"`benchmarks/results/{name}.json`" in readme:
            assert metric in mod.load(name)["metrics"]
