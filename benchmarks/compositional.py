"""Compositional skill transfer of the whole stack, with its ablations, in one run (issue 8).

Sections (each an episode list run in parallel worker processes, the sim judging success):
  splits      full stack on train / heldout_compositions / heldout_paraphrases
  ablations   flat policy (instruction-conditioned, no planner / world model), no world model,
              PointNet encoder, Transformer backbone: on `ablation_split`
  chains      CALVIN-style average completed length over the suite's 5-instruction chains
  yaw         workspace_yaw 0/90/180/270 for the equivariant and the PointNet encoder (both
              trained at yaw 0), given the true subtask so only the encoder is measured
  embodiment  the full stack trained on the Panda arm, evaluated zero-shot on the UR5e arm

Every episode records, per subtask of its task, whether the simulator reached it, counted it
done, and how many ticks after the previous one's completion the agent started on it
(`agent/rollout.py` SubtaskTimeline); the report breaks the held-out split down by subtask
(seen in a training task or not) and by skill, so it shows WHERE the stack fails: a subtask
reached but never done is the action expert's; one done by the sim but never handed over
(no agent tick) is the planner's / the hand-off's.

    python benchmarks/compositional.py --workers 15                 # the shipped weights, real settings
    python benchmarks/compositional.py --train.enabled --train.minutes 2 --workers 15   # GPU box: see below
    python benchmarks/compositional.py --report-only                # Markdown + PNG from the committed JSON
    python benchmarks/compositional.py --sections splits --lockstep --episodes 8 --seed 10000 --workers 2
                                           # one outcome per layout at any load: for comparing variants

With `--train.enabled` the run first makes its own policies, side by side, from one recipe:
scripted-expert demos of every `train` task (`vla_stack.policy.demos`), the same frames
re-annotated with their instruction for the flat baseline (`agent/flat_data.py`), and four
trainings at once on the GPU with one time budget each (equivariant+Mamba, PointNet+Mamba,
equivariant+Transformer, flat equivariant+Mamba); then it benchmarks them with the shipped
planner and world model.

Writes benchmarks/results/compositional.json (bench.write_results), compositional.md and
compositional_*.png. Episode seeds start at `seed` (5000), apart from training demo seeds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "shipped"
SINGLE_SKILL = ("PickRedCube", "PickBlueCube", "OpenDrawer", "CloseDrawer", "PressButton", "PushBlueTowardBowl",
                "PushRedTowardButton")
SPLITS = ("train", "heldout_compositions", "heldout_paraphrases")
SECTIONS = ("splits", "ablations", "chains", "yaw", "embodiment")
# held-out comparisons, report order; handoff_<mode>: the full stack with AgentConfig.handoff = <mode> (--compare-handoff)
ABLATIONS = ("flat", "no_world_model", "pointnet", "transformer", "extra_policy", "handoff_none", "handoff_start_pose")
OPTIONAL_ABLATIONS = ABLATIONS[ABLATIONS.index("extra_policy"):]  # reported only when asked for


def _handoff_of(variant: str) -> str | None:
    """`handoff_none` -> "none"; None for a variant that is not a hand-off comparison."""
    return variant[len("handoff_"):] if variant.startswith("handoff_") else None
MAX_ISSUED = 20  # agent subtask changes kept per episode (a flickering planner could issue hundreds)
TARGETS = {"heldout_success": 0.70, "chain_length": 3.0, "yaw_drop_points": 10.0, "above_flat_points": 10.0}


@dataclass
class TrainVariants:
    """The side-by-side training stage (off by default: the shipped policy is benchmarked)."""

    enabled: bool = False
    out: Path = Path("runs/compositional")
    demo_episodes: int = 30  # kept scripted-expert episodes per train task
    demo_seed: int = 0  # episode attempt k of a task uses env seed demo_seed + k (evaluation uses `seed`)
    noise_pos_m: float = 0.0  # DART noise on the executed actions (labels stay clean), see policy/demos.py
    noise_rot_rad: float = 0.0
    noisy_fraction: float = 0.5
    n_points: int = 512
    image_size: int = 128
    minutes: float = 2.0  # training time budget of every variant (they train at the same time)
    batch_size: int = 64
    history: int = 8
    lr: float = 5e-4
    warmup_steps: int = 100
    max_points: int = 0
    seed: int = 0
    demo_workers: int = 0  # 0: one process per task
    variants: tuple[str, ...] = ("full", "pointnet", "transformer", "flat")
    object_channels: bool = False  # every variant gets the per-point named-object channels (policy/object_channels.py)
    device: str = "auto"


@dataclass
class CompositionalConfig:
    planner: str = str(SHIPPED / "planner")  # or "oracle": the sim's true subtask (tests only)
    world_model: Path = SHIPPED / "world_model"
    policy: Path = SHIPPED / "policy"  # equivariant encoder + Mamba, subtask-conditioned (the stack's)
    policy_pointnet: Path | None = None  # same data and recipe, PointNet encoder
    policy_transformer: Path | None = None  # same, Transformer backbone
    policy_flat: Path | None = None  # same, conditioned on the instruction (agent/flat_data.py)
    policy_extra: Path | None = None  # any other action expert to run in the full stack on the held-out split
    policy_extra_n_points: int = 1024  # the points per cloud it was trained with
    handoff: str = "start_pose"  # every variant's AgentConfig.handoff (start_pose | none)
    compare_handoff: str | None = None  # also run the full stack with this hand-off (variant handoff_<mode>)
    episodes: int = 2  # per task: the held-out split, full stack and ablations
    episodes_other: int = 1  # per task: the other splits, the yaw sweep, the other embodiment
    ablation_split: str = "heldout_compositions"
    chain_variants: tuple[str, ...] = ("full", "flat")
    n_chains: int = 6  # of the suite's chains
    yaw_degrees: tuple[int, ...] = (0, 90, 180, 270)
    yaw_tasks: tuple[str, ...] = SINGLE_SKILL
    embodiment_robot: str = "ur5e"
    tasks_per_split: int = 0  # 0: every task (tests: 1)
    max_steps: int = 0  # per subtask-count episode limit override (0: the env's own limit; tests: tiny)
    n_points: int = 0  # 0: from the shipped manifest's sim settings (else 512)
    image_size: int = 0
    seed: int = 5000
    workers: int = 1
    time_limit_s: float = 0.0  # stop starting new episodes after this (0: none); skipped ones are counted
    sections: tuple[str, ...] = SECTIONS  # run only these (e.g. `--sections splits` for a quick diagnosis)
    realtime: bool = True  # background jobs get the rest of each 50 ms tick, as on a robot (agent/rollout.py)
    lockstep: bool = False  # instead: every tick waits for the background jobs (one outcome per layout; rollout.py)
    planner_every_ticks: int = 1  # AgentConfig's; 10 with --no-realtime reproduces the session-3 hand-off
    first_plan_timeout_s: float = 5.0  # AgentConfig's; 0: the first subtask comes from the planner's thread on tick 2+
    name: str = "compositional"
    out_dir: Path = ROOT / "benchmarks" / "results"
    report_only: bool = False  # only redraw Markdown + PNG from <out_dir>/<name>.json
    train: TrainVariants = field(default_factory=TrainVariants)


# --------------------------------------------------------------------------- the work list
def variants(cfg: CompositionalConfig) -> dict[str, tuple[str, Path | None]]:
    """variant -> (agent mode, policy checkpoint); a variant without its checkpoint is skipped."""
    return {"full": ("full", cfg.policy), "no_world_model": ("no_world_model", cfg.policy),
            "flat": ("flat", cfg.policy_flat), "pointnet": ("full", cfg.policy_pointnet),
            "transformer": ("full", cfg.policy_transformer), "extra_policy": ("full", cfg.policy_extra),
            **{f"handoff_{h}": ("full", cfg.policy if cfg.compare_handoff == h else None) for h in ("none", "start_pose")}}


def _split_items(split: str, limit: int) -> dict[str, list[str]]:
    from vla_stack.sim.tasks import load_splits

    items: dict[str, list[str]] = {}
    for it in load_splits()[split]:
        items.setdefault(it["task"], []).append(it["instruction"])
    names = list(items)[:limit] if limit else list(items)
    return {t: items[t] for t in names}


def work_units(cfg: CompositionalConfig) -> list[dict]:
    """Every episode / chain of the run, most important first (a time limit cuts the tail)."""
    from vla_stack.sim.tasks import get_task, load_splits

    avail = {v for v, (_, p) in variants(cfg).items() if p is not None}
    units: list[dict] = []

    def episodes(section, variant, split, tasks, robot="panda", yaw=0, planner=None, n=None):
        for task, instructions in tasks.items():
            for e in range(cfg.episodes if n is None else n):
                units.append(dict(section=section, variant=variant, split=split, task=task,
                                  instruction=instructions[e % len(instructions)], robot=robot, yaw=yaw,
                                  seed=cfg.seed + e, planner=planner or cfg.planner))

    def chains(v):
        if v in avail:
            for k, chain in enumerate(load_splits()["chains"][: cfg.n_chains]):
                units.append(dict(section="chains", variant=v, split="chains", task=f"chain{k}", chain=chain,
                                  robot="panda", yaw=0, seed=cfg.seed + k, planner=cfg.planner))

    # order = priority under a time limit: the headline comparison, the symmetry check, the rest
    held = _split_items(cfg.ablation_split, cfg.tasks_per_split)
    episodes("splits", "full", cfg.ablation_split, held)
    for v in ("flat", "no_world_model", "pointnet", "transformer"):
        if v in avail:
            episodes("ablations", v, cfg.ablation_split, held)
    if "extra_policy" in avail:
        start = len(units)
        episodes("ablations", "extra_policy", cfg.ablation_split, held)
        for u in units[start:]:
            u["n_points"] = cfg.policy_extra_n_points
    if cfg.compare_handoff:
        episodes("ablations", f"handoff_{cfg.compare_handoff}", cfg.ablation_split, held)
    yaw_tasks = {t: [get_task(t).instruction] for t in (cfg.yaw_tasks[: cfg.tasks_per_split or None])}
    for deg in cfg.yaw_degrees:
        for v in ("full", "pointnet"):
            if v in avail:
                episodes("yaw", v, "yaw", yaw_tasks, yaw=deg, planner="oracle", n=cfg.episodes_other)
    if "full" in cfg.chain_variants:
        chains("full")
    episodes("embodiment", "full", cfg.ablation_split, held, robot=cfg.embodiment_robot, n=cfg.episodes_other)
    for split in SPLITS:
        if split != cfg.ablation_split:
            episodes("splits", "full", split, _split_items(split, cfg.tasks_per_split), n=cfg.episodes_other)
    for v in cfg.chain_variants:
        if v != "full":
            chains(v)
    unknown = set(cfg.sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)}; valid: {', '.join(SECTIONS)}")
    units = [u for u in units if u["section"] in cfg.sections]
    for i, u in enumerate(units):
        u["id"] = i
    return units


# --------------------------------------------------------------------------- one worker process
_CACHE: dict = {}


def _parts(cfg: CompositionalConfig, variant: str):
    """Loaded once per process: text encoder first (before any EGL context), then the models."""
    from vla_stack import text

    if "text" not in _CACHE:
        _CACHE["text"] = text.default_encoder()
        _CACHE["text"]("open the drawer")
    mode, policy_dir = variants(cfg)[variant]
    key = ("policy", str(policy_dir))
    if key not in _CACHE:
        from vla_stack.policy import ActionExpert

        _CACHE[key] = ActionExpert.load(policy_dir)
    wm = None
    if mode == "full":
        if "wm" not in _CACHE:
            from vla_stack.world_model.predictor import WorldModel

            _CACHE["wm"] = WorldModel.load(cfg.world_model)
        wm = _CACHE["wm"]
    return mode, wm, _CACHE[key]


def _execution_of(policy_dir: Path) -> dict:
    """How each variant's chunks are executed: as validated for its checkpoint (meta.execution), else ensemble."""
    from vla_stack.policy.checkpoint import read_config, recorded_execution

    rec = recorded_execution(read_config(policy_dir)[1])
    return {"mode": rec.get("execution", "ensemble"), "exec_steps": rec.get("exec_steps"),
            "clear_on_switch": rec.get("clear_on_switch", False)}


