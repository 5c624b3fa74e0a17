"""Planner checkpoints: model.safetensors (both networks) + config.json, never pickle."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vla_stack import schema

from .grounding import GroundingConfig, GroundingNet
from .plan_decoder import PlanDecoder, PlanDecoderConfig

FORMAT = "vla_stack.planner/1"


def save(out_dir: str | Path, decoder: PlanDecoder, grounding: GroundingNet, extra: dict | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"decoder.{k}": v.contiguous() for k, v in decoder.state_dict().items()}
    tensors |= {f"grounding.{k}": v.contiguous() for k, v in grounding.state_dict().items()}
    save_file(tensors, str(out / "model.safetensors"))
    cfg = {"format": FORMAT, "templates": decoder.templates, "memory_texts": decoder.memory_texts, "decoder": vars(decoder.cfg),
           "entities": grounding.entities, "grounding": vars(grounding.cfg), **(extra or {})}
    tmp = out / "config.json.tmp"
    tmp.write_text(json.dumps(cfg, indent=2))
    tmp.replace(out / "config.json")
    return out


def load(ckpt_dir: str | Path) -> tuple[PlanDecoder, GroundingNet, dict]:
    d = Path(ckpt_dir)
    for name in ("config.json", "model.safetensors"):
        if not (d / name).is_file():
            raise schema.SchemaError(f"planner checkpoint {d}: missing {name} (train one with `vla train planner`)")
    try:
        cfg = json.loads((d / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise schema.SchemaError(f"planner checkpoint {d / 'config.json'}: not valid JSON ({e})") from None
    if cfg.get("format") != FORMAT:
        raise schema.SchemaError(f"planner checkpoint {d}: format {cfg.get('format')!r}, expected {FORMAT!r}")
    try:
        tensors = load_file(str(d / "model.safetensors"))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise schema.SchemaError(f"planner checkpoint {d / 'model.safetensors'}: cannot be read ({e})") from None
    decoder = PlanDecoder(cfg["templates"], PlanDecoderConfig(**cfg["decoder"]))
    grounding = GroundingNet(cfg["entities"], GroundingConfig(**cfg["grounding"]))
    dec = {k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")}
    decoder.memory = torch.zeros_like(dec["memory"])
    decoder.memory_texts = list(cfg.get("memory_texts", []))
    if len(decoder.memory_texts) != len(dec["memory"]):
        raise schema.SchemaError(f"planner checkpoint {d}: {len(decoder.memory_texts)} memory_texts in config.json "
                                 f"but {len(dec['memory'])} memory rows in model.safetensors")
    try:
        decoder.load_state_dict(dec)
        grounding.load_state_dict({k[10:]: v for k, v in tensors.items() if k.startswith("grounding.")})
    except RuntimeError as e:
        raise schema.SchemaError(f"planner checkpoint {d}: weights do not match config.json ({e})") from None
    return decoder.eval(), grounding.eval(), cfg


def load_segmenter_into(ckpt_dir: str | Path, grounding: GroundingNet) -> dict:
    """Copy a checkpoint's point segmenter into `grounding` (fact heads left as they are, so
    they can be retrained with other inputs); returns the checkpoint's config."""
    d = Path(ckpt_dir)
    for name in ("config.json", "model.safetensors"):
        if not (d / name).is_file():
            raise schema.SchemaError(f"planner checkpoint {d}: missing {name}")
    cfg = json.loads((d / "config.json").read_text())
    prefix = "grounding.segmenter."
    seg = {k[len(prefix):]: v for k, v in load_file(str(d / "model.safetensors")).items() if k.startswith(prefix)}
    try:
        grounding.segmenter.load_state_dict(seg)
    except RuntimeError as e:
        raise schema.SchemaError(f"planner checkpoint {d}: segmenter does not match this configuration ({e})") from None
    return cfg
