"""`vla eval` on the real simulator with a tiny untrained policy: vector envs in lockstep,
one batched policy call per tick, a success table as JSON + Markdown and a rollout MP4."""

import json
import os

import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from vla_stack.policy import PolicyModel, save_checkpoint, tiny_config  # noqa: E402
from vla_stack.policy.evaluate import EvalConfig, run  # noqa: E402


def test_eval_writes_success_table_and_video(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "ckpt", PolicyModel(tiny_config()))
    out = tmp_path / "eval"
    assert run(EvalConfig(checkpoint=ckpt, tasks=("PickRedCube",), episodes=3, n_envs=2, max_steps=4, n_points=128,
                          image_size=32, out=out, device="cpu")) == 0
    table = json.loads((out / "success.json").read_text())
    row = table["tasks"]["PickRedCube"]
    assert row["episodes"] == 3 and 0.0 <= row["success_rate"] <= 1.0
    assert all(ep["steps"] <= 4 for ep in row["episodes_detail"])
    assert "| PickRedCube | 3 |" in (out / "success.md").read_text()
    videos = list((out / "videos").glob("PickRedCube_ep0_*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_tasks_in_parallel_processes_give_the_same_table_as_one_process(tmp_path):
    torch.manual_seed(1)
    ckpt = save_checkpoint(tmp_path / "ckpt", PolicyModel(tiny_config()))
    common = dict(checkpoint=ckpt, tasks=("CloseDrawer", "PressButton"), episodes=2, n_envs=2, max_steps=3,
                  n_points=64, image_size=32, videos=0, device="cpu")
    assert run(EvalConfig(out=tmp_path / "one", **common)) == 0
    assert run(EvalConfig(out=tmp_path / "two", workers=2, **common)) == 0
    one, two = (json.loads((tmp_path / d / "success.json").read_text()) for d in ("one", "two"))
    assert list(two["tasks"]) == ["CloseDrawer", "PressButton"]
    for task in one["tasks"]:
        assert one["tasks"][task]["episodes_detail"] == two["tasks"][task]["episodes_detail"]
