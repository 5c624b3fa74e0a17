"""The ActionExpert API as the sim loop and the ROS node use it: checked inputs, streamed
schema actions, chunk execution, and checkpoints that round-trip or fail clearly."""

import json

import numpy as np
import pytest
import torch

from vla_stack import schema
from vla_stack.policy import ActionExpert, PolicyModel, tiny_config
from vla_stack.policy.chunking import ChunkExecutor


class HashText:
    """Deterministic stand-in for MiniLM in fast tests (the real one is used in test_real_text_encoder)."""

    def __call__(self, s):
        return np.random.default_rng(abs(hash(s)) % 2**32).normal(size=384).astype(np.float32)


def observation(n=64, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-0.4, 0.4, (n, 3)).astype(np.float32)
    cols = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    state = np.zeros(schema.STATE_DIM, np.float32)
    state[schema.STATE_EE_POS] = (0.4, 0.0, 0.3)
    state[schema.STATE_EE_QUAT] = (0.0, 1.0, 0.0, 0.0)
    state[schema.STATE_GRIPPER] = 0.04
    return pts, cols, state


@pytest.fixture(scope="module")
def expert():
    torch.manual_seed(0)
    return ActionExpert(PolicyModel(tiny_config(subgoal_dim=6)), text_encoder=HashText())


def test_step_returns_a_schema_action(expert):
    expert.reset()
    for t in range(5):
        a = expert.step(*observation(seed=t), subtask="pick up the red cube")
        assert a.shape == (7,) and a.dtype == np.float32
        assert np.all(a >= schema.ACTION_LOW) and np.all(a <= schema.ACTION_HIGH)
    assert expert.ticks == 5
    expert.reset()
    assert expert.ticks == 0 and expert.state["t"] == 0


def test_reset_makes_rollouts_repeatable(expert):
    def rollout():
        expert.reset()
        return np.stack([expert.step(*observation(seed=t), subtask="open the drawer") for t in range(4)])

    np.testing.assert_array_equal(rollout(), rollout())


def test_subgoal_latent_is_optional_and_used_when_given(expert):
    expert.reset()
    without = expert.predict_chunk(*observation(), subtask="open the drawer")
    expert.reset()
    with_goal = expert.predict_chunk(*observation(), subtask="open the drawer", subgoal_latent=np.ones(6, np.float32))
    assert not np.allclose(without, with_goal)
    with pytest.raises(schema.SchemaError, match="subgoal_latent"):
        expert.step(*observation(), subtask="open the drawer", subgoal_latent=np.ones(5))


@pytest.mark.parametrize("bad, match", [
    (lambda p, c, s: (np.where(np.arange(len(p))[:, None] == 3, np.nan, p), c, s), "points: contains"),
    (lambda p, c, s: (p[:10], c[:10], s), "at least 16 needed"),
    (lambda p, c, s: (p[:, :2], c, s), "points: expected shape"),
    (lambda p, c, s: (p, c[:5], s), "colors: expected shape"),
    (lambda p, c, s: (p, c, s[:7]), "state: expected shape"),
    (lambda p, c, s: (p, c, np.where(np.arange(15) == 0, np.inf, s)), "state: contains"),
    (lambda p, c, s: (p, c, np.where((np.arange(15) >= 3) & (np.arange(15) < 7), 0, s)), "quaternion"),
])
def test_bad_input_is_refused_with_a_clear_error(expert, bad, match):
    with pytest.raises(schema.SchemaError, match=match):
        expert.step(*bad(*observation()), subtask="open the drawer")


def test_empty_subtask_is_refused(expert):
    with pytest.raises(schema.SchemaError, match="subtask"):
        expert.step(*observation(), subtask="  ")


def test_temporal_ensembling_averages_every_prediction_for_now():
    ex = ChunkExecutor(horizon=3, mode="ensemble", decay=0.0)
    c0 = np.array([[0.0], [1.0], [2.0]])
    c1 = np.array([[10.0], [11.0], [12.0]])
    assert ex(c0)[0] == 0.0
    assert ex(c1)[0] == pytest.approx((1.0 + 10.0) / 2)  # c0's entry for tick 1 and c1's for tick 1


def test_receding_horizon_replans_every_exec_steps():
    ex = ChunkExecutor(horizon=4, mode="receding", exec_steps=2)
    chunks = [np.full((4, 1), 10.0 * k) + np.arange(4)[:, None] for k in range(4)]
    assert [ex(c)[0] for c in chunks] == [0.0, 1.0, 20.0, 21.0]


