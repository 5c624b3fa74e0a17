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
from .grounding import RELATIONS, Fact, GroundingConfig, GroundingNet, hidden_by_closed_drawer, subsample
from .objects import SEGMENTS
from .plan_decoder import PlanDecoder, PlanDecoderConfig, teacher_forcing_rows
from .rollouts import EnvConfig, collect_frames


@dataclass
class TrainPlannerConfig:
    out: str = "runs/planner"  # checkpoint directory (model.safetensors + config.json)
    seeds: int = 12  # expert episodes per train task for the grounding data
    frame_every: int = 3  # record every k-th control step
    max_frames_per_episode: int = 80
    decoder_steps: int = 600
    segmenter_steps: int = 1200
    segmenter_batch: int = 8  # frames per segmenter step (each ~870 points)
    head_steps: int = 1500
    batch: int = 256  # frames per fact-head step
    lr: float = 2e-3
    seed: int = 0
    segmenter_from: str = ""  # planner checkpoint whose point segmenter is reused (heads retrained)
    features_cache: str = ""  # with segmenter_from: .safetensors of its segment summaries, reused or written
    frames_cache: str = ""  # .npz of collected frames: reused when it exists, written otherwise
    threads: int = 1  # torch CPU threads: these networks are tiny, more threads only contend
    workers: int = 1  # rollout processes for frame collection (one task each)
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


