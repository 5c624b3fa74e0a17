"""benchmarks/train_step_speed.py at a toy size on the CPU: the training step it times is the
trainer's (forward, L1 chunk loss, backward, clip, AdamW) on the fine-tunes' architecture."""

import json

import torch
from benchmark_scripts import load_benchmark

from vla_stack.policy.checkpoint import load_checkpoint

speed = load_benchmark("train_step_speed")


def test_synthetic_batch_has_the_training_shapes_and_a_step_moves_the_weights():
    model, _ = load_checkpoint(speed.ROOT / "shipped" / "policy", add_shape_harmonics=True)
    batch = speed.synthetic_batch(model, batch=2, history=3, points=48, device=torch.device("cpu"))
    assert batch["points"].shape == (2, 3, 48, 3) and batch["action"].shape == (2, 3, model.cfg.horizon, 7)
    assert batch["objects"].shape[:2] == (2, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    speed.step_fns(model, opt, batch, bf16=True)["step"]()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_benchmark_writes_its_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("VLA_RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["train_step_speed.py", "--device", "cpu", "--batch-sizes", "1", "2",
                                     "--history", "2", "--points", "32", "--iters", "1"])
    speed.main()
    result = json.loads((tmp_path / "train_step_speed_cpu.json").read_text())
    m = result["metrics"]
    assert m["train_step_b1_ms"] > 0 and m["train_steps_per_s_b2"] == 1e3 / m["train_step_b2_ms"]
    assert m["train_step_time_ratio_b2_over_b1"] > 0
    for ref in ("split_bmm", "e3nn"):   # the tensor product's references, timed in the same run
        assert m[f"train_step_b2_speedup_over_{ref}_tp"] == m[f"train_step_b2_{ref}_tp_ms"] / m["train_step_b2_ms"]
