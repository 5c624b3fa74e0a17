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
