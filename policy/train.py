"""`vla train policy`: behaviour cloning of action chunks on a LeRobot-v3 dataset.

One code path for 1 process and for torchrun (DDP): when WORLD_SIZE > 1 the model is
wrapped in DistributedDataParallel (NCCL on GPUs, gloo on CPU) and each rank draws its own
random windows; rank 0 logs (progress bar, TensorBoard), evaluates and saves. The run
directory holds `last/` (checkpoint + optimizer state: re-running the same command resumes)
and `final/` when done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from vla_stack.schema import SchemaError

from .checkpoint import SHAPE_HARMONICS_KEYS, load_checkpoint, read_config, save_checkpoint
from .config import PolicyConfig
from .model import PolicyModel, chunk_loss
from .normalization import stats_from_dataset
from .object_channels import codes_for
from .trainer_state import load_trainer_state, save_trainer_state

SUBGOAL_KEY = "observation.subgoal_latent"  # (T, D) per window, when the dataset carries world-model latents


@dataclass
class TrainConfig:
    dataset: Path = Path("data/demos")  # LeRobot-v3 dataset, or a folder of them (`vla policy demos`)
    mix_with: tuple[Path, ...] = ()  # more datasets (or folders of them) to train on beside `dataset`
    # each source's share of the windows drawn, `dataset` first (e.g. 0.5 0.5); empty: by their window counts
    mix_weights: tuple[float, ...] = ()
    out: Path = Path("runs/policy")
    model: PolicyConfig = field(default_factory=PolicyConfig)
    steps: int = 20_000
    batch_size: int = 32  # windows per process per step
    history: int = 8  # ticks per training window (the backbone sees them in order)
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    grad_clip: float = 1.0
    max_points: int = 0  # random subset of points per frame (0: all): cheaper steps, robust to density
    time_budget_min: float = 0.0  # >0: stop after this many minutes of training; the LR schedule follows time
    log_every: int = 50
    save_every: int = 1000
    eval_every: int = 0  # ticks between evaluations in simulation (0: off)
    eval_tasks: tuple[str, ...] = ()
    eval_episodes: int = 4
    device: str = "auto"  # auto | cpu | cuda
    bf16: bool = True  # autocast on CUDA
    seed: int = 0
    resume: bool = True  # continue from <out>/last when it exists
    init_from: Path | None = None  # start from this checkpoint's weights (fine-tuning)
    add_shape_harmonics: bool = False  # with init_from: switch on model.shape_harmonics (new weights start at 0)
    solid_cube_masks: bool = False  # with init_from: switch on model.solid_cube_masks (no new weights)
    # with init_from: these objects are marked too (model.marked_objects; e.g. "button", which needs
    # solid_cube_masks: else "the button" marks the red cube as well), in both channels (an object the
    # checkpoint marked as a target only is then marked as a destination too)
    mark_objects: tuple[str, ...] = ()
    # the added weights learn at lr x this: a turn shows in a few percent of frames, and at 1x two GPU
    # fine-tunes left them near zero (benchmarks/results/compositional_s10/README.md)
    new_weights_lr_mult: float = 1.0
    freeze_encoder: bool = False
    # up to this many ticks after each subtask switch inside a window, the policy is shown the previous
    # subtask's text (labels unchanged): in the stack the planner names the next subtask a few ticks after
    # the switch (median 3-7 held out), and a policy still told "pick up" with the cube lifted let go of it
    subtask_lag_max_ticks: int = 0
    progress: bool = True


def _dist_info() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _device(cfg: TrainConfig, local_rank: int) -> torch.device:
    want = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if want == "cuda":
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device(want)


def embed_texts(texts: list[str]) -> torch.Tensor:
    from vla_stack import text

    if not texts:
        raise SchemaError("dataset has no subtask texts to condition on")
    return torch.from_numpy(text.default_encoder()(list(texts)))


def lag_subtask_switches(sub: torch.Tensor, max_lag: int, gen: np.random.Generator) -> torch.Tensor:
    """(B, T) subtask indices -> the same with each switch inside a window seen 0..max_lag ticks late (one
    lag per window, drawn uniformly): the ticks right after a switch keep the previous subtask's index."""
    if max_lag <= 0 or sub.shape[1] < 2:
        return sub
    lag = torch.from_numpy(gen.integers(0, max_lag + 1, size=sub.shape[0]))
    out, prev = sub.clone(), sub[:, 0].clone()
    since = torch.full_like(lag, max_lag + 1)
    for t in range(1, sub.shape[1]):
        switched = sub[:, t] != sub[:, t - 1]
        prev = torch.where(switched, sub[:, t - 1], prev)
        since = torch.where(switched, torch.zeros_like(since), since + 1)
        out[:, t] = torch.where(since < lag, prev, sub[:, t])
    return out


