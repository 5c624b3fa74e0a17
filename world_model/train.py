"""`vla train world-model`: fit the subgoal U-Net on (frame, subtask, end frame) triples.

All frames of a split fit in memory (uint8), so batches are gathered on the device with no
loader processes. The loss is L1 on RGB and depth, with pixels that change during the
subtask weighted up: otherwise the cheapest answer is to copy the current frame, which
already gets most pixels right and none of the ones that matter.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from vla_stack.text import default_encoder

from . import objects
from .config import WorldModelConfig
from .predictor import CONFIG_FILE, DEFAULT_CHECKPOINT, WorldModel
from .triples import SubgoalEpisodes, concatenate
from .unet import SubgoalUNet
from .words import word_tokens

DEFAULT_DATA_DIR = Path("outputs/world_model")  # git-ignored; regenerate with the generator


@dataclass
class TrainConfig:
    data: tuple[Path, ...] = (DEFAULT_DATA_DIR / "front" / "train.npz",)
    """Triples files (from `python -m vla_stack.world_model.generate`) to train on; the camera they were
    rendered from is the one the checkpoint expects (the shipped model's is `front`)."""
    out: Path = Path("runs/world_model")
    """Checkpoint directory (model.safetensors + config.json + train_log.json); git-ignored by default,
    so a run never overwrites a committed or shipped checkpoint."""
    model: WorldModelConfig = field(default_factory=WorldModelConfig)
    steps: int = 4000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    changed_weight: float = 8.0
    """Extra loss weight on pixels that differ between the current and the end frame."""
    depth_weight: float = 1.0
    device: str = "auto"
    """'auto' picks CUDA when present."""
    seed: int = 0
    time_limit_s: float = 0.0
    """Stop after this many seconds (and save); the learning-rate schedule then follows the clock. 0 = no limit."""
    log_every: int = 100
    save_fp16: bool = False
    """Store float16 weights (for checkpoints committed to git)."""
    object_weight: float = 0.0
    """Object-mask models: extra loss weight on the pixels of the moved cube in the *target* frame
    (a 4 cm cube is ~16 px of 16k: without this, blurring it away costs almost nothing)."""
    colour_permute_prob: float = 0.0
    """Object-mask models: chance to permute the RGB channels of a (current, target) pair, so a cube's
    colour cannot stand in for its mask (a red cube turns green or blue; greys stay grey)."""


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Batch(NamedTuple):
    current: torch.Tensor  # (B, C, H, W) in [-1, 1]
    text: torch.Tensor  # (B, text_dim) sentence embeddings of the text the model reads
    words: torch.Tensor | None  # (B, L, text_dim) word tokens (word_tokens models)
    word_mask: torch.Tensor | None  # (B, L) bool
    target: torch.Tensor  # (B, C, H, W) the frame at the subtask's end
    object_masks: torch.Tensor | None  # (B, N_MASKS, H, W) named cubes in the current frame (object-mask models)
    target_object: torch.Tensor | None  # (B, 1, H, W) the moved cube in the target frame
    object_colours: torch.Tensor | None  # (B, N_MASKS * 4) named cubes' RGB + flag, permuted with the image


class TripleSampler:
    """Holds every frame on the device; draws random (current, subtask, target) batches."""

    def __init__(self, data: SubgoalEpisodes, model_config: WorldModelConfig, device: torch.device, seed: int,
                 colour_permute_prob: float = 0.0) -> None:
        if data.image_size != model_config.image_size:
            raise ValueError(f"triples are {data.image_size}px but the model is configured for {model_config.image_size}px")
        self.pairs = torch.from_numpy(data.pairs()).to(device)
        if len(self.pairs) == 0:
            raise ValueError(f"triples ({data.split}): no (frame, segment) pairs to train on")
        self.rgb = torch.from_numpy(data.rgb).to(device)
        self.depth_mm = torch.from_numpy(data.depth_mm.astype(np.int32)).to(device)
        self.seg_last = torch.from_numpy(data.seg_last.astype(np.int64)).to(device)
        self.seg_text = torch.from_numpy(data.seg_text.astype(np.int64)).to(device)
        self.emb = torch.from_numpy(data.text_embeddings).to(device)
        if model_config.word_tokens and data.word_embeddings is None and not model_config.object_masks:
            raise ValueError(f"triples ({data.split}) carry no word tokens: run `python -m vla_stack.world_model.words FILE`")
        self.words = None if data.word_embeddings is None else torch.from_numpy(data.word_embeddings).to(device)
        self.word_mask = None if data.word_mask is None else torch.from_numpy(data.word_mask).to(device)
        self.mask_colours = self.mask_present = None
        if model_config.object_masks:
            self._object_conditioning(data, model_config, device)
        self.cfg = model_config
        self.colour_permute_prob = colour_permute_prob
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.device = device

    def _object_conditioning(self, data: SubgoalEpisodes, cfg: WorldModelConfig, device: torch.device) -> None:
        """Per subtask text: the delexicalised text's embeddings and the colours of its mask channels."""
        model_texts = [objects.delexicalise(t, cfg.object_words) for t in data.texts]
        encoder = default_encoder()
        self.emb = torch.from_numpy(encoder(model_texts)).to(device)
        if cfg.word_tokens:
            w, m = word_tokens(model_texts, encoder)
            self.words, self.word_mask = torch.from_numpy(w).to(device), torch.from_numpy(m).to(device)
        cols = [objects.mask_colours(t, cfg.object_words, cfg.object_colors) for t in data.texts]
        self.mask_colours = torch.tensor(np.array([[c if c is not None else np.zeros(3, np.float32) for c in row] for row in cols]),
                                         dtype=torch.float32, device=device)
        self.mask_present = torch.tensor([[c is not None for c in row] for row in cols], dtype=torch.bool, device=device)

    def _images(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.rgb[frames].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if self.cfg.predict_depth:
            d = self.depth_mm[frames].float()[:, None] / 1000.0
            x = torch.cat([x, (d / self.cfg.depth_max_m).clamp(0, 1) * 2 - 1], dim=1)
        return x

    def batch(self, n: int) -> "Batch":
        idx = torch.randint(len(self.pairs), (n,), generator=self.gen, device=self.device)
        cur, seg = self.pairs[idx, 0], self.pairs[idx, 1]
        t = self.seg_text[seg]
        words = None if self.words is None else self.words[t]
        mask = None if self.word_mask is None else self.word_mask[t]
        last = self.seg_last[seg]
        current, target = self._images(cur), self._images(last)
        obj_masks = target_obj = colours = None
        if self.mask_colours is not None:
            obj_masks = objects.object_masks_torch(self.rgb[cur], self.mask_colours[t], self.mask_present[t])
            target_obj = objects.object_masks_torch(self.rgb[last], self.mask_colours[t, :1], self.mask_present[t, :1])
            cube_rgb = self.mask_colours[t]  # (B, N_MASKS, 3)
            if self.colour_permute_prob > 0:
                current, target, order = self._permute_colours(current, target)
                cube_rgb = cube_rgb.gather(2, order[:, None, :].expand_as(cube_rgb))  # the cubes' colours alike
            colours = torch.cat([cube_rgb, self.mask_present[t].float()[..., None]], dim=2).flatten(1)
        return Batch(current, self.emb[t], words, mask, target, obj_masks, target_obj, colours)

    def _permute_colours(self, current: torch.Tensor, target: torch.Tensor):
        """The same random RGB channel order for a pair's two frames (masks were taken before); returns the order."""
        b = current.shape[0]
        perms = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]], device=self.device)
        pick = torch.randint(1, 6, (b,), generator=self.gen, device=self.device)
        apply = torch.rand(b, generator=self.gen, device=self.device) < self.colour_permute_prob
        order = torch.where(apply[:, None], perms[pick], perms[0])  # (B, 3)
        rest = torch.arange(3, current.shape[1], device=self.device).expand(b, -1)
        index = torch.cat([order, rest], dim=1)[:, :, None, None].expand_as(current)
        return current.gather(1, index), target.gather(1, index), order


