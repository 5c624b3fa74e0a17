"""The shipped weights: planner, world model and action expert gathered in one folder, with a
manifest (sizes, SHA-256, where each came from, the sim settings they expect) and loading that
checks all of it before anything runs.

    vla ship --planner DIR --world-model DIR --policy DIR --out shipped   # pack (copies; the world model linked)
    agent = load_agent("shipped")                                         # validate + load
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from vla_stack import bench, schema

from .agent import Agent
from .config import AgentConfig

FORMAT = "vla_stack.shipped/1"
MANIFEST = "manifest.json"
COMPONENTS = ("planner", "world_model", "policy")
MAX_TOTAL_BYTES = 50 * 1024 * 1024
REPO = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO / "shipped"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(root: Path | str = DEFAULT_DIR) -> dict:
    """The manifest, after checking every listed file exists with its size and hash."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise schema.SchemaError(f"shipped weights {root}: no {MANIFEST} (pack them with `vla ship`)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise schema.SchemaError(f"shipped weights {path}: not valid JSON ({e})") from None
    if manifest.get("format") != FORMAT:
        raise schema.SchemaError(f"shipped weights {path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    comps = manifest.get("components", {})
    missing = [c for c in COMPONENTS if c not in comps]
    if missing:
        raise schema.SchemaError(f"shipped weights {path}: components {missing} missing")
    total = 0
    for comp in COMPONENTS:
        for name, entry in comps[comp]["files"].items():
            f = root / comp / name
            if not f.is_file():
                raise schema.SchemaError(f"shipped weights: {comp}/{name} listed in {MANIFEST} but missing")
            size = f.stat().st_size
            if size != entry["bytes"] or _sha256(f) != entry["sha256"]:
                raise schema.SchemaError(f"shipped weights: {comp}/{name} differs from {MANIFEST} "
                                         f"({size} bytes, expected {entry['bytes']}; or its SHA-256 differs)")
            total += size
    if total > MAX_TOTAL_BYTES:
        raise schema.SchemaError(f"shipped weights: {total / 2**20:.1f} MiB, more than {MAX_TOTAL_BYTES / 2**20:.0f} MiB")
    return manifest


def load_agent(root: Path | str = DEFAULT_DIR, config: AgentConfig | None = None, device: str = "cpu") -> Agent:
    """Check the manifest, load each part with its own validating loader, compose the agent."""
    from vla_stack.planner.learned import LearnedPlanner  # loads MiniLM: before any EGL context
    from vla_stack.policy import ActionExpert
    from vla_stack.world_model.predictor import WorldModel

    from vla_stack import text

    root = Path(root)
    read_manifest(root)
    config = (config or AgentConfig()).validate()
    text.default_encoder()("open the drawer")  # MiniLM now: loading it after MuJoCo's EGL context can crash
    planner = LearnedPlanner.load(root / "planner") if config.mode != "flat" else None
    world_model = WorldModel.load(root / "world_model", device=device) if config.mode == "full" else None
    policy = ActionExpert.load(root / "policy", execution=config.execution, device=device)
    camera = world_model.config.camera if world_model is not None else "scene"
    return Agent(planner, world_model, policy, config, world_model_camera=camera)


def sim_settings(root: Path | str = DEFAULT_DIR) -> dict:
    """Observation settings the action expert was trained with (points per cloud, image size)."""
    return dict(read_manifest(root).get("sim", {}))


@dataclass
class PackConfig:
    """Copy three checkpoints into one folder and write its manifest (sizes, hashes, sources)."""

    planner: Path = Path("benchmarks/results/planner_checkpoint")
    world_model: Path = Path("world_model/checkpoint_front_objects_colour")
    policy: Path = Path("benchmarks/results/compositional_s16/checkpoint")
    out: Path = DEFAULT_DIR
    n_points: int = 1024  # points per cloud the action expert was trained on
    image_size: int = 128
    notes: dict[str, str] = field(default_factory=dict)  # component -> where it came from (recipe)
    link: tuple[str, ...] = ("world_model", "policy")  # parts linked (relative symlink) rather than copied, when
    # inside this repository: checkpoints committed where nothing overwrites them (the world model's folder, a
    # session's results folder for the action expert); the planner's folder is retrained in place, so it is
    # copied (frozen)


def pack(cfg: PackConfig) -> int:
    out = Path(cfg.out)
    comps = {}
    for comp, src in (("planner", cfg.planner), ("world_model", cfg.world_model), ("policy", cfg.policy)):
        src = Path(src)
        if not src.is_dir():
            raise schema.SchemaError(f"{comp}: checkpoint directory {src} not found")
        dst = out / comp
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        files = {}
        for f in sorted(src.iterdir()):
            if f.is_file() and f.suffix in (".json", ".safetensors"):
                target = f.resolve()
                if comp in cfg.link and target.is_relative_to(REPO):  # committed elsewhere: link, no duplicate
                    (dst / f.name).symlink_to(os.path.relpath(target, dst.resolve()))
                else:
                    shutil.copyfile(f, dst / f.name)
                files[f.name] = {"bytes": f.stat().st_size, "sha256": _sha256(f)}
        comps[comp] = {"source": str(src), "files": files, "notes": cfg.notes.get(comp, "")}
    manifest = {"format": FORMAT, "git_revision": bench.git_revision(), "components": comps,
                "sim": {"n_points": cfg.n_points, "image_size": cfg.image_size}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    read_manifest(out)
    total = sum(e["bytes"] for c in comps.values() for e in c["files"].values())
    print(f"packed {len(comps)} checkpoints into {out} ({total / 2**20:.1f} MiB)")
    return 0
