"""`vla train policy` end to end on a tiny synthetic dataset: it learns, saves a loadable
checkpoint, resumes and fine-tunes. (Under torchrun: tests/test_ddp_scaling.py.)"""

import json
from pathlib import Path

import pytest

from vla_stack.datasets import layout
from vla_stack.datasets.layout import DatasetSpec
from vla_stack.datasets.synthetic import synthetic_frames, write_synthetic
from vla_stack.datasets.writer import DatasetWriter
from vla_stack.policy import ActionExpert, tiny_config
from vla_stack.policy.finetune import FinetuneConfig
from vla_stack.policy.finetune import run as finetune
from vla_stack.policy.train import TrainConfig, train
from vla_stack.schema import SchemaError



@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("policy_data") / "demos"
    write_synthetic(root, DatasetSpec(n_points=48, cameras={}), episodes=3, length=12)
    return root


def test_train_learns_saves_and_resumes(dataset, tmp_path):
    cfg = TrainConfig(dataset=dataset, out=tmp_path / "run", model=tiny_config(), steps=12, batch_size=4, history=2,
                      lr=3e-3, warmup_steps=2, save_every=6, log_every=4, progress=False)
    final = train(cfg)
    meta = json.loads((final / "config.json").read_text())["meta"]
    assert meta["step"] == 12
    losses = _tensorboard_scalars(tmp_path / "run" / "tb", "train/loss")
    assert losses[-1] < losses[0]  # it fits the (random) demonstrations a little
    expert = ActionExpert.load(final)
    assert expert.cfg == tiny_config()
    # resume: the same command with more steps continues at step 12 from last/
    cfg.steps = 14
    final = train(cfg)
    assert json.loads((tmp_path / "run" / "last" / "trainer.json").read_text())["step"] == 14
    # fine-tune on a "new" dataset with the encoder frozen
    finetune(FinetuneConfig(checkpoint=final, dataset=dataset, out=tmp_path / "ft", steps=2, batch_size=2, history=2,
                            progress=False))
    before, after = ActionExpert.load(final).model, ActionExpert.load(tmp_path / "ft" / "final").model
    enc = lambda m: [p.detach().clone() for p in m.encoder.parameters()]  # noqa: E731
    assert all((a == b).all() for a, b in zip(enc(before), enc(after)))  # frozen
    assert any((a != b).any() for a, b in zip(before.head.parameters(), after.head.parameters()))  # trained


def test_fine_tuning_co_trains_on_new_data_mixed_with_the_old_at_chosen_shares(dataset, tmp_path, capsys):
    base = train(TrainConfig(dataset=dataset, out=tmp_path / "base", model=tiny_config(), steps=2, batch_size=2,
                             history=2, progress=False))
    teleop = tmp_path / "teleop"   # a small new set: one episode
    write_synthetic(teleop, DatasetSpec(n_points=48, cameras={}), episodes=1, length=12, seed=7)
    finetune(FinetuneConfig(checkpoint=base, dataset=teleop, mix_with=(dataset,), mix_weights=(0.5, 0.5),
                            out=tmp_path / "ft", steps=2, batch_size=2, history=2, progress=False))
    log = capsys.readouterr().out
    assert f"sources: {teleop}: " in log and f"{dataset}: " in log and log.count("share 0.50") == 2
    recorded = json.loads((tmp_path / "ft" / "train_config.json").read_text())
    assert recorded["mix_with"] == [str(dataset)] and recorded["mix_weights"] == [0.5, 0.5]
    with pytest.raises(SchemaError, match="1 given for 2 sources"):
        finetune(FinetuneConfig(checkpoint=base, dataset=teleop, mix_with=(dataset,), mix_weights=(1.0,),
                                out=tmp_path / "ft2", steps=1, batch_size=2, history=2, progress=False))