def split_episodes(data: dict, every: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of training and validation episodes (every `every`-th episode validates)."""
    starts = np.unique(data["start"])
    val_starts = set(starts[::every].tolist())
    val = np.array([s in val_starts for s in data["start"]])
    return np.flatnonzero(~val), np.flatnonzero(val)


def train_segmenter(cfg: TrainPlannerConfig, net: GroundingNet, data: dict, train_idx, val_idx, log=print) -> dict:
    """Per-point segment classification (labels from simulator geometry); returns validation IoU."""
    seg = net.segmenter
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    freq = np.bincount(data["labels"][train_idx].ravel().astype(np.int64), minlength=len(SEGMENTS)) + 1.0
    weight = torch.from_numpy((freq.sum() / freq) ** 0.5).float()
    weight = weight / weight.mean()  # rare segments (a cube: ~2% of points) count more, not absolutely
    opt = torch.optim.AdamW(seg.parameters(), cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.segmenter_steps)
    t0 = time.time()
    for i in range(cfg.segmenter_steps):
        seg.train()
        idx = train_idx[rng.integers(0, len(train_idx), cfg.segmenter_batch)]
        pts, cols, lab = subsample(torch.from_numpy(data["points"][idx]), torch.from_numpy(data["colors"][idx]),
                                   int(cfg.grounding.n_points * 0.85), gen, torch.from_numpy(data["labels"][idx]).long())
        cols = (cols * torch.empty(len(idx), 1, 1).uniform_(0.85, 1.15, generator=gen)).clamp(0, 1)  # lighting
        loss = torch.nn.functional.cross_entropy(seg(pts, cols).flatten(0, 1), lab.flatten(), weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if i % 200 == 0 or i == cfg.segmenter_steps - 1:
            log(f"segmenter step {i}/{cfg.segmenter_steps}: loss {loss.item():.4f} ({time.time() - t0:.0f} s)")
    return validate_segmenter(seg, data, val_idx[:: max(1, len(val_idx) // 300)])


@torch.no_grad()
def validate_segmenter(seg, data: dict, idx: np.ndarray) -> dict[str, float]:
    seg.eval()
    inter, union = np.zeros(len(SEGMENTS)), np.zeros(len(SEGMENTS))
    for i in range(0, len(idx), 16):
        j = idx[i:i + 16]
        pred = seg(torch.from_numpy(data["points"][j]), torch.from_numpy(data["colors"][j])).argmax(-1).numpy()
        lab = data["labels"][j]
        for c in range(len(SEGMENTS)):
            inter[c] += ((pred == c) & (lab == c)).sum()
            union[c] += ((pred == c) | (lab == c)).sum()
    return {f"{name.replace(' ', '_')}_iou": float(inter[c] / max(union[c], 1)) for c, name in enumerate(SEGMENTS)}


def cap_frames(start: np.ndarray, cap: int) -> np.ndarray:
    """At most `cap` frames per episode, evenly spaced (first and last kept): long episodes
    (a pick the expert keeps re-checking) would otherwise outweigh the rest."""
    out = []
    for s in np.unique(start):
        idx = np.flatnonzero(start == s)
        if len(idx) > cap:
            idx = idx[np.linspace(0, len(idx) - 1, cap).round().astype(int)]
        out.append(idx)
    return np.concatenate(out)


@torch.no_grad()
def encode_frames(net: GroundingNet, data: dict, idx: np.ndarray, batch: int = 32) -> torch.Tensor:
    """Segment summaries (N, S + 1, D) of the frames `idx` (rows of others stay zero): the heads
    train on these, with the segmenter frozen."""
    net.eval()
    out = None
    for i in range(0, len(idx), batch):
        j = idx[i:i + batch]
        f = net.encode(torch.from_numpy(data["points"][j]), torch.from_numpy(data["colors"][j]),
                       torch.from_numpy(data["state"][j]))
        if out is None:
            out = torch.zeros(len(data["points"]), *f.shape[1:])
        out[j] = f
    return out


def label_mask(truth: torch.Tensor) -> torch.Tensor:
    """1 where a fact's label counts: the unseen content of a closed drawer has none."""
    facts = suite.all_facts()
    mask = torch.ones_like(truth)
    drawer_open = truth[:, facts.index(Fact("open", "drawer"))] > 0.5
    for j, f in enumerate(facts):
        if hidden_by_closed_drawer(f):
            mask[:, j] = drawer_open.float()
    return mask


def head_batch(feats: torch.Tensor, data: dict, idx: np.ndarray, fact_idx: torch.Tensor) -> dict:
    b = {"seg": feats[idx], "start_seg": feats[data["start"][idx]], "state": torch.from_numpy(data["state"][idx]),
         "truth": torch.from_numpy(data["truth"][idx])}
    # no label where the drawer hides the content or an entity is occluded (the arm over the
    # button, the cube in the hand): the planner remembers such facts instead of judging them
    b["mask"] = label_mask(b["truth"]) * GroundingNet.judgeable(b["seg"], fact_idx).float()
    return b


@torch.no_grad()
def validate_heads(net: GroundingNet, feats: torch.Tensor, data: dict, idx: np.ndarray) -> dict[str, float]:
    """Per relation: balanced accuracy (mean of recall on true and on false facts) on held-out episodes."""
    facts = suite.all_facts()
    fact_idx = net.fact_index(facts)
    b = head_batch(feats, data, idx, fact_idx)
    p = net.judge(b["seg"], b["state"], b["start_seg"], fact_idx) > 0
    t, keep = b["truth"] > 0.5, b["mask"] > 0
    out = {}
    for rel in RELATIONS:
        cols = [j for j, f in enumerate(facts) if f.relation == rel]
        pp, tt = p[:, cols][keep[:, cols]], t[:, cols][keep[:, cols]]
        rec_t = float((pp & tt).sum() / tt.sum().clamp(min=1))
        rec_f = float((~pp & ~tt).sum() / (~tt).sum().clamp(min=1))
        out[f"{rel}_balanced_accuracy"] = 0.5 * (rec_t + rec_f) if tt.any() else rec_f
    return out


def train_heads(cfg: TrainPlannerConfig, net: GroundingNet, feats: torch.Tensor, data: dict, train_idx, log=print):
    facts = suite.all_facts()
    fact_idx = net.fact_index(facts)
    truth = torch.from_numpy(data["truth"][train_idx])
    # rare facts (a cube on another: ~1% of frames) would otherwise be learned as "never"
    rate = truth.mean(0).clamp(min=1e-3)
    pos_weight = ((1 - rate) / rate).clamp(1.0, 20.0)
    opt = torch.optim.AdamW(net.heads.parameters(), cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.head_steps)
    rng = np.random.default_rng(cfg.seed + 1)
    for i in range(cfg.head_steps):
        net.train()
        b = head_batch(feats, data, train_idx[rng.integers(0, len(train_idx), cfg.batch)], fact_idx)
        logits = net.judge(b["seg"], b["state"], b["start_seg"], fact_idx)
        mask = b["mask"]
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, b["truth"], reduction="none",
                                                                     pos_weight=pos_weight) * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if i % 500 == 0 or i == cfg.head_steps - 1:
            acc = float((((logits > 0) == (b["truth"] > 0.5)).float() * mask).sum() / mask.sum())
            log(f"fact heads step {i}/{cfg.head_steps}: bce {loss.item():.4f} fact acc {acc:.4f}")


