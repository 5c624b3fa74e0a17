"""vla_stack.datasets: LeRobotDataset-v3-compatible recording, reading and training windows.

Imports are lazy so `import vla_stack.datasets` stays light (no torch/av) for tools that
only read metadata.
"""

from __future__ import annotations

_EXPORTS = {
    "DatasetError": "vla_stack.datasets.errors",
    "DatasetSpec": "vla_stack.datasets.layout",
    "DatasetWriter": "vla_stack.datasets.writer",
    "DatasetReader": "vla_stack.datasets.reader",
    "WindowDataset": "vla_stack.datasets.window",
    "validate_dataset": "vla_stack.datasets.validate",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vla_stack.datasets' has no attribute {name!r}")