def make_batch(ds, idx: np.ndarray, text_table: torch.Tensor, device, max_points: int, gen: np.random.Generator,
               code_table: torch.Tensor | None = None, subtask_lag_max_ticks: int = 0):
    """A batch of windows; `code_table` (subtasks, 2, 4): each subtask's object codes (object channels)."""
    b = ds[idx]
    b["subtask_index"] = lag_subtask_switches(b["subtask_index"], subtask_lag_max_ticks, gen)
    pts, cols = b["observation.points"], b["observation.colors"]
    if max_points and pts.shape[2] > max_points:
        sel = torch.from_numpy(gen.choice(pts.shape[2], max_points, replace=False))
        pts, cols = pts[:, :, sel], cols[:, :, sel]
    pad = b["action_is_pad"] | b["observation_is_pad"][..., None]
    out = {"points": pts, "colors": cols, "state": b["observation.state"], "text": text_table[b["subtask_index"]],
           "action": b["action"], "pad": pad}
    if code_table is not None:
        out["objects"] = code_table[b["subtask_index"]]
    if SUBGOAL_KEY in b:
        out["subgoal"] = b[SUBGOAL_KEY]
    return {k: v.to(device, non_blocking=True) for k, v in out.items()}


def subgoal_inputs(batch: dict, model: PolicyModel, gen: torch.Generator | None = None):
    """Subgoal latents with dropout: each tick's latent is hidden with probability
    `subgoal_dropout`, so the expert also runs when the world model is not consulted."""
    if not model.cfg.subgoal_dim:
        return None, None
    sub = batch["subgoal"]
    keep = torch.rand(sub.shape[:-1], device=sub.device, generator=gen) >= model.cfg.subgoal_dropout
    return sub, keep


def lr_at(step: int, cfg: TrainConfig, time_frac: float = 0.0) -> float:
    """Warm-up, then cosine to 10% over the steps (or over the time budget, whichever is further)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = max((step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps), time_frac)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def param_groups(model: PolicyModel, cfg: TrainConfig) -> list[dict]:
    """One group, or two when a fine-tune adds shape harmonics that should learn faster (new_weights_lr_mult)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not (cfg.add_shape_harmonics and cfg.new_weights_lr_mult != 1.0):
        return [{"params": [p for _, p in named], "lr_mult": 1.0}]
    new = [p for n, p in named if n.startswith(SHAPE_HARMONICS_KEYS)]
    if not new:
        raise SchemaError("new_weights_lr_mult: the model has no shape-harmonics weights to apply it to")
    return [{"params": [p for n, p in named if not n.startswith(SHAPE_HARMONICS_KEYS)], "lr_mult": 1.0},
            {"params": new, "lr_mult": cfg.new_weights_lr_mult}]


def build_model(cfg: TrainConfig, ds, log) -> PolicyModel:
    if cfg.init_from is not None:
        added = cfg.add_shape_harmonics and not read_config(cfg.init_from)[0].shape_harmonics
        model, _ = load_checkpoint(cfg.init_from, add_shape_harmonics=cfg.add_shape_harmonics)
        switched = ["shape harmonics added"] if added else []
        if cfg.solid_cube_masks and not model.cfg.solid_cube_masks:
            model.cfg = dataclasses.replace(model.cfg, solid_cube_masks=True).validate()
            switched.append("solid cube masks on")
        added_marks = tuple(o for o in cfg.mark_objects if o not in model.cfg.marked_objects)
        if added_marks:
            marked = (*model.cfg.marked_objects, *added_marks)
            model.cfg = dataclasses.replace(model.cfg, marked_objects=marked).validate()
            switched.append(f"marked too: {', '.join(added_marks)}")
        widened = tuple(o for o in cfg.mark_objects if o in model.cfg.target_only_objects)
        if widened:
            kept = tuple(o for o in model.cfg.target_only_objects if o not in widened)
            model.cfg = dataclasses.replace(model.cfg, target_only_objects=kept).validate()
            switched.append(f"marked as a destination too: {', '.join(widened)}")
        log(f"initialised from {cfg.init_from} (its architecture and normalization are kept"
            + (f"; {', '.join(switched)})" if switched else ")"))
        return model
    if cfg.solid_cube_masks or cfg.mark_objects:
        raise SchemaError("solid_cube_masks / mark_objects switch things on in a checkpoint given by init_from; "
                          "training from scratch, set them in the model config (--model.solid-cube-masks, "
                          "--model.marked-objects)")
    if ds.has_points is False:
        raise SchemaError(f"dataset {cfg.dataset}: no point clouds recorded (observation.points)")
    return PolicyModel(cfg.model, stats_from_dataset(ds.stats))


