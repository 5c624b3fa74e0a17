"""`vla policy diagnose`: does a checkpoint find the subtask's object? Two checks over many
layouts of one task, the privileged sim state as ground truth:

- first-action agreement: correlation between the policy's and the scripted expert's first
  x/y motion (the expert heads for the object; a policy that does not see it heads for an
  average place: correlation ~0);
- attention on the target: the share of each attention-pooling head's weight that falls on
  the object's points, and how far each head's weighted centroid is from the object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vla_stack import schema

from .geometry import ee_frame
from .object_channels import codes_for


@dataclass
class DiagnoseConfig:
    checkpoint: Path = Path("runs/policy/final")
    task: str = "PickRedCube"
    target: str = ""  # scene body of the subtask's object (empty: the task's first subtask's object)
    seeds: int = 20  # layouts: env seeds seed .. seed + seeds - 1
    seed: int = 1000
    n_points: int = 1024
    image_size: int = 128
    radius_m: float = 0.035  # points this close to the object's centre count as its points
    out: Path | None = None  # also write the result as JSON here


@torch.no_grad()
def attention_on_target(model, points, colors, state, text_emb, target_pos, radius_m: float, objects=None) -> dict:
    """One cloud: per head, the attention mass on the target's points and the centroid's error (m).
    `objects` (1, 2, 4): the subtask's object codes, for checkpoints with object channels."""
    enc = model.encoder
    cond = model.condition(text_emb)
    ee, _, _ = ee_frame(state)
    masks = model.masks(points, colors, objects)
    feat = enc.point_features(colors, cond, masks)
    rel = points - ee[:, None]
    w = enc.attention(feat, rel.norm(dim=-1, keepdim=True), masks)[0]  # (N, V)
    on = (points[0] - target_pos).norm(dim=-1) < radius_m
    centroids = w.T @ rel[0]
    marked = float("nan") if masks is None else float(masks[0, on, 0].mean()) if on.any() else 0.0
    # precision of channel 0: share of the marked points that lie on the target (the red button also counts as red)
    precision = float("nan") if masks is None or masks[0, :, 0].sum() == 0 else float(masks[0, on, 0].sum() / masks[0, :, 0].sum())
    return {"target_points": int(on.sum()), "mass": w[on].sum(0).numpy(), "marked_on_target": marked, "marked_precision": precision,
            "centroid_error_m": (centroids - (target_pos - ee[0])).norm(dim=-1).numpy()}


def diagnose(cfg: DiagnoseConfig) -> dict:
    os.environ.setdefault("MUJOCO_GL", "egl")
    from vla_stack import text

    encoder = text.default_encoder()  # before any EGL context (see docs: import order)
    import vla_stack.sim as sim

    from .checkpoint import load_checkpoint

    model, _ = load_checkpoint(cfg.checkpoint)
    model.eval()
    if model.cfg.encoder != "equivariant":
        raise schema.SchemaError("diagnose: the attention check needs the equivariant encoder")
    env = sim.make(cfg.task, n_points=cfg.n_points, image_size=cfg.image_size,
                   obs_keys=(schema.OBS_POINTS, schema.OBS_COLORS, schema.OBS_STATE))
    target = cfg.target or env.unwrapped.task.subtasks[0].object
    expert_xy, policy_xy, mass, err, n_on, marked, precision = [], [], [], [], [], [], []
    for k in range(cfg.seeds):
        obs, info = env.reset(seed=cfg.seed + k)
        u = env.unwrapped
        t = lambda key: torch.from_numpy(np.ascontiguousarray(obs[key]))[None]  # noqa: E731
        emb = torch.from_numpy(encoder([info[schema.INFO_SUBTASK]]))
        codes = torch.from_numpy(codes_for(model.cfg, [str(info[schema.INFO_SUBTASK])]))
        with torch.inference_mode():
            chunk = model.step(t(schema.OBS_POINTS), t(schema.OBS_COLORS), t(schema.OBS_STATE), emb, model.init_state(1),
                               objects=codes)
        policy_xy.append(model.normalizer.unnormalize_action(chunk)[0, 0, :2].numpy())
        expert_xy.append(np.asarray(u.expert_action())[:2])
        row = attention_on_target(model, t(schema.OBS_POINTS), t(schema.OBS_COLORS), t(schema.OBS_STATE), emb,
                                  torch.from_numpy(u.scene.body_pos(target).astype(np.float32)), cfg.radius_m, codes)
        mass.append(row["mass"])
        marked.append(row["marked_on_target"])
        precision.append(row["marked_precision"])
        err.append(row["centroid_error_m"])
        n_on.append(row["target_points"])
    env.close()
    e, p = np.array(expert_xy), np.array(policy_xy)
    corr = [float(np.corrcoef(e[:, i], p[:, i])[0, 1]) for i in range(2)]
    return {"task": cfg.task, "target": target, "layouts": cfg.seeds, "first_action_corr_xy": corr,
            "target_points_mean": float(np.mean(n_on)), "uniform_mass": float(np.mean(n_on)) / cfg.n_points,
            "attention_mass_on_target_per_head": np.mean(mass, 0).tolist(),
            "centroid_error_cm_per_head": (100 * np.mean(err, 0)).tolist(),
            "object_channels": bool(model.cfg.object_channels),
            "object_channel_share_of_target_points": float(np.nanmean(marked)) if model.cfg.object_channels else None,
            "object_channel_precision": float(np.nanmean(precision)) if model.cfg.object_channels else None}


def run(cfg: DiagnoseConfig) -> int:
    r = diagnose(cfg)
    print(f"{r['task']} ({r['target']}, {r['layouts']} layouts): first-action x/y correlation with the expert "
          f"{r['first_action_corr_xy'][0]:+.2f} / {r['first_action_corr_xy'][1]:+.2f}")
    print(f"target points {r['target_points_mean']:.1f} of {cfg.n_points} (uniform attention mass "
          f"{r['uniform_mass']:.3f}); mass per head " + " ".join(f"{m:.3f}" for m in r["attention_mass_on_target_per_head"]))
    print("centroid error per head (cm) " + " ".join(f"{c:.0f}" for c in r["centroid_error_cm_per_head"]))
    if r["object_channels"]:
        print(f"object channel: marks {100 * r['object_channel_share_of_target_points']:.0f}% of the target's points; "
              f"{100 * r['object_channel_precision']:.0f}% of the marked points are on the target")
    if cfg.out is not None:
        import json

        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(json.dumps({"config": {k: str(v) for k, v in vars(cfg).items()}, **r}, indent=2) + "\n")
    return 0
