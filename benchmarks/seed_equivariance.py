"""Seed article experiment 2 ("equivariant vs standard features for 3D classification"):
classify synthetic object point clouds, train at ONE orientation only, evaluate rotated.

Three classifiers, same data, same training budget:
- equivariant: the project's e3nn encoder (`vla_stack.policy.encoder_equivariant`), its
  invariant scalars -> MLP. Readout at the cloud's centroid, no gripper axes (zero vectors),
  so nothing in the input fixes an orientation.
- pointnet: the project's PointNet baseline encoder (`vla_stack.policy.encoder_pointnet`).
- serialized transformer ("ViT-like", the article's standard approach): points sorted along a
  z-order curve, cut into patches of consecutive points, one token per patch, a Transformer
  encoder over the patch sequence.

Objects (6 classes, ~10 cm, like the sim's): cube, lying cylinder, cone, standing torus,
pyramid, L-bracket; random size and per-axis stretch, 1 mm noise, surface-sampled, centred.
Test clouds are the same for every angle (paired comparison), rotated about gravity (z) and
about one random axis per cloud (arbitrary SO(3)), 0..180 degrees.

    python benchmarks/seed_equivariance.py            # full (~15 min on one core)
    python benchmarks/seed_equivariance.py --quick    # under a minute (what the test runs)

Writes benchmarks/results/seed_equivariance.json and .png (or under --out-dir).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vla_stack import bench
from vla_stack.policy import PolicyConfig
from vla_stack.policy.encoder_equivariant import EquivariantEncoder
from vla_stack.policy.encoder_pointnet import PointNetEncoder

CLASSES = ("cube", "cylinder", "cone", "torus", "pyramid", "l_bracket")
MODELS = ("equivariant", "pointnet", "serialized_transformer")
#: The standard models again, trained with a random 3D rotation per training cloud (full mode only):
#: the usual way to buy robustness without equivariance, for comparison.
AUGMENTED = ("pointnet_rot_aug", "serialized_transformer_rot_aug")
#: Every classifier sees points / 5 cm: objects span about +-1, where the encoders' layers and radii work well.
UNIT_M = 0.05


# ----------------------------------------------------------------------------- synthetic objects
def box_mesh(size, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(12, 3, 3) triangles of an axis-aligned box."""
    c = np.array([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)]) * size + centre
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    return np.array([tri for a, b, cc, d in quads for tri in ((c[a], c[b], c[cc]), (c[a], c[cc], c[d]))])


def revolve(profile: list[tuple[float, float]], segments: int = 32) -> np.ndarray:
    """Triangles of the surface swept by a (radius, height) polyline around the z axis."""
    ang = np.linspace(0, 2 * np.pi, segments + 1)
    tris = []
    for (r0, h0), (r1, h1) in zip(profile[:-1], profile[1:]):
        for a0, a1 in zip(ang[:-1], ang[1:]):
            p = [np.array([r * math.cos(a), r * math.sin(a), h]) for r, h, a in
                 ((r0, h0, a0), (r0, h0, a1), (r1, h1, a1), (r1, h1, a0))]
            tris += [(p[0], p[1], p[2]), (p[0], p[2], p[3])]
    return np.array(tris)


def mesh(name: str) -> np.ndarray:
    """Canonical pose: base on the table plane, elongated objects lying along x, the ring standing."""
    to_x = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], dtype=float)  # maps the z axis onto x
    to_y = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float)  # maps the z axis onto -y
    if name == "cube":
        return box_mesh(np.array([0.08, 0.08, 0.08]))
    if name == "cylinder":
        return revolve([(0, 0), (0.03, 0), (0.03, 0.13), (0, 0.13)]) @ to_x.T
    if name == "cone":
        return revolve([(0, 0), (0.045, 0), (0, 0.10)]) @ to_x.T
    if name == "torus":
        circle = [(0.045 + 0.016 * math.cos(t), 0.016 * math.sin(t)) for t in np.linspace(0, 2 * np.pi, 17)]
        return revolve(circle) @ to_y.T
    if name == "pyramid":
        b, h = 0.05, 0.08
        base = [np.array(v, dtype=float) for v in ((-b, -b, 0), (b, -b, 0), (b, b, 0), (-b, b, 0))]
        apex = np.array([0, 0, h])
        sides = [(base[i], base[(i + 1) % 4], apex) for i in range(4)]
        return np.array(sides + [(base[0], base[2], base[1]), (base[0], base[3], base[2])])
    if name == "l_bracket":
        return np.concatenate([box_mesh(np.array([0.12, 0.04, 0.02]), (0.0, 0.0, 0.01)),
                               box_mesh(np.array([0.02, 0.04, 0.08]), (0.05, 0.0, 0.06))])
    raise KeyError(f"unknown object class {name!r}; known: {CLASSES}")