def train(cfg: TrainConfig, leave_group: bool = True) -> Path:
    """Returns the final checkpoint directory. Under DDP, `leave_group=False` skips destroying the
    process group: for a caller that ends the process right after (`run`)."""
    from .multi_dataset import WindowMixture

    rank, world, local_rank = _dist_info()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cfg.device != "cpu" and torch.cuda.is_available() else "gloo")
    device = _device(cfg, local_rank)
    log = (lambda msg: print(f"[train] {msg}", flush=True)) if rank == 0 else (lambda msg: None)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    out = Path(cfg.out)
    last = out / "last"
    resuming = cfg.resume and (last / "config.json").is_file()

    model_horizon = (read_config(cfg.init_from)[0] if cfg.init_from else cfg.model).horizon
    mixture = WindowMixture([cfg.dataset, *cfg.mix_with], cfg.history, model_horizon, tuple(cfg.mix_weights))
    ds = mixture.dataset
    subgoal_dim = (read_config(cfg.init_from)[0] if cfg.init_from else cfg.model).subgoal_dim
    if subgoal_dim and SUBGOAL_KEY not in ds[0]:
        raise SchemaError(f"model.subgoal_dim={subgoal_dim} needs subgoal latents in the dataset "
                          f"({SUBGOAL_KEY!r}); {cfg.dataset} has none: train with --model.subgoal-dim 0")
    if resuming:
        saved, _ = read_config(last)
        if cfg.init_from is None and saved != cfg.model.validate():
            raise SchemaError(f"{last}: saved model config differs from this command's; use a new --out "
                              f"or --no-resume (saved: {saved}, now: {cfg.model})")
        model, _ = load_checkpoint(last)
        log(f"resuming from {last}")
    else:
        model = build_model(cfg, ds, log)
    model = model.to(device).train()
    if cfg.freeze_encoder:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = 0
    if resuming:
        step = int(load_trainer_state(last, opt)["step"])
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else None
    net = ddp or model
    text_table = embed_texts(ds.subtask_texts)
    code_table = torch.from_numpy(codes_for(model.cfg, ds.subtask_texts)) if model.cfg.object_channels else None
    if code_table is not None:
        log("object channels: " + "; ".join(f"{t!r} -> {int(c[:, 3].sum())} object(s)"
                                             for t, c in zip(ds.subtask_texts, code_table.numpy())))
    gen = np.random.default_rng([cfg.seed, rank, step])  # each rank its own windows; resumes reproducibly
    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2, default=str) + "\n")
        writer = SummaryWriter(str(out / "tb"))
    bar = None
    if rank == 0 and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train policy", dynamic_ncols=True)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg.bf16 and device.type == "cuda"
                else contextlib.nullcontext())
    log(f"{len(ds)} windows, {sum(p.numel() for p in model.parameters()):,} parameters, world size {world}, {device}")
    if len(mixture.sources) > 1:
        log(f"sources: {mixture.describe()}")
    t0, losses = time.perf_counter(), []
    budget_s = cfg.time_budget_min * 60.0
    time_frac = 0.0
    while step < cfg.steps:
        if budget_s:
            time_frac = shared_time_frac((time.perf_counter() - t0) / budget_s, world, device)
            if time_frac >= 1.0:
                log(f"time budget of {cfg.time_budget_min} min reached at step {step}")
                break
        batch = make_batch(ds, mixture.draw(gen, cfg.batch_size), text_table, device, cfg.max_points, gen,
                           code_table, cfg.subtask_lag_max_ticks)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg, time_frac) * g.get("lr_mult", 1.0)   # absent in older saved optimizer states
        with autocast:
            pred = net(batch["points"], batch["colors"], batch["state"], batch["text"], *subgoal_inputs(batch, model),
                       batch.get("objects"))
        loss = chunk_loss(pred.float(), model.normalizer.normalize_action(batch["action"]), batch["pad"])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {step}: loss is {loss.item()}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        step += 1
        losses.append(loss.item())
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if bar is None and rank == 0 and step % cfg.log_every == 0:
            log(f"step {step} loss {np.mean(losses[-cfg.log_every:]):.5f} lr {lr_at(step - 1, cfg, time_frac):.2e} "
                f"{step / max(1e-9, time.perf_counter() - t0):.2f} steps/s")
        if writer is not None and (step % cfg.log_every == 0 or step == cfg.steps):
            writer.add_scalar("train/loss", float(np.mean(losses[-cfg.log_every:])), step)
            writer.add_scalar("train/grad_norm", float(grad_norm), step)
            writer.add_scalar("train/lr", lr_at(step - 1, cfg, time_frac), step)
            writer.add_scalar("train/steps_per_s", step / max(1e-9, time.perf_counter() - t0), step)
        if rank == 0 and (step % cfg.save_every == 0 or step == cfg.steps):
            save_checkpoint(last, model, {"step": step, "dataset": str(cfg.dataset)})
            save_trainer_state(last, opt, step, {"loss": losses[-1]})
        if rank == 0 and cfg.eval_every and cfg.eval_tasks and step % cfg.eval_every == 0:
            _periodic_eval(model, cfg, step, writer, log)
            model.train()
    if bar is not None:
        bar.close()
    final = out / "final"
    if rank == 0:
        save_checkpoint(final, model, {"step": step, "dataset": str(cfg.dataset),
                                       "final_loss": float(np.mean(losses[-cfg.log_every:])) if losses else None})
        writer.close()
        log(f"done: {step} steps, checkpoint {final}")
    if world > 1:
        check_replicas(model, out, rank, world, log)   # a collective: every rank is past its last step
        if leave_group:
            leave_process_group()
    return final


