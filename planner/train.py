"""`vla train planner`: the plan decoder on the train split's instructions, the grounding
network on expert rollouts of the train tasks (labels from the simulator's predicates)."""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass, field

import numpy as np
import torch

from vla_stack import text

from . import checkpoint, suite
from .grounding import Fact, GroundingConfig, GroundingNet, hidden_by_closed_drawer, subsample
from .plan_decoder import PlanDecoder, PlanDecoderConfig, teacher_forcing_rows
from .rollouts import EnvConfig, collect_frames


@dataclass
class TrainPlannerConfig:
    out: str = "runs/planner"  # checkpoint directory (model.safetensors + config.json)
    seeds: int = 8  # expert episodes per train task for the grounding data
    frame_every: int = 3  # record every k-th control step
    decoder_steps: int = 600
    grounding_epochs: int = 20
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0
    frames_cache: str = ""  # .npz of collected frames: reused when it exists, written otherwise
    threads: int = 1  # torch CPU threads: these networks are tiny, more threads only contend
    env: EnvConfig = field(default_factory=EnvConfig)
    decoder: PlanDecoderConfig = field(default_factory=PlanDecoderConfig)
    grounding: GroundingConfig = field(default_factory=GroundingConfig)


def train_decoder(cfg: TrainPlannerConfig, log=print) -> PlanDecoder:
    torch.manual_seed(cfg.seed)
    cat, enc = suite.catalog(), text.default_encoder()
    rows, templates = teacher_forcing_rows(suite.examples("train"), lambda ex: cat.entities)
    emb = torch.from_numpy(enc([r[0] for r in rows]))
    prev, step = torch.tensor([r[1] for r in rows]), torch.tensor([r[2] for r in rows])
    so_far, y = torch.tensor([r[3] for r in rows]), torch.tensor([r[4] for r in rows])
    model = PlanDecoder(templates, cfg.decoder)
    texts = sorted({r[0] for r in rows})
    model.memory, model.memory_texts = torch.from_numpy(enc(texts)), texts
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=1e-2)
    for _ in range(cfg.decoder_steps):
        model.train()
        logits = model(emb + 0.03 * torch.randn_like(emb), prev, step, so_far)
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    acc = float((model(emb, prev, step, so_far).argmax(-1) == y).float().mean())
    log(f"plan decoder: {len(templates)} templates, {len(rows)} steps, loss {loss.item():.4f}, step accuracy {acc:.3f}")
    return model


def grounding_loss(net: GroundingNet, batch: dict, fact_idx: torch.Tensor, pos_weight: torch.Tensor | None = None):
    feats, cent, glob = net.encode(batch["points"], batch["colors"], batch["state"])
    _, start_cent, _ = net.encode(batch["start_points"], batch["start_colors"], batch["start_state"])
    logits = net.judge(feats, cent, glob, batch["state"], start_cent, fact_idx)
    bce = (torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["truth"], reduction="none",
                                                                pos_weight=pos_weight)
           * batch["mask"]).sum() / batch["mask"].sum()
    # centroid supervision only where the entity is visible (>= 2 points within 4 cm of it):
    # the arm hides cubes for much of a grasp, and no attention can find what is not there
    near = (torch.cdist(batch["positions"], batch["points"]) < 0.04).sum(-1) >= 2  # (B, E)
    sq = (((cent - batch["positions"]) * 10.0) ** 2).sum(-1)  # in decimetres: comparable to the BCE
    aux = (sq * near).sum() / near.sum().clamp(min=1)
    return bce, aux, logits


def make_batch(data: dict, idx: np.ndarray, n_points: int, gen: torch.Generator | None) -> dict:
    t = {k: torch.from_numpy(v[idx]) for k, v in data.items() if k != "start"}
    s = data["start"][idx]
    b = {"state": t["state"], "truth": t["truth"], "positions": t["positions"],
         "start_state": torch.from_numpy(data["state"][s])}
    b["mask"] = torch.ones_like(b["truth"])
    facts = suite.all_facts()
    drawer_open = b["truth"][:, facts.index(Fact("open", "drawer"))] > 0.5
    for j, f in enumerate(facts):
        if hidden_by_closed_drawer(f):
            b["mask"][:, j] = drawer_open.float()  # unseen content of a closed drawer: no label
    b["points"], b["colors"] = subsample(t["points"], t["colors"], n_points, gen)
    b["start_points"], b["start_colors"] = subsample(torch.from_numpy(data["points"][s]),
                                                     torch.from_numpy(data["colors"][s]), n_points, gen)
    return b