def subgoal_loss(pred: torch.Tensor, current: torch.Tensor, target: torch.Tensor, changed_weight: float,
                 depth_weight: float, target_object: torch.Tensor | None = None, object_weight: float = 0.0) -> torch.Tensor:
    """Weighted L1; `target_object` (B, 1, H, W) marks the moved cube in the target frame."""
    changed = ((target - current).abs().amax(dim=1, keepdim=True) > 0.1).float()
    w = 1.0 + changed_weight * changed
    if target_object is not None and object_weight:
        w = w + object_weight * target_object
    err = (pred - target).abs()
    ch_w = torch.ones(pred.shape[1], device=pred.device)
    if pred.shape[1] == 4:
        ch_w[3] = depth_weight
    return (err * w * ch_w[None, :, None, None]).mean() / w.mean()


def check_out_dir(out: Path) -> None:
    """Training writes through the shipped folder's links into the committed checkpoint: refuse both."""
    shipped = {DEFAULT_CHECKPOINT.resolve(), (DEFAULT_CHECKPOINT / CONFIG_FILE).resolve().parent}
    if Path(out).resolve() in shipped:
        raise ValueError(f"--out {out}: that is the shipped world model ({DEFAULT_CHECKPOINT}); train into another "
                         "directory (default runs/world_model) and pack it with `vla ship`")