def train_grounding(cfg: TrainPlannerConfig, data: dict, log=print) -> GroundingNet:
    torch.manual_seed(cfg.seed)
    net = GroundingNet(list(suite.GROUNDED_ENTITIES), cfg.grounding)
    train_idx, val_idx = split_episodes(data)
    kept = cap_frames(data["start"], cfg.max_frames_per_episode)
    train_idx, val_idx = np.intersect1d(train_idx, kept), np.intersect1d(val_idx, kept)
    log(f"{len(train_idx)} training and {len(val_idx)} validation frames (at most {cfg.max_frames_per_episode} per episode)")
    if cfg.segmenter_from:  # retrain the fact heads only, on a segmenter trained before
        prev_cfg = checkpoint.load_segmenter_into(cfg.segmenter_from, net)
        iou = {k: v for k, v in prev_cfg.get("validation", {}).items() if k.endswith("_iou")}
        log(f"segmenter taken from {cfg.segmenter_from}")
    else:
        iou = train_segmenter(cfg, net, data, train_idx, val_idx, log)
    log("validation episodes, segment IoU: " + ", ".join(f"{k.removesuffix('_iou')} {v:.3f}" for k, v in iou.items()))
    t0 = time.time()
    needed = np.union1d(kept, data["start"][kept])
    cache = Path(cfg.features_cache) if cfg.features_cache and cfg.segmenter_from else None
    if cache and cache.is_file():
        from safetensors.torch import load_file

        z = load_file(str(cache))
        if not np.array_equal(z["frames"].numpy(), needed):
            raise SystemExit(f"{cache}: summaries of other frames (another frames cache or episode cap): delete it")
        feats = torch.zeros(len(data["points"]), *z["features"].shape[1:])
        feats[needed] = z["features"]
        log(f"segment summaries of {len(needed)} frames loaded from {cache}")
    else:
        feats = encode_frames(net, data, needed)
        log(f"segment summaries of {len(needed)} frames in {time.time() - t0:.0f} s")
        if cache:
            from safetensors.torch import save_file

            save_file({"features": feats[needed].contiguous(), "frames": torch.from_numpy(needed)}, str(cache))
    train_heads(cfg, net, feats, data, train_idx, log)
    val = validate_heads(net, feats, data, val_idx)
    log("validation episodes, balanced accuracy per relation: "
        + ", ".join(f"{k.removesuffix('_balanced_accuracy')} {v:.3f}" for k, v in val.items()))
    net.validation = val | iou
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
        if "labels" not in data:
            raise SystemExit(f"{cfg.frames_cache}: no per-point labels (collected by an older version): delete it")
        print(f"loaded {len(data['points'])} frames from {cfg.frames_cache}")
    else:
        data = collect_frames(train_tasks, list(range(1000, 1000 + cfg.seeds)), cfg.env, every=cfg.frame_every,
                             workers=cfg.workers)
        print(f"collected {len(data['points'])} frames from {len(train_tasks)} train tasks in {time.time() - t0:.0f} s")
        if cfg.frames_cache:
            Path(cfg.frames_cache).parent.mkdir(parents=True, exist_ok=True)
            np.savez(cfg.frames_cache, **data)
    grounding = train_grounding(cfg, data)
    out = checkpoint.save(cfg.out, decoder, grounding, {"env": vars(cfg.env), "frames": int(len(data["points"])),
                                                        "validation": grounding.validation})
    print(f"planner checkpoint written to {out}")
    return 0
