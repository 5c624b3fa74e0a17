"""`vla eval world-model`: image quality and placement of predicted subgoals, per split.

For every (current frame, subtask) pair of a split the model predicts the end frame; it is
scored against the true end frame and against the copy-the-current-frame baseline (PSNR,
SSIM), and the placement probe locates the subtask's object in the predicted RGB-D and
measures the distance, in cm, to where the simulator says the object truly ended up. A
pair where the probe cannot find the object in the prediction counts as an infinite error
(it is not dropped); pairs where the object is not visible even in the true end frame
(inside a closed drawer, say) carry no placement information and are left out of the probe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vla_stack import bench

from . import metrics, probe
from .predictor import DEFAULT_CHECKPOINT, WorldModel
from .train import DEFAULT_DATA_DIR
from .triples import SubgoalEpisodes


@dataclass
class EvalConfig:
    checkpoint: Path = DEFAULT_CHECKPOINT
    splits: tuple[str, ...] = ("train", "heldout_compositions")
    data_dir: Path | None = None
    """Holds `<split>.npz` for every split named above (default: outputs/world_model/<checkpoint's camera>)."""
    max_pairs: int = 2000
    """Score at most this many (frame, subtask) pairs per split (a fixed random subset)."""
    batch_size: int = 32
    seed: int = 0
    name: str = "world_model_eval"
    """Result file name under benchmarks/results/ (contact sheets go beside it)."""
    out_dir: Path | None = None
    """Default: benchmarks/results/ (or $VLA_RESULTS_DIR)."""
    sheet_rows: int = 8


def _cm(a: np.ndarray | None, b: np.ndarray) -> float:
    return float("inf") if a is None else float(np.linalg.norm(a - b) * 100.0)


def contact_sheet(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, str]], scale: int = 2) -> np.ndarray:
    """Rows of current | predicted | true, each row captioned with its subtask (RGB uint8)."""
    tiles = []
    for cur, pred, true, caption in rows:
        strip = np.concatenate([cur, pred, true], axis=1)
        strip = cv2.resize(strip, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        band = np.full((18, strip.shape[1], 3), 255, np.uint8)
        cv2.putText(band, caption[:80], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([band, strip], axis=0))
    header = np.full((20, tiles[0].shape[1], 3), 255, np.uint8)
    w = tiles[0].shape[1] // 3
    for i, label in enumerate(("current", "predicted", "true end of subtask")):
        cv2.putText(header, label, (i * w + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, *tiles], axis=0)


def evaluate_split(model: WorldModel, data: SubgoalEpisodes, cfg: EvalConfig) -> tuple[dict[str, float], list, list[dict]]:
    pairs = data.pairs()
    rng = np.random.default_rng(cfg.seed)
    if len(pairs) > cfg.max_pairs:
        pairs = pairs[np.sort(rng.choice(len(pairs), cfg.max_pairs, replace=False))]
    cur_f, seg = pairs[:, 0], pairs[:, 1]
    end_f = data.seg_last[seg]
    psnr_m, psnr_c, ssim_m, ssim_c = [], [], [], []
    err_model, err_copy, err_floor, err_text = [], [], [], []
    sheet_pick = set(rng.choice(len(pairs), min(cfg.sheet_rows, len(pairs)), replace=False).tolist())
    sheet = []
    for s in range(0, len(pairs), cfg.batch_size):
        sl = slice(s, s + cfg.batch_size)
        cur_rgb, true_rgb = data.rgb[cur_f[sl]], data.rgb[end_f[sl]]
        true_depth = data.depth_m(end_f[sl])
        t = data.seg_text[seg[sl]]
        if model.config.object_masks:  # delexicalised text + masks from the frame: made from the plain strings
            goals = model.predict_subtasks(cur_rgb, data.depth_m(cur_f[sl]), [data.texts[i] for i in t])
        else:  # the embeddings stored with the data (what the model was trained with)
            words = (data.word_embeddings[t], data.word_mask[t]) if data.word_embeddings is not None else (None, None)
            goals = model.predict_batch(cur_rgb, data.depth_m(cur_f[sl]), data.text_embeddings[t], *words)
        pred_rgb = np.stack([g.rgb for g in goals])
        psnr_m.append(metrics.psnr(pred_rgb, true_rgb))
        psnr_c.append(metrics.psnr(cur_rgb, true_rgb))
        ssim_m.append(metrics.ssim(pred_rgb, true_rgb))
        ssim_c.append(metrics.ssim(cur_rgb, true_rgb))
        for j, g in enumerate(goals):
            k = s + j
            if k in sheet_pick:
                sheet.append((cur_rgb[j], g.rgb, true_rgb[j], data.texts[data.seg_text[seg[k]]]))
            obj = data.seg_object[seg[k]]
            if obj < 0 or g.depth is None:
                continue
            colour, truth = data.object_colors[obj], data.seg_object_pos[seg[k]]
            intr, extr = data.calibration(seg[k])
            discs = data.discs(seg[k])
            where = lambda rgb, depth: probe.locate(rgb, depth, colour, intr, extr, discs, probe.CUBE_CENTRE_OFFSET_M)  # noqa: E731
            floor = where(true_rgb[j], true_depth[j])
            if floor is None:  # not visible at the end even in reality: no placement information
                continue
            err_floor.append(_cm(floor, truth))
            err_text.append(data.texts[data.seg_text[seg[k]]])
            err_model.append(_cm(where(g.rgb, g.depth), truth))
            cur_depth = data.depth_m(cur_f[k])
            err_copy.append(_cm(where(cur_rgb[j], cur_depth), truth))
    pm, pc = np.concatenate(psnr_m), np.concatenate(psnr_c)
    finite = np.isfinite(pc) & np.isfinite(pm)  # a subtask that changes nothing has no PSNR
    out = {
        "pairs": len(pairs),
        "psnr_model_db": float(pm[finite].mean()),
        "psnr_copy_db": float(pc[finite].mean()),
        "psnr_gain_db": float(pm[finite].mean() - pc[finite].mean()),
        "ssim_model": float(np.concatenate(ssim_m).mean()),
        "ssim_copy": float(np.concatenate(ssim_c).mean()),
        "probe_pairs": len(err_model),
    }
    if err_model:
        em, ec, ef = map(np.asarray, (err_model, err_copy, err_floor))
        out.update({
            "placement_model_median_cm": float(np.median(em)),
            "placement_copy_median_cm": float(np.median(ec)),
            "placement_probe_floor_median_cm": float(np.median(ef)),
            "placement_model_within_3cm_frac": float(np.mean(em <= 3.0)),
            "placement_model_found_frac": float(np.mean(np.isfinite(em))),
        })
    return out, sheet, _per_subtask(err_text, err_model)


def _per_subtask(texts: list[str], errors: list[float]) -> list[dict]:
    """Placement per subtask text: which compositions fail (for the result file's details)."""
    rows = []
    for t in sorted(set(texts)):
        e = np.array([x for x, y in zip(errors, texts) if y == t])
        rows.append({"subtask": t, "probe_pairs": len(e), "median_cm": float(np.median(e)),
                     "within_3cm_frac": float(np.mean(e <= 3.0)), "found_frac": float(np.mean(np.isfinite(e)))})
    return rows


def evaluate(cfg: EvalConfig) -> Path:
    model = WorldModel.load(cfg.checkpoint)
    out_dir = Path(cfg.out_dir or bench.RESULTS_DIR)
    flat: dict[str, float] = {}
    rows = []
    by_subtask: dict[str, list[dict]] = {}
    for split in cfg.splits:
        data_dir = Path(cfg.data_dir) if cfg.data_dir else DEFAULT_DATA_DIR / model.config.camera
        data = SubgoalEpisodes.load(data_dir / f"{split}.npz")
        res, sheet, per_subtask = evaluate_split(model, data, cfg)
        flat.update({f"{split}_{k}": v for k, v in res.items()})
        rows.append({"split": split, **res})
        by_subtask[split] = per_subtask
        if sheet:
            png = out_dir / f"{cfg.name}_sheet_{split}.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(png), cv2.cvtColor(contact_sheet(sheet), cv2.COLOR_RGB2BGR))
            print(f"contact sheet: {png}")
    bench.print_table(rows, title=f"world model {cfg.checkpoint}")
    path = bench.write_results(cfg.name, flat, out_dir=out_dir, details={
        "checkpoint": str(cfg.checkpoint), "rows": rows, "max_pairs": cfg.max_pairs, "seed": cfg.seed,
        "data_dir": str(cfg.data_dir or DEFAULT_DATA_DIR / model.config.camera), "placement_by_subtask": by_subtask,
        "placement": "median over pairs whose object the probe finds in the true end frame; "
                     "not found in the prediction counts as infinite error"})
    print(f"wrote {path}")
    return path


def main(cfg: EvalConfig) -> int:
    evaluate(cfg)
    return 0
