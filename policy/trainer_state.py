"""Optimizer state as safetensors + JSON (never pickle), so `vla train policy` can resume."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vla_stack.schema import SchemaError

TENSORS, META = "trainer.safetensors", "trainer.json"


def save_trainer_state(directory: Path, optimizer: torch.optim.Optimizer, step: int, extra: dict | None = None) -> None:
    sd = optimizer.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for name, value in st.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"state.{pid}.{name}"] = t.detach().cpu().contiguous()
    save_file(tensors, str(directory / TENSORS))
    (directory / META).write_text(json.dumps({"step": step, "param_groups": sd["param_groups"], **(extra or {})},
                                             indent=2) + "\n")


def load_trainer_state(directory: Path, optimizer: torch.optim.Optimizer) -> dict:
    if not (directory / TENSORS).is_file() or not (directory / META).is_file():
        raise SchemaError(f"{directory}: no trainer state ({TENSORS} + {META}) to resume from")
    meta = json.loads((directory / META).read_text())
    state: dict[int, dict] = {}
    for key, t in load_file(str(directory / TENSORS)).items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = t
    current = optimizer.state_dict()
    if len(current["param_groups"]) != len(meta["param_groups"]):
        raise SchemaError(f"{directory}: optimizer has {len(current['param_groups'])} parameter groups, "
                          f"the saved state {len(meta['param_groups'])}")
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta
