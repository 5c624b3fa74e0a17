"""Planner checkpoints: safetensors + JSON round trip; broken files are named in the error."""

import json

import pytest
import torch

from vla_stack import schema, text
from vla_stack.planner import checkpoint
from vla_stack.planner.grounding import Fact, GroundingConfig, GroundingNet
from vla_stack.planner.plan_decoder import PlanDecoder, PlanDecoderConfig


def tiny_models():
    torch.manual_seed(0)
    dec = PlanDecoder(["open the drawer", "pick up the cube A"], PlanDecoderConfig(hidden=16))
    dec.memory, dec.memory_texts = torch.randn(2, text.EMBED_DIM), ["open the drawer", "pick up the cube A"]
    g = GroundingNet(["red cube", "drawer"], GroundingConfig(width=8, k=4, head_width=8, n_points=32))
    return dec, g


def test_round_trip_gives_identical_judgements(tmp_path):
    dec, g = tiny_models()
    checkpoint.save(tmp_path, dec, g)
    dec2, g2, cfg = checkpoint.load(tmp_path)
    assert cfg["templates"] == dec.templates and dec2.memory_texts == dec.memory_texts
    pts, cols, state = torch.randn(3, 40, 3), torch.rand(3, 40, 3), torch.randn(3, schema.STATE_DIM)
    idx = g.fact_index([Fact("in", "red cube", "drawer"), Fact("open", "drawer")])
    outs = []
    for net in (g, g2):
        seg = net.encode(pts, cols, state)
        outs.append(net.judge(seg, state, seg, idx))
    torch.testing.assert_close(outs[0], outs[1])
    assert not (tmp_path / "model.pt").exists()  # no pickle anywhere


def test_broken_checkpoints_are_named(tmp_path):
    dec, g = tiny_models()
    checkpoint.save(tmp_path, dec, g)
    (tmp_path / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(schema.SchemaError, match="model.safetensors: cannot be read"):
        checkpoint.load(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(schema.SchemaError, match="config.json: not valid JSON"):
        checkpoint.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(schema.SchemaError, match="format 'something else'"):
        checkpoint.load(tmp_path)
    with pytest.raises(schema.SchemaError, match="missing config.json"):
        checkpoint.load(tmp_path / "nowhere")


def test_unknown_entity_in_a_fact_is_refused():
    _, g = tiny_models()
    with pytest.raises(schema.SchemaError, match="entity 'blue cube' unknown"):
        g.fact_index([Fact("held", "blue cube")])
