"""Machine-readable benchmark results: every script under benchmarks/ writes through here.

A result file records what was measured (a flat `metrics` dict with units in the names),
where (device), when (date), how (command line) and on which code (git revision), so a
figure quoted in the README can always be traced back to the run that produced it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def git_revision() -> str:
    """VLA_GIT_REVISION wins: a copied tree (e.g. on a GPU box) may carry a stale .git."""
    if os.environ.get("VLA_GIT_REVISION"):
        return os.environ["VLA_GIT_REVISION"]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).parent).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def describe_device() -> str:
    parts = [f"{platform.machine()} {os.cpu_count()} cores"]
    try:
        import torch

        if torch.cuda.is_available():
            parts.insert(0, torch.cuda.get_device_name(0))
    except ImportError:
        pass
    return ", ".join(parts)


def write_results(name: str, metrics: dict[str, float], *, details: dict | None = None,
                  out_dir: Path | str | None = None) -> Path:
    """Write `<out_dir>/<name>.json`; metrics must be flat name -> number (units in the name)."""
    for k, v in metrics.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise TypeError(f"metric {k!r} must be a number, got {type(v).__name__}")
    out = Path(out_dir or os.environ.get("VLA_RESULTS_DIR", RESULTS_DIR))
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": describe_device(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "metrics": metrics,
        "details": details or {},
    }
    path = out / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
    tmp.replace(path)
    return path


def _jsonable(x):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:
        pass
    return str(x)


def print_table(rows: list[dict], title: str = "") -> None:
    """A plain aligned table on stdout (rich is nicer, but logs read this everywhere)."""
    if not rows:
        return
    cols = list(rows[0].keys())
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    widths = {c: max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in cols}
    if title:
        print(title)
    print("  ".join(c.ljust(widths[c]) for c in cols))
    print("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        print("  ".join(fmt(r.get(c, "")).ljust(widths[c]) for c in cols))