def test_resume_refuses_a_different_architecture(dataset, tmp_path):
    cfg = TrainConfig(dataset=dataset, out=tmp_path / "run", model=tiny_config(), steps=1, batch_size=2, history=2,
                      progress=False)
    train(cfg)
    cfg.model, cfg.steps = tiny_config(d_model=16), 2
    with pytest.raises(ValueError, match="saved model config differs"):
        train(cfg)


def _tensorboard_scalars(logdir: Path, tag: str) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return [e.value for e in acc.Scalars(tag)]


def test_subgoal_latent_is_dropped_at_the_configured_rate_and_required_when_configured(dataset, tmp_path):
    import torch

    from vla_stack.policy import PolicyModel
    from vla_stack.policy.train import subgoal_inputs

    model = PolicyModel(tiny_config(subgoal_dim=4, subgoal_dropout=0.3))
    sub, keep = subgoal_inputs({"subgoal": torch.ones(50, 40, 4)}, model, torch.Generator().manual_seed(0))
    assert sub.shape == (50, 40, 4) and abs(keep.float().mean().item() - 0.7) < 0.05
    assert subgoal_inputs({}, PolicyModel(tiny_config())) == (None, None)
    with pytest.raises(ValueError, match="needs subgoal latents"):
        train(TrainConfig(dataset=dataset, out=tmp_path / "sg", model=tiny_config(subgoal_dim=4), steps=1,
                          batch_size=2, history=2, progress=False))


def test_time_budget_stops_training_early_and_still_saves_a_final_checkpoint(dataset, tmp_path):
    cfg = TrainConfig(dataset=dataset, out=tmp_path / "run", model=tiny_config(), steps=100_000, batch_size=2,
                      history=2, time_budget_min=0.02, progress=False)
    final = train(cfg)
    meta = json.loads((final / "config.json").read_text())["meta"]
    assert 0 < meta["step"] < 100_000
    ActionExpert.load(final)  # loadable


@pytest.fixture(scope="module")
def dataset_with_a_cube(tmp_path_factory):
    """The synthetic frames with a turned 4 cm blue cube in each cloud: the instruction's object has a shape."""
    import numpy as np

    from vla_stack.policy.object_channels import OBJECT_COLORS

    spec = DatasetSpec(n_points=48, cameras={})
    w = DatasetWriter.create(tmp_path_factory.mktemp("policy_data_cube") / "demos", spec)
    rng = np.random.default_rng(0)
    for ep in range(3):
        w.start_episode("put the blue cube in the drawer")
        for f in synthetic_frames(spec, 12, seed=ep):
            yaw = rng.uniform(-np.pi / 4, np.pi / 4)
            turn = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
            f[layout.POINTS][:16] = (rng.uniform(-0.02, 0.02, (16, 3)) @ turn.T + rng.normal(size=3)).astype(np.float32)
            f[layout.COLORS][:16] = OBJECT_COLORS["blue_cube"]
            w.add_frame(f)
        w.save_episode()
    return w.root


def test_fine_tuning_can_add_shape_harmonics_to_a_checkpoint_trained_without_them(dataset_with_a_cube, tmp_path):
    dataset = dataset_with_a_cube
    base = train(TrainConfig(dataset=dataset, out=tmp_path / "base", model=tiny_config(object_channels=True), steps=2,
                             batch_size=2, history=2, progress=False))
    tuned = train(TrainConfig(dataset=dataset, out=tmp_path / "tuned", init_from=base, add_shape_harmonics=True,
                              steps=3, batch_size=4, history=2, lr=3e-3, warmup_steps=1, progress=False))
    model = ActionExpert.load(tuned).model
    assert model.cfg.shape_harmonics and not model.cfg.solid_cube_masks
    assert model.shape_in.weight.abs().max() > 0 and model.head.coef_shape.weight.abs().max() > 0  # they trained

    # the added weights can learn faster than the rest: same data and seed, 10x their learning rate
    faster = train(TrainConfig(dataset=dataset, out=tmp_path / "faster", init_from=base, add_shape_harmonics=True,
                               new_weights_lr_mult=10.0, steps=3, batch_size=4, history=2, lr=3e-3, warmup_steps=1,
                               progress=False))
    fast = ActionExpert.load(faster).model
    for name in ("shape_in.weight", "head.coef_shape.weight"):
        moved, moved_fast = model.get_parameter(name).abs().max(), fast.get_parameter(name).abs().max()
        assert 5 * moved < moved_fast < 15 * moved, name   # Adam's steps scale with the learning rate
    base_w = ActionExpert.load(base).model.get_parameter("head.coef_rot.weight")
    moved, moved_fast = ((m.get_parameter("head.coef_rot.weight") - base_w).abs().max() for m in (model, fast))
    assert 0.5 * moved < moved_fast < 2 * moved   # the loaded weights keep the base learning rate