def split_episodes(data: dict, every: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of training and validation episodes (every `every`-th episode validates)."""
    starts = np.unique(data["start"])
    val_starts = set(starts[::every].tolist())
    val = np.array([s in val_starts for s in data["start"]])
    return np.flatnonzero(~val), np.flatnonzero(val)


@torch.no_grad()
def validate_grounding(net: GroundingNet, data: dict, idx: np.ndarray, n_points: int) -> dict[str, float]:
    """Per relation: balanced accuracy (mean of recall on true and on false facts) on held-out episodes."""
    from .grounding import RELATIONS

    net.eval()
    facts = suite.all_facts()
    fact_idx = net.fact_index(facts)
    preds, truth, masks = [], [], []
    for i in range(0, len(idx), 256):
        b = make_batch(data, idx[i:i + 256], n_points, None)
        _, _, logits = grounding_loss(net, b, fact_idx)
        preds.append(logits > 0)
        truth.append(b["truth"] > 0.5)
        masks.append(b["mask"])
    p, t, keep = torch.cat(preds), torch.cat(truth), torch.cat(masks) > 0
    out = {}
    for rel in RELATIONS:
        cols = [j for j, f in enumerate(facts) if f.relation == rel]
        pp, tt = p[:, cols][keep[:, cols]], t[:, cols][keep[:, cols]]
        rec_t = float((pp & tt).sum() / tt.sum().clamp(min=1))
        rec_f = float((~pp & ~tt).sum() / (~tt).sum().clamp(min=1))
        out[f"{rel}_balanced_accuracy"] = 0.5 * (rec_t + rec_f) if tt.any() else rec_f
    return out


def train_grounding(cfg: TrainPlannerConfig, data: dict, log=print) -> GroundingNet:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = GroundingNet(list(suite.GROUNDED_ENTITIES), cfg.grounding)
    net.set_entity_embeddings()
    fact_idx = net.fact_index(suite.all_facts())
    opt = torch.optim.AdamW(net.parameters(), cfg.lr, weight_decay=1e-4)
    # rare facts (a cube on another: <1% of frames) would otherwise be learned as "never"
    rate = torch.from_numpy(data["truth"]).mean(0).clamp(min=1e-3)
    pos_weight = ((1 - rate) / rate).clamp(1.0, 20.0)
    train_idx, val_idx = split_episodes(data)
    n = len(train_idx)
    steps = cfg.grounding_epochs * max(1, n // cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.time()
    for i in range(steps):
        net.train()
        b = make_batch(data, train_idx[rng.integers(0, n, cfg.batch)], cfg.grounding.n_points, gen)
        bce, aux, logits = grounding_loss(net, b, fact_idx, pos_weight)
        loss = bce + aux
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if i % 200 == 0 or i == steps - 1:
            acc = float(((logits > 0) == (b["truth"] > 0.5)).float().mean())
            log(f"grounding step {i}/{steps}: bce {bce.item():.4f} centroid {aux.item() ** 0.5 * 10:.1f} cm "
                f"fact acc {acc:.4f} ({time.time() - t0:.0f} s)")
    val = validate_grounding(net, data, val_idx, cfg.grounding.n_points)
    log("validation episodes, balanced accuracy per relation: "
        + ", ".join(f"{k.removesuffix('_balanced_accuracy')} {v:.3f}" for k, v in val.items()))
    net.validation = val
    return net.eval()


def main(cfg: TrainPlannerConfig) -> int:
    from vla_stack.sim import tasks as sim_tasks

    torch.set_num_threads(cfg.threads)
    decoder = train_decoder(cfg)
    train_tasks = sim_tasks.split_task_names("train")
    t0 = time.time()
    if cfg.frames_cache and Path(cfg.frames_cache).is_file():
        with np.load(cfg.frames_cache) as z:
            data = {k: z[k] for k in z.files}
        print(f"loaded {len(data['points'])} frames from {cfg.frames_cache}")
    else:
        data = collect_frames(train_tasks, list(range(1000, 1000 + cfg.seeds)), cfg.env, every=cfg.frame_every)
        print(f"collected {len(data['points'])} frames from {len(train_tasks)} train tasks in {time.time() - t0:.0f} s")
        if cfg.frames_cache:
            Path(cfg.frames_cache).parent.mkdir(parents=True, exist_ok=True)
            np.savez(cfg.frames_cache, **data)
    grounding = train_grounding(cfg, data)
    out = checkpoint.save(cfg.out, decoder, grounding, {"env": vars(cfg.env), "frames": int(len(data["points"])),
                                                        "validation": grounding.validation})
    print(f"planner checkpoint written to {out}")
    return 0
