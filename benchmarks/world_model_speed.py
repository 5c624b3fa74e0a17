"""World model speed: subgoal predictions per second at batch 1, CPU and (when present) GPU.

Targets (issue 6): >= 5 Hz on the 2-core CPU at the camera resolution, >= 100 Hz on the GPU
at batch 1. Timed end to end through `WorldModel.predict_batch` (input checks, uint8 ->
tensor, network, tensor -> uint8 image + depth + latent) with the subtask's sentence and
word embeddings already computed, as in the control loop where it is cached per subtask (an object-mask
model's colour segmentation of the named cubes is timed: it runs on every frame). The network alone is
timed beside it so the overhead of the wrapper shows.

    python benchmarks/world_model_speed.py [--checkpoint DIR] [--image-size 128] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vla_stack import bench
from vla_stack.text import EMBED_DIM
from vla_stack.world_model.config import WorldModelConfig
from vla_stack.world_model.predictor import WorldModel


def _inputs(size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    depth = rng.uniform(0.3, 2.0, (1, size, size)).astype(np.float32)
    emb = rng.normal(size=(1, EMBED_DIM)).astype(np.float32)
    words = (rng.normal(size=(1, 8, EMBED_DIM)) / np.sqrt(EMBED_DIM)).astype(np.float32)  # an 8-word subtask
    return rgb, depth, emb / np.linalg.norm(emb), words, np.ones((1, 8), bool)


def _time(fn, repeats: int, sync) -> list[float]:
    for _ in range(5):
        fn()
    sync()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(model: WorldModel, repeats: int) -> dict[str, float]:
    size = model.config.image_size
    rgb, depth, emb, words, mask = _inputs(size)
    if not model.config.word_tokens:
        words = mask = None
    cuda = model.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    x = model.encode_images(rgb, depth)
    e = torch.from_numpy(emb).to(model.device)
    w = None if words is None else torch.from_numpy(words).to(model.device)
    m = None if mask is None else torch.from_numpy(mask).to(model.device)

    subtask = ["stack the blue cube on the red cube"]
    obj = cols = None
    if model.config.object_masks:  # colour segmentation of the named cubes is part of every prediction
        obj = model.object_masks_on_device(rgb, subtask)
    if model.net.colour_inputs:
        cols = torch.from_numpy(model.object_colours(subtask)).to(model.device)

    def net_only():
        with torch.inference_mode():
            model.net(x, e, w, m, obj, cols)

    def end_to_end():
        masks = model.object_masks_on_device(rgb, subtask) if model.config.object_masks else None
        colours = model.object_colours(subtask) if model.net.colour_inputs else None
        model.predict_batch(rgb, depth, emb, words, mask, masks, colours)

    e2e = _time(end_to_end, repeats, sync)
    net = _time(net_only, repeats, sync)
    return {"e2e_ms": statistics.median(e2e), "net_ms": statistics.median(net)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="trained checkpoint dir (default: fresh weights, same speed)")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--name", default="world_model_speed")
    args = ap.parse_args()

    def build(device: str) -> WorldModel:
        if args.checkpoint:
            return WorldModel.load(args.checkpoint, device=device)
        return WorldModel(WorldModelConfig(image_size=args.image_size), device=device)

    metrics: dict[str, float] = {}
    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        model = build(dev)
        r = measure(model, args.repeats)
        metrics[f"predict_latency_{dev}_ms"] = r["e2e_ms"]
        metrics[f"net_latency_{dev}_ms"] = r["net_ms"]
        metrics[f"predict_rate_{dev}_hz"] = 1000.0 / r["e2e_ms"]
        rows.append({"device": dev, "batch": 1, "image": f"{model.config.image_size}x{model.config.image_size}",
                     "predict_ms": r["e2e_ms"], "net_ms": r["net_ms"], "rate_hz": 1000.0 / r["e2e_ms"],
                     "target_hz": 5.0 if dev == "cpu" else 100.0})
    cfg = model.config
    metrics["params_millions"] = sum(p.numel() for p in model.net.parameters()) / 1e6
    metrics["image_size_px"] = cfg.image_size
    bench.print_table(rows, title="world model: subgoal prediction at batch 1 (median of repeats)")
    path = bench.write_results(args.name, metrics, details={
        "rows": rows, "config": cfg.to_json(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "checkpoint": args.checkpoint or "fresh weights (speed does not depend on values)"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