def sample_surface(tris: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    area = 0.5 * np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    pick = rng.choice(len(tris), size=n, p=area / area.sum())
    u, v = rng.random((2, n, 1))
    flip = (u + v) > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    t = tris[pick]
    return t[:, 0] + u * (t[:, 1] - t[:, 0]) + v * (t[:, 2] - t[:, 0])


def make_dataset(per_class: int, n_points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clouds (M, n_points, 3) centred at their centroid, in the canonical orientation; labels (M,)."""
    rng = np.random.default_rng(seed)
    meshes = [mesh(c) for c in CLASSES]
    clouds, labels = [], []
    for label, tris in enumerate(meshes):
        for _ in range(per_class):
            stretch = rng.uniform(0.8, 1.2) * rng.uniform(0.9, 1.1, size=3)
            pts = sample_surface(tris * stretch, n_points, rng) + rng.normal(0, 0.001, (n_points, 3))
            clouds.append(pts - pts.mean(0))
            labels.append(label)
    return torch.tensor(np.array(clouds), dtype=torch.float32), torch.tensor(labels)


def rotation(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = math.radians(angle_deg)
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k


def rotate(clouds: torch.Tensor, angle_deg: float, axes: np.ndarray) -> torch.Tensor:
    """Rotate cloud i about axes[i] (through its centroid, the origin) by angle_deg."""
    rots = torch.tensor(np.array([rotation(a, angle_deg) for a in axes]), dtype=clouds.dtype)
    return clouds @ rots.transpose(1, 2)


# ----------------------------------------------------------------------------- classifiers
def encoder_config(quick: bool) -> PolicyConfig:
    small = dict(n_centers=16, k_points=8, k_centers=4, scalars=8, vectors=2, tensors2=1) if quick else \
        dict(n_centers=16, k_points=16, k_centers=6, scalars=16, vectors=4, tensors2=2)
    # radii in units of UNIT_M: kNN neighbourhoods of ~2-5 cm, the readout sees the whole object
    return PolicyConfig(min_points=16, point_channels=8, radial_basis=8, radius_points_m=1.0, radius_centers_m=2.0,
                        radius_readout_m=3.0, **small).validate()


class EncoderClassifier(nn.Module):
    """A project encoder (equivariant or PointNet) + MLP; no colour, no condition, no gripper axes."""

    def __init__(self, encoder: nn.Module, n_classes: int):
        super().__init__()
        self.encoder = encoder
        # BatchNorm first: the encoders' scalars vary across objects by ~0.1 (they were sized for scenes)
        self.head = nn.Sequential(nn.BatchNorm1d(encoder.out_scalars), nn.Linear(encoder.out_scalars, 64), nn.SiLU(),
                                  nn.Linear(64, n_classes))

    def forward(self, points):
        points = points / UNIT_M
        b, n, _ = points.shape
        zeros = points.new_zeros
        scalars, _, _ = self.encoder(points, zeros(b, n, 3), zeros(b, 3), zeros(b, 2, 3), zeros(b, 1))
        return self.head(scalars)


def zorder(points: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Morton codes (B, N) of points quantised in a fixed box of +-3 units (+-15 cm): the serialisation order."""
    q = ((points / 6.0 + 0.5).clamp(0, 1 - 1e-6) * (1 << bits)).long()
    code = torch.zeros_like(q[..., 0])
    for bit in range(bits):
        for axis in range(3):
            code |= ((q[..., axis] >> bit) & 1) << (3 * bit + axis)
    return code


class SerializedTransformer(nn.Module):
    """ViT-like: z-order serialised points -> patches of `patch` points -> Transformer -> class token."""

    def __init__(self, n_points: int, n_classes: int, d_model: int = 64, patch: int = 16, layers: int = 2):
        super().__init__()
        self.patch = patch
        self.point_embed = nn.Sequential(nn.Linear(3, d_model), nn.GELU(), nn.Linear(d_model, d_model))
        self.centre_embed = nn.Linear(3, d_model)
        self.pos = nn.Parameter(torch.randn(n_points // patch + 1, d_model) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        layer = nn.TransformerEncoderLayer(d_model, 4, 2 * d_model, dropout=0.0, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, n_classes))

    def forward(self, points):
        points = points / UNIT_M
        b, n, _ = points.shape
        order = zorder(points).argsort(dim=1)
        pts = torch.gather(points, 1, order[..., None].expand(-1, -1, 3)).reshape(b, n // self.patch, self.patch, 3)
        centres = pts.mean(2)
        tokens = self.point_embed(pts - centres[:, :, None]).amax(2) + self.centre_embed(centres)
        x = torch.cat([self.cls.expand(b, -1, -1), tokens], dim=1) + self.pos
        return self.head(self.transformer(x)[:, 0])


def build(name: str, n_points: int, quick: bool) -> nn.Module:
    name = name.removesuffix("_rot_aug")
    cfg = encoder_config(quick)
    if name == "equivariant":
        return EncoderClassifier(EquivariantEncoder(cfg, cond_dim=1), len(CLASSES))
    if name == "pointnet":
        return EncoderClassifier(PointNetEncoder(cfg, cond_dim=1), len(CLASSES))
    if name == "serialized_transformer":
        return SerializedTransformer(n_points, len(CLASSES), d_model=32 if quick else 64)
    raise KeyError(f"unknown model {name!r}; known: {MODELS + AUGMENTED}")


# ----------------------------------------------------------------------------- training and evaluation
def random_rotations(n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 3, 3) rotations uniform on SO(3) (normalised Gaussian quaternions)."""
    w, x, y, z = nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1).unbind(-1)
    return torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], dim=-1).unflatten(-1, (3, 3))


def train(model: nn.Module, clouds, labels, epochs: int, batch: int, lr: float, seed: int,
          augment: bool = False) -> dict:
    """AdamW on canonical-orientation clouds; `augment` rotates each cloud at random every time it is drawn."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(clouds) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    t0, losses = time.perf_counter(), []
    for _ in range(epochs):
        perm = torch.randperm(len(clouds), generator=gen)
        for i in range(0, len(clouds), batch):
            idx = perm[i:i + batch]
            x = clouds[idx]
            if augment:
                x = x @ random_rotations(len(idx), gen).transpose(1, 2)
            loss = nn.functional.cross_entropy(model(x), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    model.eval()
    return {"train_s": time.perf_counter() - t0, "loss_first": float(np.mean(losses[:5])),
            "loss_last": float(np.mean(losses[-5:])), "params": sum(p.numel() for p in model.parameters())}


@torch.inference_mode()
def predict(model: nn.Module, clouds: torch.Tensor, batch: int = 64) -> torch.Tensor:
    return torch.cat([model(clouds[i:i + batch]) for i in range(0, len(clouds), batch)])


def evaluate(model, clouds, labels, angles, axes_by_kind) -> dict:
    """Accuracy per (rotation kind, angle) on the same test clouds, and the largest logit change."""
    base = predict(model, clouds)
    out = {"accuracy": {}, "max_logit_change": {}}
    for kind, axes in axes_by_kind.items():
        out["accuracy"][kind], out["max_logit_change"][kind] = {}, {}
        for angle in angles:
            logits = base if angle == 0 else predict(model, rotate(clouds, angle, axes))
            out["accuracy"][kind][angle] = float((logits.argmax(-1) == labels).float().mean())
            out["max_logit_change"][kind][angle] = float((logits - base).abs().max())
    return out


def plot(results: dict, angles, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    colors = {"equivariant": "tab:green", "pointnet": "tab:orange", "serialized_transformer": "tab:purple"}
    for ax, kind, title in zip(axes, ("gravity", "so3"), ("rotation about gravity (z)", "rotation about a random axis (SO(3))")):
        for name in results:
            acc = results[name]["accuracy"][kind]
            base = name.removesuffix("_rot_aug")
            ax.plot(angles, [acc[a] for a in angles], "o-" if base == name else "s--", color=colors[base],
                    alpha=1.0 if base == name else 0.6, label=name.replace("_rot_aug", " + rotation augmentation"))
        ax.axhline(1 / len(CLASSES), color="gray", ls=":", label="chance")
        ax.set(xlabel="test rotation (degrees); training clouds all at 0", title=title, ylim=(0, 1.05), xticks=angles[::2])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"accuracy ({len(CLASSES)} classes)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the test)")
    ap.add_argument("--train-per-class", type=int, default=100)
    ap.add_argument("--test-per-class", type=int, default=50)
    ap.add_argument("--n-points", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--angle-step", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--name", default="seed_equivariance")
    args = ap.parse_args(argv)
    if args.quick:
        args.train_per_class, args.test_per_class, args.n_points, args.epochs, args.angle_step = 24, 12, 128, 12, 90
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    train_x, train_y = make_dataset(args.train_per_class, args.n_points, seed=args.seed)
    test_x, test_y = make_dataset(args.test_per_class, args.n_points, seed=args.seed + 1)
    rng = np.random.default_rng(args.seed + 2)
    axes_by_kind = {"gravity": np.tile([0.0, 0.0, 1.0], (len(test_x), 1)),
                    "so3": rng.normal(size=(len(test_x), 3))}
    angles = list(range(0, 181, args.angle_step))
    results = {}
    models = MODELS if args.quick else MODELS + AUGMENTED
    for name in models:
        torch.manual_seed(args.seed)
        model = build(name, args.n_points, args.quick)
        results[name] = train(model, train_x, train_y, args.epochs, args.batch, args.lr, args.seed,
                              augment=name in AUGMENTED)
        results[name].update(evaluate(model, test_x, test_y, angles, axes_by_kind))
        print(f"{name}: {results[name]['params']} params, trained {results[name]['train_s']:.0f} s, "
              f"loss {results[name]['loss_first']:.2f} -> {results[name]['loss_last']:.3f}")
    for kind in axes_by_kind:
        rows = [{"angle_deg": a, **{m: results[m]["accuracy"][kind][a] for m in models}} for a in angles]
        bench.print_table(rows, f"\naccuracy, rotation about {'gravity (z)' if kind == 'gravity' else 'random axes (SO(3))'}")
    metrics = {}
    for name in models:
        for kind in axes_by_kind:
            acc = results[name]["accuracy"][kind]
            for a in angles:
                metrics[f"{name}_{kind}_{a}deg_acc"] = acc[a]
            metrics[f"{name}_{kind}_min_acc"] = min(acc.values())
            metrics[f"{name}_{kind}_max_drop_from_0deg"] = acc[0] - min(acc.values())
            metrics[f"{name}_{kind}_max_logit_change"] = max(results[name]["max_logit_change"][kind].values())
        metrics[f"{name}_train_s"] = results[name]["train_s"]
        metrics[f"{name}_params"] = results[name]["params"]
    details = {"classes": CLASSES, "angles_deg": angles, "n_points": args.n_points,
               "train_per_class": args.train_per_class, "test_per_class": args.test_per_class, "epochs": args.epochs,
               "batch": args.batch, "lr": args.lr, "seed": args.seed, "quick": args.quick,
               "encoder_config": encoder_config(args.quick).to_dict(), "results": results,
               "load_average_at_start": os.getloadavg(), "total_s": time.perf_counter() - t_start}
    path = bench.write_results(args.name, metrics, details=details, out_dir=args.out_dir)
    plot(results, angles, path.with_suffix(".png"))
    print(f"\nwrote {path} and {path.with_suffix('.png')}  ({time.perf_counter() - t_start:.0f} s)")
    return path


if __name__ == "__main__":
    main()
