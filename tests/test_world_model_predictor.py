"""The world model's public face: predict_subgoal, checkpoints, and refusing bad input."""

import numpy as np
import pytest

from vla_stack import schema
from vla_stack.world_model.config import WorldModelConfig
from vla_stack.world_model.predictor import WorldModel

TINY = WorldModelConfig(image_size=32, channels=(8, 16, 32), latent_dim=16, cond_dim=32)
WORDS = (np.random.default_rng(2).normal(size=(1, 5, 384)).astype(np.float32), np.array([[True] * 4 + [False]]))


@pytest.fixture(scope="module")
def model():
    return WorldModel(TINY)


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), rng.uniform(0.4, 2.0, (32, 32)).astype(np.float32)


def test_untrained_model_predicts_the_current_frame(model, frame):
    # The output head starts at zero: before training, the subgoal *is* the copy baseline.
    rgb, depth = frame
    emb = np.ones((1, 384), np.float32) / np.sqrt(384)
    goal = model.predict_batch(rgb[None], depth[None], emb, *WORDS)[0]
    assert goal.rgb.dtype == np.uint8 and goal.rgb.shape == (32, 32, 3)
    assert np.abs(goal.rgb.astype(int) - rgb).max() <= 1
    assert goal.depth.shape == (32, 32) and np.allclose(goal.depth, depth, atol=0.01)
    assert goal.latent.shape == (16,) and goal.latent.dtype == np.float32


def test_predict_subgoal_embeds_the_subtask_text(model, frame):
    rgb, depth = frame
    sub_rgb, latent = model.predict_subgoal(rgb, depth, "pick up the red cube")
    assert sub_rgb.shape == rgb.shape and latent.shape == (TINY.latent_dim,)
    _, other = model.predict_subgoal(rgb, depth, "open the drawer")
    assert not np.allclose(latent, other)  # the text reaches the latent


def test_checkpoint_round_trip_is_exact(model, frame, tmp_path):
    rgb, depth = frame
    emb = np.random.default_rng(1).normal(size=(1, 384)).astype(np.float32)
    model.save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    again = WorldModel.load(tmp_path / "ckpt")
    a = model.predict_batch(rgb[None], depth[None], emb, *WORDS)[0]
    b = again.predict_batch(rgb[None], depth[None], emb, *WORDS)[0]
    assert again.config == model.config
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.latent, b.latent)


def test_corrupt_or_missing_checkpoint_is_named(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing config.json"):
        WorldModel.load(tmp_path)
    model.save(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="model.safetensors: unreadable"):
        WorldModel.load(tmp_path)


@pytest.mark.parametrize("rgb, depth, text, message", [
    (np.zeros((32, 32, 3), np.float32), None, "x", "rgb: expected dtype uint8"),
    (np.zeros((32, 32, 4), np.uint8), None, "x", r"rgb: expected shape \(32, 32, 3\)"),
    (np.zeros((64, 64, 3), np.uint8), None, "x", r"rgb: expected shape \(32, 32, 3\)"),
    (np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.float32), "", "subtask: empty subtask text"),
    (np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.float32), "   ", "subtask: empty subtask text"),
    (np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.float32), "DONE", "planner's end token"),
    (np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.float32), None, "subtask: expected a string"),
    (np.zeros((32, 32, 3), np.uint8), np.full((32, 32), np.nan, np.float32), "x", "depth: contains NaN"),
    (np.zeros((32, 32, 3), np.uint8), np.full((32, 32), -1.0, np.float32), "x", "depth: contains negative"),
    (np.zeros((32, 32, 3), np.uint8), np.zeros((16, 16), np.float32), "x", r"depth: expected shape \(32, 32\)"),
    (np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.uint16), "x", "depth: expected a float32 array"),
    (np.zeros((32, 32, 3), np.uint8), None, "x", "trained with depth; pass the depth image"),
])
def test_bad_input_gets_an_error_naming_the_field(model, rgb, depth, text, message):
    with pytest.raises(schema.SchemaError, match=message):
        model.predict_subgoal(rgb, depth, text)


def test_word_tokens_are_required_and_checked(model, frame):
    rgb, depth = frame
    emb = np.ones((1, 384), np.float32) / np.sqrt(384)
    with pytest.raises(schema.SchemaError, match="needs word tokens"):
        model.predict_batch(rgb[None], depth[None], emb)
    with pytest.raises(schema.SchemaError, match="at least one word"):
        model.predict_batch(rgb[None], depth[None], emb, WORDS[0], np.zeros((1, 5), bool))


def test_the_default_checkpoint_is_the_shipped_current_model():
    """What a user gets by naming no checkpoint (predict_subgoal, `vla eval world-model`, the ROS node) is
    the world model `vla ship` packed, trained on the sim's front camera."""
    import json

    from vla_stack.world_model.predictor import DEFAULT_CHECKPOINT, predict_subgoal

    manifest = json.loads((DEFAULT_CHECKPOINT.parent / "manifest.json").read_text())
    source = DEFAULT_CHECKPOINT.parent.parent / manifest["components"]["world_model"]["source"]
    assert (DEFAULT_CHECKPOINT / "model.safetensors").resolve() == (source / "model.safetensors").resolve()
    assert WorldModel.load(DEFAULT_CHECKPOINT).config.camera == "front"
    rng = np.random.default_rng(3)
    rgb, depth = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8), rng.uniform(0.5, 2.0, (128, 128)).astype(np.float32)
    goal, latent = predict_subgoal(rgb, depth, "pick up the red cube")
    assert goal.shape == (128, 128, 3) and latent.shape == (128,) and np.isfinite(latent).all()
