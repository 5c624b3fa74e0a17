"""The shipped weights: the manifest is checked (presence, size, SHA-256, 50 MB budget) and
each part is loaded by its own validating loader before the agent is built."""

import json
import shutil
from pathlib import Path

import pytest

from vla_stack import schema
from vla_stack.agent import AgentConfig
from vla_stack.agent.weights import COMPONENTS, MAX_TOTAL_BYTES, PackConfig, load_agent, pack, read_manifest

SHIPPED = Path(__file__).resolve().parent.parent / "shipped"


def test_repository_ships_three_checked_checkpoints_within_50_mb():
    manifest = read_manifest(SHIPPED)
    total = sum(e["bytes"] for c in COMPONENTS for e in manifest["components"][c]["files"].values())
    assert 0 < total <= MAX_TOTAL_BYTES
    assert {"model.safetensors", "config.json"} <= set(manifest["components"]["policy"]["files"])
    assert (SHIPPED / "RECIPE.md").is_file()


def test_shipped_agent_loads_every_part():
    agent = load_agent(SHIPPED, AgentConfig(mode="full"))
    assert agent.planner is not None and agent.world_model is not None
    assert agent.world_model.config.camera in ("scene", "front")
    agent.close()


def test_a_changed_weight_file_is_refused(tmp_path):
    copy = tmp_path / "shipped"
    shutil.copytree(SHIPPED, copy)
    f = copy / "policy" / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(schema.SchemaError, match="policy/model.safetensors"):
        load_agent(copy)


def test_missing_manifest_or_part_is_named(tmp_path):
    with pytest.raises(schema.SchemaError, match="manifest.json"):
        read_manifest(tmp_path)
    copy = tmp_path / "shipped"
    shutil.copytree(SHIPPED, copy)
    (copy / "planner" / "config.json").unlink()
    with pytest.raises(schema.SchemaError, match="planner/config.json"):
        read_manifest(copy)


def test_pack_writes_a_manifest_that_validates(tmp_path):
    out = tmp_path / "packed"
    pack(PackConfig(planner=SHIPPED / "planner", world_model=SHIPPED / "world_model", policy=SHIPPED / "policy",
                    out=out, n_points=256, image_size=64, notes={"policy": "test"}))
    manifest = read_manifest(out)
    assert manifest["sim"] == {"n_points": 256, "image_size": 64}
    assert manifest["components"]["policy"]["notes"] == "test"
    bad = json.loads((out / "manifest.json").read_text()) | {"format": "something/0"}
    (out / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(schema.SchemaError, match="format"):
        read_manifest(out)
