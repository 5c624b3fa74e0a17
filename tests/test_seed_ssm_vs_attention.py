"""Seed article experiment 1 (benchmarks/seed_ssm_vs_attention.py) in its --quick mode: the
project's Mamba backbone keeps a fixed-size streaming state while the Transformer's KV cache
grows linearly, the prefilled cache used for long lengths equals the streamed one, and both
backbones learn the delayed-recall task."""

import json

import pytest

from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("seed_ssm")
    path = load_benchmark("seed_ssm_vs_attention").main(["--quick", "--out-dir", str(out)])
    assert path.with_suffix(".png").stat().st_size > 10_000  # the plot was drawn
    return json.loads(path.read_text())


def test_mamba_state_is_constant_while_the_kv_cache_grows_linearly(result):
    stream = result["details"]["stream"]
    mamba = [r for r in stream if r["model"] == "mamba"]
    transformer = [r for r in stream if r["model"] == "transformer"]
    assert [r["steps"] for r in mamba] == [r["steps"] for r in transformer] == [1, 10, 100, 300, 1000]
    # default PolicyConfig: 2 layers x (conv 256x4 + SSM 256x16) float32, whatever the length
    assert {r["state_bytes_used"] for r in mamba} == {2 * (256 * 4 + 256 * 16) * 4}
    # 2 layers x (K and V) x d_model 128 float32 per step: exactly linear, streamed or prefilled
    for r in transformer:
        assert r["state_bytes_used"] == r["steps"] * 2 * 2 * 128 * 4
        assert r["state_bytes_used"] <= r["state_bytes_allocated"] <= 2 * r["state_bytes_used"] + 64 * 1024
    assert {r["how"].split()[0] for r in transformer} == {"streamed", "prefilled"}  # both paths exercised
    assert result["metrics"]["stream_state_ratio_transformer_over_mamba_at_max"] == pytest.approx(1000 * 2048 / 40960)


def test_prefilled_cache_equals_the_streamed_one(result):
    m = result["metrics"]
    assert m["check_prefill_cache_max_abs_err"] < 1e-9
    assert m["check_prefill_next_step_max_abs_err"] < 1e-9
    assert m["check_parallel_vs_stream_max_abs_err"] < 1e-9


def test_parallel_form_is_timed_at_every_quick_length(result):
    rows = result["details"]["parallel"]
    assert len(rows) == 2 * 2 * 2  # 2 models x (inference, training) x 2 lengths
    for r in rows:
        assert r["status"] == "measured", r
        assert r["cpu_s"] > 0 and r["wall_s"] > 0
    for kind in ("mamba", "transformer"):
        assert result["metrics"][f"parallel_train_{kind}_longest_measured_L"] == 1000


def test_both_backbones_learn_delayed_recall(result):
    recall = result["details"]["recall"]
    trained = [str(d) for d in (1, 2, 4, 8)]  # distances seen in training (json keys are strings)
    for kind in ("mamba", "transformer"):
        r = recall[kind]
        assert r["loss_last"] < 0.8 * r["loss_first"], kind
        mean_acc = sum(r["accuracy"][d] for d in trained) / len(trained)
        assert mean_acc > 2 / 8, (kind, r["accuracy"])  # chance is 1/8


def test_extrapolation_predicts_a_power_law():
    mod = load_benchmark("seed_ssm_vs_attention")
    assert mod.extrapolate([(1000, 1.0), (2000, 4.0)], 4000) == pytest.approx(16.0)  # quadratic
    assert mod.extrapolate([(1000, 1.0), (2000, 2.0)], 8000) == pytest.approx(8.0)  # linear