def test_checkpoint_round_trip_gives_identical_actions(expert, tmp_path):
    expert.save(tmp_path / "ckpt", meta={"note": "test"})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors", "stats.json"]
    loaded = ActionExpert.load(tmp_path / "ckpt", text_encoder=HashText())
    for e in (expert, loaded):
        e.reset()
    for t in range(3):
        obs = observation(seed=t)
        np.testing.assert_array_equal(expert.step(*obs, subtask="open the drawer"),
                                      loaded.step(*obs, subtask="open the drawer"))


def test_clear_on_switch_drops_the_previous_subtasks_chunks(expert, tmp_path):
    """After a subtask switch the ensemble blends the new chunk with the old subtask's pending ones;
    with clear_on_switch the first action of the new subtask is its own chunk's first step."""
    from vla_stack.policy.checkpoint import record_execution

    ckpt = expert.save(tmp_path / "ckpt")
    record_execution(ckpt, "ensemble", 0, evidence={}, clear_on_switch=True)
    clearing, blending = (ActionExpert.load(ckpt, text_encoder=HashText()),
                          ActionExpert.load(ckpt, execution="ensemble", text_encoder=HashText()))
    assert clearing.clear_on_switch and not blending.clear_on_switch
    probe = ActionExpert.load(ckpt, execution="ensemble", text_encoder=HashText())
    for e in (clearing, blending, probe):
        e.reset()
    for t in range(4):
        obs = observation(seed=t)
        a, b = clearing.step(*obs, subtask="open the drawer"), blending.step(*obs, subtask="open the drawer")
        np.testing.assert_array_equal(a, b)   # no switch yet: the same actions
        probe.predict_chunk(*obs, subtask="open the drawer")
    obs = observation(seed=9)
    first = probe.predict_chunk(*obs, subtask="press the button")[0]   # same state history, same new chunk
    switched = clearing.step(*obs, subtask="press the button")
    np.testing.assert_allclose(switched, schema.validate_action(first), atol=1e-6)
    assert not np.allclose(blending.step(*obs, subtask="press the button"), switched, atol=1e-6)


def test_checkpoint_runs_the_chunk_execution_validated_for_it(expert, tmp_path):
    from vla_stack.policy.checkpoint import record_execution

    ckpt = expert.save(tmp_path / "ckpt")
    assert ActionExpert.load(ckpt, text_encoder=HashText()).executor.mode == "ensemble"  # nothing recorded
    record_execution(ckpt, "receding", 1, evidence={"receding": 0.9, "ensemble": 0.8})
    loaded = ActionExpert.load(ckpt, text_encoder=HashText())
    assert (loaded.executor.mode, loaded.executor.exec_steps) == ("receding", 1)
    explicit = ActionExpert.load(ckpt, execution="ensemble", text_encoder=HashText())
    assert explicit.executor.mode == "ensemble"  # the caller's choice wins
    with pytest.raises(schema.SchemaError, match="execution mode 'greedy'"):
        record_execution(ckpt, "greedy", 1, evidence={})
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["meta"]["execution"] = {"mode": "sometimes"}
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(schema.SchemaError, match="meta.execution"):
        ActionExpert.load(ckpt)
    cfg["meta"]["execution"] = {"mode": "ensemble", "exec_steps": 0, "clear_on_switch": "yes"}
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(schema.SchemaError, match="clear_on_switch"):
        ActionExpert.load(ckpt)


def test_checkpoint_whose_config_does_not_match_the_weights_fails_clearly(expert, tmp_path):
    ckpt = expert.save(tmp_path / "ckpt")
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["d_model"] = 48
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(schema.SchemaError, match="shape mismatch"):
        ActionExpert.load(ckpt)
    cfg["d_model"], cfg["n_layers"] = 32, 2
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(schema.SchemaError, match="missing"):
        ActionExpert.load(ckpt)
    cfg["n_layers"], cfg["mystery"] = 1, 3
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(schema.SchemaError, match="unknown field"):
        ActionExpert.load(ckpt)


def test_corrupt_or_incomplete_checkpoint_fails_clearly(expert, tmp_path):
    ckpt = expert.save(tmp_path / "ckpt")
    (ckpt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(schema.SchemaError, match="cannot be read"):
        ActionExpert.load(ckpt)
    (ckpt / "stats.json").unlink()
    with pytest.raises(schema.SchemaError, match="missing stats.json"):
        ActionExpert.load(ckpt)
    with pytest.raises(schema.SchemaError, match="no config.json"):
        ActionExpert.load(tmp_path / "nowhere")


def test_real_text_encoder_conditions_the_policy():
    torch.manual_seed(0)
    e = ActionExpert(PolicyModel(tiny_config()))  # MiniLM, cached per string
    a = e.predict_chunk(*observation(), subtask="pick up the red cube")
    e.reset()
    b = e.predict_chunk(*observation(), subtask="open the drawer")
    assert not np.allclose(a, b)