def train(cfg: TrainConfig) -> Path:
    check_out_dir(cfg.out)
    torch.manual_seed(cfg.seed)
    device = _device(cfg.device)
    data = concatenate([SubgoalEpisodes.load(p) for p in cfg.data])
    if data.camera:
        cfg.model.camera = data.camera  # the checkpoint says which camera's images it expects
    if cfg.model.object_masks:  # the checkpoint carries the scene's true cube colours
        for name, colour in zip(data.object_names, data.object_colors):
            if name in cfg.model.object_colors:
                cfg.model.object_colors[name] = tuple(round(float(c), 4) for c in colour)
    sampler = TripleSampler(data, cfg.model, device, cfg.seed, cfg.colour_permute_prob)
    net = SubgoalUNet(cfg.model).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def progress(step: int) -> float:
        """Fraction of the run done: by steps, or by time when a time limit is set (whichever is further)."""
        p = step / cfg.steps
        if cfg.time_limit_s:
            p = max(p, (time.perf_counter() - t0) / cfg.time_limit_s)
        return min(1.0, p)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress(step)))

    use_bf16 = device.type == "cuda"
    log: list[dict] = []
    t0 = time.perf_counter()
    print(f"world model: {len(sampler.pairs)} triples from {len(data.rgb)} frames, {len(data.texts)} subtask texts; "
          f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f} M params on {device}")
    step = 0
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        b = sampler.batch(cfg.batch_size)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            pred, _ = net(b.current, b.text, b.words, b.word_mask, b.object_masks, b.object_colours)
        loss = subgoal_loss(pred.float(), b.current, b.target, cfg.changed_weight, cfg.depth_weight, b.target_object,
                            cfg.object_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            entry = {"step": step, "loss": loss.item(), "lr": lr_at(step), "elapsed_s": time.perf_counter() - t0}
            log.append(entry)
            print(json.dumps(entry))
        if cfg.time_limit_s and time.perf_counter() - t0 > cfg.time_limit_s:
            print(f"time limit {cfg.time_limit_s}s reached at step {step} (the cosine schedule followed the clock)")
            break
    model = WorldModel(cfg.model, net.float().cpu().eval())
    out = model.save(cfg.out, half=cfg.save_fp16)
    summary = {"config": _jsonable(asdict(cfg)), "steps_done": step + 1, "train_seconds": time.perf_counter() - t0,
               "triples": len(sampler.pairs), "frames": len(data.rgb), "device": str(device), "log": log}
    (out / "train_log.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"saved {out}")
    return out


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def main(cfg: TrainConfig) -> int:
    train(cfg)
    return 0