def leave_process_group(timeout_s: float = 60.0) -> None:
    """Destroy the process group, waiting at most timeout_s: under gloo it can hang now and then
    (pytorch#75097; seen once in CI after the replica check), and by now all work is saved."""
    import threading

    done = threading.Thread(target=dist.destroy_process_group, daemon=True, name="destroy_process_group")
    done.start()
    done.join(timeout_s)
    if done.is_alive():
        print(f"[train] warning: destroy_process_group did not return in {timeout_s:.0f} s; leaving anyway", flush=True)


def shared_time_frac(frac: float, world: int, device) -> float:
    """Rank 0's elapsed fraction on every rank: the same LR and the same last step everywhere."""
    if world == 1:
        return frac
    t = torch.tensor([frac], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def parameter_checksum(model: torch.nn.Module) -> list[float]:
    """Two float64 fingerprints of all weights (plain sum, position-weighted sum)."""
    flat = torch.cat([p.detach().double().flatten().cpu() for p in model.parameters()])
    return [float(flat.sum()), float((flat * torch.arange(1, flat.numel() + 1, dtype=torch.float64)).sum())]


def check_replicas(model: torch.nn.Module, out: Path, rank: int, world: int, log) -> None:
    """DDP must keep every rank's weights identical; compare fingerprints and record them."""
    device = next(model.parameters()).device
    mine = torch.tensor(parameter_checksum(model), dtype=torch.float64, device=device)
    gathered = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(gathered, mine)
    rows = [g.cpu().tolist() for g in gathered]
    identical = all(r == rows[0] for r in rows)
    if rank == 0:
        (out / "replicas.json").write_text(json.dumps({"world_size": world, "checksums": rows,
                                                       "identical": identical}, indent=2) + "\n")
        log(f"replica check: {'identical' if identical else 'DIFFERENT'} across {world} ranks")
    if not identical:
        raise RuntimeError(f"DDP replicas diverged: parameter checksums {rows}")


def _periodic_eval(model: PolicyModel, cfg: TrainConfig, step: int, writer, log) -> None:
    from .evaluate import EvalConfig, evaluate_model

    table = evaluate_model(model.eval(), EvalConfig(tasks=cfg.eval_tasks, episodes=cfg.eval_episodes,
                                                    out=Path(cfg.out) / f"eval_{step:07d}", videos=0))
    for task, row in table["tasks"].items():
        writer.add_scalar(f"eval/success/{task}", row["success_rate"], step)
    log(f"step {step}: eval success {table['mean_success_rate']:.2f}")


def run(cfg: TrainConfig) -> int:
    distributed = _dist_info()[1] > 1
    if distributed:  # `kill -USR1 <pid>` prints every thread's stack: where a stuck rank waits
        import faulthandler
        import signal

        faulthandler.register(signal.SIGUSR1, all_threads=True)
    train(cfg, leave_group=not distributed)
    if distributed:
        # Work is saved and every rank is past the last collective. Destroying a gloo group can hang
        # (pytorch#75097), as can a worker's interpreter shutdown on library threads (a rank hung past
        # the replica check once on the CI box), so the process ends here; the OS closes the sockets.
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
