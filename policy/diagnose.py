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


@torch.no_grad()
def attention_on_target(model, points, colors, state, text_emb, target_pos, radius_m: float) -> dict:
    """One cloud: per head, the attention mass on the target's points and the centroid's error (m)."""
    enc = model.encoder
    cond = model.condition(text_emb)
    ee, _, _ = ee_frame(state)
    gamma, beta = enc.film(cond).chunk(2, dim=-1)
    feat = enc.point_mlp(colors) * (1 + gamma[:, None]) + beta[:, None]
    rel = points - ee[:, None]
    w = torch.softmax(enc.attn(torch.cat([feat, rel.norm(dim=-1, keepdim=True)], dim=-1)), dim=1)[0]  # (N, V)
    on = (points[0] - target_pos).norm(dim=-1) < radius_m
    centroids = w.T @ rel[0]
    return {"target_points": int(on.sum()), "mass": w[on].sum(0).numpy(),
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
    expert_xy, policy_xy, mass, err, n_on = [], [], [], [], []
    for k in range(cfg.seeds):
        obs, info = env.reset(seed=cfg.seed + k)
        u = env.unwrapped
        t = lambda key: torch.from_numpy(np.ascontiguousarray(obs[key]))[None]  # noqa: E731
        emb = torch.from_numpy(encoder([info[schema.INFO_SUBTASK]]))
        with torch.inference_mode():
            chunk = model.step(t(schema.OBS_POINTS), t(schema.OBS_COLORS), t(schema.OBS_STATE), emb, model.init_state(1))
        policy_xy.append(model.normalizer.unnormalize_action(chunk)[0, 0, :2].numpy())
        expert_xy.append(np.asarray(u.expert_action())[:2])
        row = attention_on_target(model, t(schema.OBS_POINTS), t(schema.OBS_COLORS), t(schema.OBS_STATE), emb,
                                  torch.from_numpy(u.scene.body_pos(target).astype(np.float32)), cfg.radius_m)
        mass.append(row["mass"])
        err.append(row["centroid_error_m"])
        n_on.append(row["target_points"])
    env.close()
    e, p = np.array(expert_xy), np.array(policy_xy)
    corr = [float(np.corrcoef(e[:, i], p[:, i])[0, 1]) for i in range(2)]
    return {"task": cfg.task, "target": target, "layouts": cfg.seeds, "first_action_corr_xy": corr,
            "target_points_mean": float(np.mean(n_on)), "uniform_mass": float(np.mean(n_on)) / cfg.n_points,
            "attention_mass_on_target_per_head": np.mean(mass, 0).tolist(),
            "centroid_error_cm_per_head": (100 * np.mean(err, 0)).tolist()}


def run(cfg: DiagnoseConfig) -> int:
    r = diagnose(cfg)
    print(f"{r['task']} ({r['target']}, {r['layouts']} layouts): first-action x/y correlation with the expert "
          f"{r['first_action_corr_xy'][0]:+.2f} / {r['first_action_corr_xy'][1]:+.2f}")
    print(f"target points {r['target_points_mean']:.1f} of {cfg.n_points} (uniform attention mass "
          f"{r['uniform_mass']:.3f}); mass per head " + " ".join(f"{m:.3f}" for m in r["attention_mass_on_target_per_head"]))
    print("centroid error per head (cm) " + " ".join(f"{c:.0f}" for c in r["centroid_error_cm_per_head"]))
    return 0
