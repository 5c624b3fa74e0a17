"""The DDP scaling benchmark, run for real on the CPU: torchrun with gloo at world sizes 1 and 2,
tiny model, a synthetic dataset it writes itself; the JSON must hold consistent figures and
the replica check of train.py, and a final checkpoint from rank 0. (On GPUs the same script uses
NCCL; see docs/policy.md.)"""

import json

import pytest

from benchmark_scripts import load_benchmark

ddp = load_benchmark("ddp_scaling")

TINY_MODEL = ("--model.n-centers 8 --model.k-points 8 --model.k-centers 4 --model.min-points 16 "
              "--model.point-channels 8 --model.scalars 8 --model.vectors 4 --model.tensors2 2 --model.radial-basis 4 "
              "--model.d-model 32 --model.n-layers 1 --model.d-state 4 --model.n-heads 2 --model.horizon 4")


def test_gloo_world_sizes_1_and_2_write_rates_efficiency_and_replica_check(tmp_path):
    cfg = ddp.DdpScalingConfig(world_sizes=(1, 2), device="cpu", data_source="synthetic", n_points=48,
                               synthetic_episodes=3, synthetic_length=12, warmup_steps=2, steps=3, batch_size=2,
                               history=2, train_args=TINY_MODEL, work_dir=tmp_path / "work", out_dir=tmp_path / "res",
                               # a 2-rank gloo job hung now and then on the 2-core CI box (never here, in 30 runs
                               # beside CPU hogs; a launch takes 7-10 s): a hang prints every process's stacks and
                               # is relaunched, at most twice
                               timeout_s=120, retries_after_hang=2)
    path = ddp.main(cfg)
    assert path == tmp_path / "res" / "ddp_scaling_cpu.json"  # never the GPU result's name
    record = json.loads(path.read_text())
    m = record["metrics"]
    assert set(m) == {"samples_per_s_1proc_cpu", "steps_per_s_1proc_cpu", "samples_per_s_2proc_cpu",
                      "steps_per_s_2proc_cpu", "scaling_efficiency_2proc_cpu", "replicas_identical_2proc_cpu"}
    assert m["replicas_identical_2proc_cpu"] == 1
    assert m["samples_per_s_1proc_cpu"] > 0 and m["samples_per_s_2proc_cpu"] > 0
    # samples/s counts the global batch: 2 processes x 2 windows per step
    assert m["samples_per_s_2proc_cpu"] == pytest.approx(4 * m["steps_per_s_2proc_cpu"])
    assert m["scaling_efficiency_2proc_cpu"] == pytest.approx(
        m["samples_per_s_2proc_cpu"] / (2 * m["samples_per_s_1proc_cpu"]))
    rows = {r["world_size"]: r for r in record["details"]["rows"]}
    assert rows[2]["replica_checksums"][0] == rows[2]["replica_checksums"][1]
    assert rows[1]["timed_steps"] == rows[2]["timed_steps"] == 3
    assert 0 < rows[2]["timed_s"] < rows[2]["launch_wall_s"]  # start-up and warm-up are not timed
    # the same training command for every size, only the launcher's process count differs
    assert "--nproc_per_node=<N> -m vla_stack.cli train policy" in record["details"]["command_per_world_size"]
    assert record["details"]["train_config"]["steps"] == 5 and record["details"]["train_config"]["device"] == "cpu"
    assert record["details"]["env"]["NCCL_NVLS_ENABLE"] == "0"
    final = json.loads((tmp_path / "work" / "n2" / "final" / "config.json").read_text())
    assert final["meta"]["step"] == 5   # rank 0 saved the last step's weights
    assert "replica check: identical across 2 ranks" in (tmp_path / "work" / "n2.log").read_text()


def test_timed_interval_comes_from_the_steps_per_second_scalar():
    # 10 steps took 5 s (2 steps/s); 30 steps took 10 s (3 steps/s): the 20 timed steps took 5 s
    assert ddp.timed_seconds({10: 2.0, 20: 2.5, 30: 3.0}, warmup=10, total=30) == pytest.approx(5.0)
    with pytest.raises(RuntimeError, match=r"no value at step\(s\) \[30\]"):
        ddp.timed_seconds({10: 2.0, 20: 2.5}, warmup=10, total=30)


def test_bad_settings_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="lacks 1"):
        ddp.runnable_sizes(ddp.DdpScalingConfig(world_sizes=(2, 4)), "cpu")
    with pytest.raises(ValueError, match="positive"):
        ddp.runnable_sizes(ddp.DdpScalingConfig(world_sizes=(1, 0)), "cpu")
    with pytest.raises(ValueError, match="warmup_steps, steps and batch_size"):
        ddp.runnable_sizes(ddp.DdpScalingConfig(warmup_steps=0), "cpu")
    with pytest.raises(FileNotFoundError, match="no_such_dataset"):
        ddp.make_dataset(ddp.DdpScalingConfig(dataset=tmp_path / "no_such_dataset"), tmp_path)
