"""Checkpoints: a directory with model.safetensors, config.json and stats.json (the
normalization numbers, also stored as buffers in the weights). No pickle anywhere.
Loading checks the config and every tensor's name and shape, and says what differs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vla_stack.schema import SchemaError

from .config import PolicyConfig
from .model import PolicyModel

WEIGHTS, CONFIG, STATS = "model.safetensors", "config.json", "stats.json"


def save_checkpoint(directory: Path | str, model: PolicyModel, meta: dict | None = None) -> Path:
    """Written to a temporary sibling and renamed, so a crash never leaves half a checkpoint."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(tmp / WEIGHTS), metadata={"format": "vla_stack.policy"})
    (tmp / CONFIG).write_text(json.dumps({**model.cfg.to_dict(), "meta": meta or {}}, indent=2) + "\n")
    (tmp / STATS).write_text(json.dumps(model.normalizer.as_dict(), indent=2) + "\n")
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)
    return directory


def read_config(directory: Path | str) -> tuple[PolicyConfig, dict]:
    directory = Path(directory)
    path = directory / CONFIG
    if not path.is_file():
        raise SchemaError(f"checkpoint {directory}: no {CONFIG} (a checkpoint is a directory with "
                          f"{WEIGHTS}, {CONFIG}, {STATS})")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SchemaError(f"checkpoint {path}: not valid JSON ({e})") from None
    meta = raw.pop("meta", {})
    return PolicyConfig.from_dict(raw), meta


EXECUTION_MODES = ("ensemble", "receding")


def recorded_execution(meta: dict) -> dict:
    """The chunk execution validated for this checkpoint (`record_execution`), as ActionExpert kwargs;
    {} when none was recorded (the caller's default, ensemble, applies)."""
    rec = meta.get("execution")
    if rec is None:
        return {}
    if (not isinstance(rec, dict) or rec.get("mode") not in EXECUTION_MODES or not isinstance(rec.get("exec_steps"), int)
            or not isinstance(rec.get("clear_on_switch", False), bool)):
        raise SchemaError("checkpoint meta.execution: expected {'mode': ensemble|receding, 'exec_steps': int[, "
                          f"'clear_on_switch': bool]}}, got {rec!r}")
    return {"execution": rec["mode"], "exec_steps": rec["exec_steps"],
            "clear_on_switch": rec.get("clear_on_switch", False)}


def record_execution(directory: Path | str, mode: str, exec_steps: int, evidence: dict,
                     clear_on_switch: bool = False) -> None:
    """Store the chunk execution picked on validation episodes (and the figures that picked it) in
    config.json, so every user of the checkpoint (agent, demo, ROS node, benchmarks) runs it the same way.
    `clear_on_switch`: drop the pending chunks when the subtask changes (ActionExpert)."""
    if mode not in EXECUTION_MODES:
        raise SchemaError(f"execution mode {mode!r}: expected one of {EXECUTION_MODES}")
    path = Path(directory) / CONFIG
    read_config(directory)  # a valid checkpoint config, or a clear error
    raw = json.loads(path.read_text())
    raw.setdefault("meta", {})["execution"] = {"mode": mode, "exec_steps": int(exec_steps),
                                               "clear_on_switch": bool(clear_on_switch), "evidence": evidence}
    tmp = path.with_name(CONFIG + ".tmp")
    tmp.write_text(json.dumps(raw, indent=2) + "\n")
    tmp.replace(path)


#: Parameters that `add_shape_harmonics` adds (zero-initialised: the loaded model acts as before).
SHAPE_HARMONICS_KEYS = ("shape_in.", "head.coef_shape.")


def load_checkpoint(directory: Path | str, map_location: str | torch.device = "cpu",
                    add_shape_harmonics: bool = False) -> tuple[PolicyModel, dict]:
    """`add_shape_harmonics`: load a checkpoint trained without them into the same architecture with
    them switched on (fine-tuning starts from its behaviour, shape_harmonics.py)."""
    directory = Path(directory)
    cfg, meta = read_config(directory)
    if add_shape_harmonics and not cfg.shape_harmonics:
        cfg = PolicyConfig.from_dict({**cfg.to_dict(), "shape_harmonics": True})
    else:
        add_shape_harmonics = False
    for name in (WEIGHTS, STATS):
        if not (directory / name).is_file():
            raise SchemaError(f"checkpoint {directory}: missing {name}")
    try:
        tensors = load_file(str(directory / WEIGHTS), device="cpu")
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise SchemaError(f"checkpoint {directory / WEIGHTS}: cannot be read ({e})") from None
    model = PolicyModel(cfg)
    expected = model.state_dict()
    missing = sorted(k for k in set(expected) - set(tensors) if not (add_shape_harmonics and k.startswith(SHAPE_HARMONICS_KEYS)))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [f"{k}: checkpoint {tuple(tensors[k].shape)} vs config {tuple(v.shape)}"
             for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s), e.g. {unexpected[:3]}")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatch(es), e.g. {wrong[:3]}")
        raise SchemaError(f"checkpoint {directory}: weights do not match config.json ({'; '.join(parts)})")
    model.load_state_dict(tensors, strict=not add_shape_harmonics)
    stats = json.loads((directory / STATS).read_text())
    stored = model.normalizer.as_dict()
    diff = {k: (stats.get(k), v) for k, v in stored.items() if stats.get(k) is None or abs(stats[k] - v) > 1e-5 * (1 + abs(v))}
    if diff:
        raise SchemaError(f"checkpoint {directory}: {STATS} disagrees with the weights' normalization buffers: {diff}")
    return model.to(map_location).eval(), meta