def _planner(cfg: CompositionalConfig, which: str, env):
    from vla_stack.agent.oracle import OraclePlanner

    if which == "oracle":
        return OraclePlanner(env)
    if ("planner", which) not in _CACHE:
        from vla_stack.planner.learned import LearnedPlanner

        _CACHE[("planner", which)] = LearnedPlanner.load(which)
    return _CACHE[("planner", which)]


def run_unit(args: tuple[dict, dict]) -> dict:
    unit, cfg_dict = args
    import torch

    torch.set_num_threads(1)
    from vla_stack.agent import Agent, AgentConfig
    from vla_stack.agent.config import sim_safety
    from vla_stack.agent.rollout import make_env, run_chain, run_episode
    from vla_stack.sim.registration import max_episode_steps

    cfg = _config_from_dict(cfg_dict)
    t0 = time.monotonic()
    mode, wm, policy = _parts(cfg, unit["variant"])
    yaw = math.radians(unit["yaw"])
    first_task = unit["chain"][0]["task"] if "chain" in unit else unit["task"]
    env = make_env(first_task, unit["robot"], unit.get("n_points", cfg.n_points), cfg.image_size, yaw)
    planner = _planner(cfg, unit["planner"], env) if mode != "flat" else None
    camera = wm.config.camera if wm is not None else "scene"
    handoff = _handoff_of(unit["variant"]) or cfg.handoff
    agent_cfg = AgentConfig(mode=mode, safety=sim_safety(yaw), planner_every_ticks=cfg.planner_every_ticks,
                            first_plan_timeout_s=cfg.first_plan_timeout_s, handoff=handoff)
    agent = Agent(planner, wm, policy, agent_cfg, world_model_camera=camera)
    steps = (lambda n: cfg.max_steps) if cfg.max_steps else max_episode_steps
    out = {k: v for k, v in unit.items() if k != "chain"}
    try:
        if "chain" in unit:
            out["completed"] = run_chain(agent, env, unit["chain"], seed=unit["seed"], steps_per_task=steps,
                                         realtime=cfg.realtime, lockstep=cfg.lockstep)
        else:
            r = run_episode(agent, env, unit["instruction"], seed=unit["seed"], max_steps=steps(len(env.task.subtasks)),
                            realtime=cfg.realtime, lockstep=cfg.lockstep)
            out.update(success=r.success, steps=r.steps, subtasks_completed=r.subtasks_completed,
                       n_subtasks=r.n_subtasks, agent_done=r.agent_done, agent_failed=r.agent_failed,
                       max_step_ms=round(r.max_step_ms, 1), median_step_ms=round(r.median_step_ms, 1),
                       subtasks=r.subtasks, issued=r.issued[:MAX_ISSUED])
    except Exception as e:  # noqa: BLE001  (one broken episode is recorded, not the end of the run)
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        agent.close()
        env.close()
    out["wall_s"] = round(time.monotonic() - t0, 2)
    return out