def test_fine_tuning_can_switch_on_solid_cube_masks_and_mark_the_button(dataset_with_a_cube, tmp_path):
    base = train(TrainConfig(dataset=dataset_with_a_cube, out=tmp_path / "base", model=tiny_config(object_channels=True),
                             steps=2, batch_size=2, history=2, progress=False))
    tuned = train(TrainConfig(dataset=dataset_with_a_cube, out=tmp_path / "tuned", init_from=base, solid_cube_masks=True,
                              mark_objects=("button",), steps=2, batch_size=2, history=2, progress=False))
    cfg = ActionExpert.load(tuned).model.cfg  # saved with the checkpoint, so inference matches
    assert cfg.solid_cube_masks and cfg.marked_objects[-1] == "button"
    base_cfg = ActionExpert.load(base).model.cfg
    assert not base_cfg.solid_cube_masks and "button" not in base_cfg.marked_objects
    # a checkpoint marking the button only where it is pressed (as shipped since session 18): marking it
    # in training marks it as a destination too
    import json
    import shutil

    pressed_only = shutil.copytree(tuned, tmp_path / "pressed_only")
    raw = json.loads((pressed_only / "config.json").read_text())
    (pressed_only / "config.json").write_text(json.dumps({**raw, "target_only_objects": ["button"]}))
    assert ActionExpert.load(pressed_only).model.cfg.target_only_objects == ("button",)
    both = train(TrainConfig(dataset=dataset_with_a_cube, out=tmp_path / "both", init_from=pressed_only,
                             mark_objects=("button",), steps=1, batch_size=2, history=2, progress=False))
    assert ActionExpert.load(both).model.cfg.target_only_objects == ()
    with pytest.raises(SchemaError, match="init_from"):  # from scratch the model config says it
        train(TrainConfig(dataset=dataset_with_a_cube, out=tmp_path / "scratch", model=tiny_config(object_channels=True),
                          solid_cube_masks=True, steps=1, batch_size=2, history=2, progress=False))
    with pytest.raises(SchemaError, match="purple_cube"):
        train(TrainConfig(dataset=dataset_with_a_cube, out=tmp_path / "bad", init_from=base, mark_objects=("purple_cube",),
                          steps=1, batch_size=2, history=2, progress=False))


def test_subtask_switches_can_be_shown_late_as_the_planner_names_them():
    import numpy as np
    import torch

    from vla_stack.policy.train import lag_subtask_switches

    sub = torch.tensor([[0, 0, 1, 1, 1, 1, 2, 2, 2, 2], [3] * 10])
    lagged = [lag_subtask_switches(sub, 3, np.random.default_rng(s)) for s in range(40)]
    for out in lagged:
        assert torch.equal(out[1], sub[1])  # no switch in the window: unchanged
        late = [int((out[0, 2:6] == 0).sum()), int((out[0, 6:] == 1).sum())]
        assert late[0] == late[1] <= 3  # one lag per window, at each of its switches
        assert torch.equal(out[0, 2 + late[0]:6], sub[0, 2 + late[0]:6])  # after the lag, the true subtask
    assert {int((o[0, 2:6] == 0).sum()) for o in lagged} == {0, 1, 2, 3}  # lags drawn 0..max
    assert torch.equal(lag_subtask_switches(sub, 0, np.random.default_rng(0)), sub)
