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


def _tiny_world_model(path, latent_dim):
    from vla_stack.world_model.config import WorldModelConfig
    from vla_stack.world_model.predictor import WorldModel

    cfg = WorldModelConfig(image_size=32, channels=(8, 16), cond_dim=16, latent_dim=latent_dim, word_tokens=False,
                           attention_heads=2, camera="front")
    return WorldModel(cfg).save(path)


def test_eval_runs_with_world_model_subgoals_and_without(tmp_path, monkeypatch):
    from vla_stack.policy.model import PolicyModel as Model

    seen = []
    condition = Model.condition

    def spy(self, text, subgoal=None, subgoal_mask=None):
        seen.append(subgoal is not None and bool(subgoal.abs().sum() > 0))
        return condition(self, text, subgoal, subgoal_mask)

    monkeypatch.setattr(Model, "condition", spy)
    torch.manual_seed(2)
    ckpt = save_checkpoint(tmp_path / "ckpt", PolicyModel(tiny_config(subgoal_dim=16)))
    common = dict(checkpoint=ckpt, tasks=("PickRedCube",), episodes=2, n_envs=2, max_steps=3, n_points=64,
                  image_size=32, videos=0, device="cpu")
    assert run(EvalConfig(out=tmp_path / "with", world_model=_tiny_world_model(tmp_path / "wm", 16), **common)) == 0
    with_subgoals, seen[:] = list(seen), []
    assert run(EvalConfig(out=tmp_path / "without", **common)) == 0
    assert with_subgoals and all(with_subgoals)  # every tick conditioned on a predicted latent
    assert seen and not any(seen)  # none without a world model
    assert json.loads((tmp_path / "with" / "success.json").read_text())["tasks"]["PickRedCube"]["episodes"] == 2


def test_eval_refuses_a_world_model_the_policy_cannot_read(tmp_path):
    import pytest

    from vla_stack import schema

    no_subgoals = save_checkpoint(tmp_path / "a", PolicyModel(tiny_config()))
    other_dim = save_checkpoint(tmp_path / "b", PolicyModel(tiny_config(subgoal_dim=8)))
    wm = _tiny_world_model(tmp_path / "wm", 16)
    common = dict(tasks=("PickRedCube",), episodes=1, n_envs=1, max_steps=1, n_points=64, image_size=32, videos=0,
                  device="cpu", world_model=wm)
    with pytest.raises(schema.SchemaError, match="subgoal_dim 0"):
        run(EvalConfig(checkpoint=no_subgoals, out=tmp_path / "o1", **common))
    with pytest.raises(schema.SchemaError, match="latent_dim 16"):
        run(EvalConfig(checkpoint=other_dim, out=tmp_path / "o2", **common))


def test_reset_on_switch_modes_run_and_an_unknown_mode_is_refused(tmp_path):
    import pytest

    from vla_stack import schema

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "ckpt", PolicyModel(tiny_config()))
    for mode in ("state", "chunks", "both"):
        assert run(EvalConfig(checkpoint=ckpt, tasks=("PressButtonThenPutRedInBowl",), episodes=2, n_envs=2,
                              max_steps=3, n_points=128, image_size=32, out=tmp_path / mode, device="cpu",
                              videos=0, reset_on_switch=mode)) == 0
    with pytest.raises(schema.SchemaError, match="reset-on-switch 'always'"):
        run(EvalConfig(checkpoint=ckpt, tasks=("PickRedCube",), episodes=1, n_envs=1, max_steps=2, n_points=128,
                       image_size=32, out=tmp_path / "bad", device="cpu", videos=0, reset_on_switch="always"))


def test_eval_runs_a_checkpoint_as_recorded_unless_told_otherwise(tmp_path):
    """`vla eval` executes chunks the way the checkpoint's meta.execution says (as the agent does)."""
    from vla_stack.policy.checkpoint import read_config, record_execution
    from vla_stack.policy.evaluate import with_recorded_execution

    ckpt = save_checkpoint(tmp_path / "ckpt", PolicyModel(tiny_config()))
    plain = with_recorded_execution(EvalConfig(checkpoint=ckpt), read_config(ckpt)[1])
    assert (plain.execution, plain.reset_on_switch) == ("ensemble", "none")
    record_execution(ckpt, "receding", 1, evidence={"why": "test"}, clear_on_switch=True)
    recorded = with_recorded_execution(EvalConfig(checkpoint=ckpt), read_config(ckpt)[1])
    assert (recorded.execution, recorded.exec_steps, recorded.reset_on_switch) == ("receding", 1, "chunks")
    told = with_recorded_execution(EvalConfig(checkpoint=ckpt, execution="ensemble", reset_on_switch="state"),
                                   read_config(ckpt)[1])
    assert (told.execution, told.reset_on_switch) == ("ensemble", "state")