def _config_from_dict(d: dict) -> CompositionalConfig:
    fields = {f.name: f for f in dataclasses.fields(CompositionalConfig)}
    kw = {}
    for k, v in d.items():
        if k == "train":
            continue  # workers only evaluate
        if k in ("world_model", "policy", "policy_pointnet", "policy_transformer", "policy_flat", "policy_extra", "out_dir"):
            v = None if v is None else Path(v)
        elif isinstance(v, list):
            v = tuple(v)
        kw[k] = v
    return CompositionalConfig(**{k: v for k, v in kw.items() if k in fields})


# --------------------------------------------------------------------------- aggregation
def _rate(rows: list[dict]) -> float:
    done = [r for r in rows if "success" in r]
    return sum(r["success"] for r in done) / len(done) if done else float("nan")


def summarize(cfg: CompositionalConfig, results: list[dict], skipped: int) -> tuple[dict, dict]:
    metrics: dict[str, float] = {}
    sel = lambda **kw: [r for r in results if all(r.get(k) == v for k, v in kw.items())]  # noqa: E731
    for split in SPLITS:
        rows = sel(section="splits", variant="full", split=split)
        if rows:
            metrics[f"success_{split}_full"] = _rate(rows)
    for v in ABLATIONS:
        rows = sel(section="ablations", variant=v)
        if rows:
            metrics[f"success_{cfg.ablation_split}_{v}"] = _rate(rows)
    for v in cfg.chain_variants:
        rows = [r for r in sel(section="chains", variant=v) if "completed" in r]
        if rows:
            metrics[f"chain_avg_len_{v}"] = sum(r["completed"] for r in rows) / len(rows)
    for v, enc in (("full", "equivariant"), ("pointnet", "pointnet")):
        for deg in cfg.yaw_degrees:
            rows = sel(section="yaw", variant=v, yaw=deg)
            if rows:
                metrics[f"success_yaw{deg}_{enc}"] = _rate(rows)
        base = metrics.get(f"success_yaw0_{enc}")
        drops = [100 * (base - metrics[f"success_yaw{d}_{enc}"]) for d in cfg.yaw_degrees
                 if d != 0 and f"success_yaw{d}_{enc}" in metrics and base is not None]
        if drops:
            metrics[f"yaw_max_drop_points_{enc}"] = max(drops)
    rows = sel(section="embodiment")
    if rows:
        metrics[f"success_{cfg.ablation_split}_full_{cfg.embodiment_robot}"] = _rate(rows)
    metrics["episodes_run"] = sum(1 for r in results if "error" not in r)
    metrics["episodes_errored"] = sum(1 for r in results if "error" in r)
    metrics["episodes_skipped_time_limit"] = skipped
    metrics["mean_subtask_completion_heldout_full"] = _completion(sel(section="splits", variant="full",
                                                                     split=cfg.ablation_split))
    held_rows = {v: sel(section="splits" if v == "full" else "ablations", variant=v, split=cfg.ablation_split)
                 for v in ("full", *ABLATIONS)}
    for v, rows in held_rows.items():
        for skill, c in by_skill(subtask_breakdown(rows)).items():
            if c["reached"]:
                metrics[f"subtask_success_{cfg.ablation_split}_{v}_{skill}"] = c["done"] / c["reached"]
    lags = [s["lag_ticks"] for r in held_rows["full"] for s in r.get("subtasks", []) if s.get("lag_ticks") is not None]
    if lags:
        metrics["handoff_lag_median_ticks_heldout_full"] = float(sorted(lags)[len(lags) // 2])
    held = metrics.get(f"success_{cfg.ablation_split}_full")
    flat = metrics.get(f"success_{cfg.ablation_split}_flat")
    targets = {
        "full stack on held-out compositions >= 70%": _check(held, lambda x: x >= TARGETS["heldout_success"]),
        "full stack clearly above the flat policy (>= 10 points)": _check(
            None if held is None or flat is None else 100 * (held - flat), lambda x: x >= TARGETS["above_flat_points"]),
        "average chain length >= 3.0 of 5": _check(metrics.get("chain_avg_len_full"), lambda x: x >= TARGETS["chain_length"]),
        "equivariant encoder within 10 points of yaw 0 at every yaw": _check(
            metrics.get("yaw_max_drop_points_equivariant"), lambda x: x <= TARGETS["yaw_drop_points"]),
    }
    base = metrics.get("success_yaw0_equivariant")
    if base is not None and base < 0.2:  # no success to lose: a small drop says nothing about equivariance
        targets["equivariant encoder within 10 points of yaw 0 at every yaw"] = f"not measurable (yaw-0 success {base:.2f})"
    return metrics, targets


def _train_subtask_texts() -> set[str]:
    from vla_stack.sim.tasks import get_task, split_task_names

    return {text for t in split_task_names("train") for text in get_task(t).subtask_texts}


def subtask_breakdown(rows: list[dict]) -> list[dict]:
    """Per subtask text over episodes: reached (the sim got there), done (the sim counted it),
    handed over (the agent acted on it), median hand-off lag, and whether a train task has it."""
    from vla_stack.sim.tasks import subtask_skill

    seen = _train_subtask_texts()
    table: dict[str, dict] = {}
    for r in rows:
        for s in r.get("subtasks", []):
            c = table.setdefault(s["text"], {"text": s["text"], "skill": subtask_skill(s["text"]) or "?", "seen": s["text"] in seen,
                                             "reached": 0, "done": 0, "acted": 0, "lags": []})
            c["reached"] += bool(s["reached"])
            c["done"] += bool(s["reached"] and s["done"])
            c["acted"] += s["agent_tick"] is not None
            if s.get("lag_ticks") is not None:
                c["lags"].append(s["lag_ticks"])
    out = []
    for c in table.values():
        lags = sorted(c.pop("lags"))
        out.append({**c, "median_lag_ticks": lags[len(lags) // 2] if lags else None})
    return sorted(out, key=lambda c: (c["skill"], c["text"]))


def by_skill(breakdown: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for c in breakdown:
        s = out.setdefault(c["skill"], {"reached": 0, "done": 0})
        s["reached"] += c["reached"]
        s["done"] += c["done"]
    return out


def _completion(rows: list[dict]) -> float:
    rows = [r for r in rows if "subtasks_completed" in r]
    return sum(r["subtasks_completed"] / r["n_subtasks"] for r in rows) / len(rows) if rows else float("nan")


def _check(value, ok) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    return "met" if ok(value) else "NOT met"


# --------------------------------------------------------------------------- training stage
VARIANT_MODELS = {"full": dict(encoder="equivariant", backbone="mamba"), "pointnet": dict(encoder="pointnet", backbone="mamba"),
                  "transformer": dict(encoder="equivariant", backbone="transformer"),
                  "flat": dict(encoder="equivariant", backbone="mamba")}


def train_variants(t: TrainVariants) -> dict[str, Path]:
    """Demos -> flat copy -> the variants trained at the same time; returns variant -> final checkpoint."""
    import subprocess

    from vla_stack.agent.flat_data import flat_dataset
    from vla_stack.policy.demos import DemosConfig, record_all
    from vla_stack.sim.tasks import split_task_names

    out = Path(t.out)
    demos, flat = out / "demos", out / "demos_flat"
    t0 = time.monotonic()
    if not demos.is_dir():
        rows = record_all(DemosConfig(out=demos, tasks=tuple(split_task_names("train")), episodes=t.demo_episodes,
                                      seed=t.demo_seed, n_points=t.n_points, image_size=t.image_size,
                                      noise_pos_m=t.noise_pos_m, noise_rot_rad=t.noise_rot_rad,
                                      noisy_fraction=t.noisy_fraction, workers=t.demo_workers))
        (out / "demos_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
        print(f"[train] demos: {sum(r['episodes'] for r in rows)} episodes, {sum(r['frames'] for r in rows)} frames, "
              f"{time.monotonic() - t0:.0f} s", flush=True)
    if "flat" in t.variants and not flat.is_dir():
        flat_dataset(demos, flat)
    procs = {}
    for v in t.variants:
        run_dir = out / v
        if (run_dir / "final" / "config.json").is_file():
            continue
        model = VARIANT_MODELS[v]
        code = ("from pathlib import Path; from vla_stack.policy.train import TrainConfig, train; "
                "from vla_stack.policy.config import PolicyConfig; "
                f"train(TrainConfig(dataset=Path({str(flat if v == 'flat' else demos)!r}), out=Path({str(run_dir)!r}), "
                f"model=PolicyConfig(encoder={model['encoder']!r}, backbone={model['backbone']!r}, "
                f"object_channels={t.object_channels}), steps=10**7, "
                f"time_budget_min={t.minutes}, batch_size={t.batch_size}, history={t.history}, lr={t.lr}, "
                f"warmup_steps={t.warmup_steps}, max_points={t.max_points}, seed={t.seed}, device={t.device!r}, "
                f"save_every=10**7, progress=False))")
        run_dir.mkdir(parents=True, exist_ok=True)
        log = open(run_dir / "train.log", "w")
        procs[v] = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    for v, p in procs.items():
        if p.wait() != 0:
            raise RuntimeError(f"training {v} failed: see {out / v / 'train.log'}")
    print(f"[train] {len(procs)} variants trained, {time.monotonic() - t0:.0f} s since the start", flush=True)
    return {v: out / v / "final" for v in t.variants}


def _training_record(cfg: CompositionalConfig) -> dict:
    """What each variant's training did (steps, final loss) and the demos it learned from."""
    out = Path(cfg.train.out)
    rec = {"demos": json.loads((out / "demos_summary.json").read_text()) if (out / "demos_summary.json").is_file() else None}
    for v in cfg.train.variants:
        conf = out / v / "final" / "config.json"
        if conf.is_file():
            c = json.loads(conf.read_text())
            rec[v] = {"meta": c.get("meta", {}), "encoder": c.get("encoder"), "backbone": c.get("backbone"),
                      "parameters_bytes": (out / v / "final" / "model.safetensors").stat().st_size}
    return rec


# --------------------------------------------------------------------------- run
def run(cfg: CompositionalConfig) -> Path:
    from vla_stack import bench

    if cfg.train.enabled:
        trained = train_variants(cfg.train)
        cfg.policy = trained.get("full", cfg.policy)
        cfg.policy_pointnet = trained.get("pointnet", cfg.policy_pointnet)
        cfg.policy_transformer = trained.get("transformer", cfg.policy_transformer)
        cfg.policy_flat = trained.get("flat", cfg.policy_flat)
        cfg.n_points, cfg.image_size = cfg.train.n_points, cfg.train.image_size
    if not cfg.n_points or not cfg.image_size:
        sim = {}
        if (SHIPPED / "manifest.json").is_file():
            from vla_stack.agent.weights import sim_settings

            sim = sim_settings(SHIPPED)
        cfg.n_points = cfg.n_points or sim.get("n_points", 512)
        cfg.image_size = cfg.image_size or sim.get("image_size", 128)
    units = work_units(cfg)
    cfg_dict = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    print(f"{len(units)} episodes/chains on {cfg.workers} worker(s)", flush=True)
    t0 = time.monotonic()
    results: list[dict] = []
    args = [(u, cfg_dict) for u in units]
    deadline = t0 + cfg.time_limit_s if cfg.time_limit_s else None
    if cfg.workers <= 1:
        for a in args:
            if deadline and time.monotonic() > deadline:
                break
            results.append(run_unit(a))
    else:
        ctx = mp.get_context("spawn")  # a forked child would inherit EGL / torch thread state
        with ctx.Pool(cfg.workers, maxtasksperchild=None) as pool:
            pending = [pool.apply_async(run_unit, (a,)) for a in args]
            for p in pending:  # in priority order; at the deadline, keep whatever has finished
                p.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if not p.ready():
                    break
            results = [p.get() for p in pending if p.ready()]
            pool.terminate()
    skipped = len(units) - len(results)
    wall = time.monotonic() - t0
    metrics, targets = summarize(cfg, results, skipped)
    metrics["wall_s"] = round(wall, 1)
    policy_cfg = json.loads((Path(cfg.policy) / "config.json").read_text())
    notes = []
    if not policy_cfg.get("subgoal_dim"):
        notes.append("the action expert was trained without subgoal latents (subgoal_dim 0): the world model's "
                     "subgoal is predicted and shown but does not reach the actions, so `no_world_model` "
                     "differs from `full` only by timing")
    details = {"config": cfg_dict, "targets": targets, "notes": notes, "episodes": results,
               "subtask_breakdown": {v: subtask_breakdown([r for r in results if r.get("variant") == v
                                                           and r.get("split") == cfg.ablation_split
                                                           and r.get("robot", "panda") == "panda"])
                                     for v in ("full", *ABLATIONS)}}
    details["policy_execution"] = {v: _execution_of(path) for v, (_, path) in variants(cfg).items() if path}
    if cfg.train.enabled:
        details["training"] = _training_record(cfg)
    path = bench.write_results(cfg.name, metrics, details=details, out_dir=cfg.out_dir)
    print(f"wrote {path} ({len(results)} done, {skipped} skipped, {wall:.0f} s)")
    report(path)
    return path


# --------------------------------------------------------------------------- report
def markdown(record: dict) -> str:
    m, d = record["metrics"], record["details"]
    cfg = d["config"]
    held = cfg["ablation_split"]
    fmt = lambda k: "-" if k not in m else f"{m[k]:.2f}"  # noqa: E731
    count = lambda **kw: sum(1 for r in d["episodes"] if all(r.get(a) == b for a, b in kw.items()))  # noqa: E731
    lines = [f"# Compositional benchmark ({record['date']}, {record['device']}, git {record['git_revision'][:12]})", "",
             f"Command: `{record['command']}`; {m.get('episodes_run', 0):.0f} episodes/chains run, "
             f"{m.get('episodes_skipped_time_limit', 0):.0f} skipped (time limit), {m.get('episodes_errored', 0):.0f} errored, "
             f"{cfg['episodes']} episodes per task on {cfg['ablation_split']} "
             f"({cfg.get('episodes_other', cfg['episodes'])} elsewhere), seeds from {cfg['seed']}.", "",
             "## Success (full stack)", "", "| split | success | episodes |", "| --- | --- | --- |"]
    for s in SPLITS:
        lines.append(f"| {s} | {fmt(f'success_{s}_full')} | {count(section='splits', split=s)} |")
    lines += ["", f"## Ablations on {held}", "", "| variant | success | episodes |", "| --- | --- | --- |",
              f"| full stack | {fmt(f'success_{held}_full')} | {count(section='splits', split=held)} |"]
    for v in ABLATIONS:
        if (v == "extra_policy" and not cfg.get("policy_extra")) or (
                _handoff_of(v) and cfg.get("compare_handoff") != _handoff_of(v)):
            continue
        label = f"extra_policy (`{cfg['policy_extra']}`)" if v == "extra_policy" else v
        lines.append(f"| {label} | {fmt(f'success_{held}_{v}')} | {count(section='ablations', variant=v)} |")
    lines += _breakdown_lines(d, held)
    lines += ["", "## CALVIN-style chains (average completed length of 5)", "", "| variant | length | chains |",
              "| --- | --- | --- |"]
    for v in cfg["chain_variants"]:
        lines.append(f"| {v} | {fmt(f'chain_avg_len_{v}')} | {count(section='chains', variant=v)} |")
    lines += ["", "## Workspace yaw (given the true subtask; both encoders trained at yaw 0)", "",
              "| encoder | " + " | ".join(f"{y} deg" for y in cfg["yaw_degrees"]) + " | max drop (points) |",
              "| --- | " + " | ".join("---" for _ in cfg["yaw_degrees"]) + " | --- |"]
    for enc in ("equivariant", "pointnet"):
        lines.append(f"| {enc} | " + " | ".join(fmt(f"success_yaw{y}_{enc}") for y in cfg["yaw_degrees"])
                     + f" | {fmt(f'yaw_max_drop_points_{enc}')} |")
    lines += ["", f"## Cross-embodiment ({held}, trained on panda)", "", "| robot | success |", "| --- | --- |",
              f"| panda | {fmt(f'success_{held}_full')} |",
              f"| {cfg['embodiment_robot']} (zero-shot) | {fmt(f'success_{held}_full_' + cfg['embodiment_robot'])} |",
              "", "## Targets (issue 8)", ""]
    lines += [f"- {k}: **{v}**" for k, v in d["targets"].items()]
    if d.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in d["notes"]]
    errors = [r for r in d["episodes"] if "error" in r]
    if errors:
        lines += ["", f"## Errors ({len(errors)})", ""] + [f"- {r['variant']} {r['task']}: {r['error']}" for r in errors[:10]]
    return "\n".join(lines) + "\n"


def _breakdown_lines(details: dict, held: str) -> list[str]:
    """Where the held-out episodes fail: per subtask (full stack), then per skill for every variant."""
    bd = {v: rows for v, rows in details.get("subtask_breakdown", {}).items() if rows}
    if not bd:
        return []
    lines = ["", f"## Where {held} episodes fail (per subtask)", "",
             "Reached: the simulator got to the subtask; done: it counted it complete; acted: the agent issued it "
             "(the flat policy is told only the instruction); lag: ticks from the previous subtask's completion to the agent's switch. "
             "Reached but not done is the action expert's failure; done (by the sim) but never acted on, or a long "
             "lag, is the planner's / the hand-off's.", ""]
    if "full" in bd:
        lines += ["| subtask (full stack) | skill | in a train task | done / reached | acted | median lag (ticks) |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for c in bd["full"]:
            lag = "-" if c["median_lag_ticks"] is None else str(c["median_lag_ticks"])
            lines.append(f"| {c['text']} | {c['skill']} | {'yes' if c['seen'] else 'no'} | {c['done']} / {c['reached']} "
                         f"| {c['acted']} | {lag} |")
        lines.append("")
    skills = sorted({s for rows in bd.values() for s in by_skill(rows)})
    lines += ["| skill: done / reached | " + " | ".join(bd) + " |", "| --- | " + " | ".join("---" for _ in bd) + " |"]
    for skill in skills:
        cells = []
        for rows in bd.values():
            c = by_skill(rows).get(skill)
            cells.append("-" if not c else f"{c['done']} / {c['reached']}")
        lines.append(f"| {skill} | " + " | ".join(cells) + " |")
    return lines


def report(path: Path) -> None:
    """compositional.md and compositional_*.png beside the JSON (matplotlib optional: GPU boxes lack it)."""
    record = json.loads(Path(path).read_text())
    md = Path(path).with_suffix(".md")
    md.write_text(markdown(record))
    print(f"wrote {md}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plots (re-run with --report-only where it is)")
        return
    m, cfg = record["metrics"], record["details"]["config"]
    held = cfg["ablation_split"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    names = ["full", "flat", "no_world_model", "pointnet", "transformer"]
    names += [v for v in OPTIONAL_ABLATIONS if f"success_{held}_{v}" in m]
    vals = [m.get(f"success_{held}_{v}", float("nan")) for v in names]
    axes[0].bar(names, vals, color=["tab:blue"] + ["tab:gray"] * (len(names) - 1))
    axes[0].axhline(TARGETS["heldout_success"], color="tab:red", ls="--", label="target")
    axes[0].set_title(f"success on {held}")
    axes[0].set_ylim(0, 1)
    axes[0].tick_params(axis="x", rotation=30)
    axes[0].legend()
    axes[1].bar(list(SPLITS), [m.get(f"success_{s}_full", float("nan")) for s in SPLITS])
    axes[1].set_title("full stack per split")
    axes[1].set_ylim(0, 1)
    axes[1].tick_params(axis="x", rotation=15)
    for enc, style in (("equivariant", "o-"), ("pointnet", "s--")):
        axes[2].plot(cfg["yaw_degrees"], [m.get(f"success_yaw{y}_{enc}", float("nan")) for y in cfg["yaw_degrees"]],
                     style, label=enc)
    axes[2].set_xticks(cfg["yaw_degrees"])
    axes[2].set_xlabel("workspace yaw (deg)")
    axes[2].set_ylim(0, 1)
    axes[2].set_title("success vs workspace yaw (trained at 0)")
    axes[2].legend()
    fig.tight_layout()
    png = Path(path).with_name(Path(path).stem + "_success.png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    print(f"wrote {png}")


def main(argv: list[str] | None = None) -> int:
    import tyro

    cfg = tyro.cli(CompositionalConfig, args=argv)
    if cfg.report_only:
        report(Path(cfg.out_dir) / f"{cfg.name}.json")
        return 0
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
