"""Scene grounding: which facts of the skill grammar hold, judged from the point cloud.

The planner never reads simulator state. It sees the observation (coloured point cloud in
the base frame + proprioception) and a small network estimates the facts the skill grammar
talks about ("drawer open", "holding red cube", "blue cube in bowl"...). The simulator's
privileged predicates only *label* the training frames.

Structure, for compositional generalisation: an entity is found by attention over points
with a query computed from the MiniLM embedding of its name; a fact is judged by a head
shared across entities of its relation type (held, lifted, in, on, pushed toward, open,
closed, pressed) from the *geometry* of its one or two entities (attention centroids now and
at the episode start, end-effector, gripper) and a scene-global feature. The head never sees
which entity it judges (no colour/identity features), so it cannot learn "the red cube is
never in the drawer" from training data where that never happened. So
"green cube in drawer" uses the same "in" head as "red cube in drawer", even when no
training frame had the green cube in the drawer. An auxiliary loss ties each entity's
attention centroid to its true position (training only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vla_stack import schema, text

RELATIONS = ("hand_empty", "held", "lifted", "in", "on", "pushed_toward", "open", "closed", "pressed")


@dataclass(frozen=True)
class Fact:
    relation: str  # one of RELATIONS
    a: str = ""  # entity (display name, e.g. "red cube"); "" for hand_empty
    b: str = ""  # second entity for in / on / pushed_toward

    @property
    def text(self) -> str:
        return " ".join(w for w in (self.a, self.relation.replace("_", " "), self.b) if w)


@dataclass
class GroundingConfig:
    width: int = 64
    n_points: int = 512  # points used per frame (random subset while training, strided at inference)


def hidden_by_closed_drawer(f: Fact) -> bool:
    """A closed drawer hides its content from the camera: such facts are remembered, not seen."""
    return f.relation == "in" and f.b == "drawer"


class GroundingNet(nn.Module):
    def __init__(self, entities: list[str], cfg: GroundingConfig) -> None:
        super().__init__()
        self.entities = list(entities)
        self.cfg = cfg
        w = cfg.width
        self.point_mlp = nn.Sequential(nn.Linear(9, w), nn.GELU(), nn.Linear(w, w), nn.GELU(), nn.Linear(w, w))
        self.query = nn.Linear(text.EMBED_DIM, w)
        # extra attention keys from colour and height alone: finding "the blue cube" is a colour match
        self.key_mlp = nn.Sequential(nn.Linear(4, w), nn.GELU(), nn.Linear(w, w))
        # MiniLM embeddings of the entity names: fixed buffers (saved with the weights)
        self.register_buffer("entity_emb", torch.zeros(len(entities), text.EMBED_DIM))
        n_in = len(RELATIONS) + 3 * 6 + 1 + w
        self.head = nn.Sequential(nn.LayerNorm(n_in), nn.Linear(n_in, 128), nn.GELU(), nn.Linear(128, 128), nn.GELU(),
                                  nn.Linear(128, 1))

    def set_entity_embeddings(self, encoder=None) -> None:
        encoder = encoder or text.default_encoder()
        self.entity_emb.copy_(torch.from_numpy(encoder(self.entities)))

    def encode(self, points, colors, state):
        """Per-entity pooled features (B, E, w), centroids (B, E, 3) and a global feature (B, w)."""
        ee = state[:, schema.STATE_EE_POS]
        x = torch.cat([points, colors, points - ee[:, None]], dim=-1)
        phi = self.point_mlp(x)  # (B, N, w)
        q = self.query(self.entity_emb)  # (E, w)
        keys = self.key_mlp(torch.cat([colors, points[..., 2:3] * 10.0], dim=-1))
        # colour keys find cubes and the lit button; point features (with position) the grey drawer
        logits = torch.einsum("bnw,ew->ben", keys + phi, q)  # unscaled: an entity is a few sharp points
        attn = logits.softmax(dim=-1)
        feats = attn @ phi  # (B, E, w)
        cent = attn @ points  # (B, E, 3)
        return feats, cent, phi.max(dim=1).values

    def judge(self, feats, cent, glob, state, start_cent, facts_idx):
        """Logits for facts. facts_idx: (F, 3) long = (relation, entity a, entity b), -1 = none."""
        B, F = feats.shape[0], facts_idx.shape[0]
        rel = nn.functional.one_hot(facts_idx[:, 0], len(RELATIONS)).float()[None].expand(B, F, -1)

        def pick(t, idx):
            z = torch.zeros_like(t[:, :1]).expand(-1, F, *t.shape[2:])
            return torch.where((idx >= 0)[None, :, None], t[:, idx.clamp(min=0)], z)

        ca, cb = pick(cent, facts_idx[:, 1]), pick(cent, facts_idx[:, 2])
        sa = pick(start_cent, facts_idx[:, 1])
        ee = state[:, None, schema.STATE_EE_POS].expand(-1, F, -1)
        grip = (state[:, None, schema.STATE_GRIPPER].expand(-1, F, -1) - 0.04) * 50.0  # cube width ~ 0
        geo = torch.cat([ca, cb, ca - cb, ca - sa, cb - sa, ee - ca], dim=-1) * 5.0
        x = torch.cat([rel, geo, grip, glob[:, None].expand(-1, F, -1)], dim=-1)
        return self.head(x).squeeze(-1)  # (B, F)

    def fact_index(self, facts: list[Fact]) -> torch.Tensor:
        ent = {e: i for i, e in enumerate(self.entities)}
        rows = []
        for f in facts:
            for e in (f.a, f.b):
                if e and e not in ent:
                    raise schema.SchemaError(f"fact {f.text!r}: entity {e!r} unknown to the grounding model {self.entities}")
            rows.append((RELATIONS.index(f.relation), ent.get(f.a, -1) if f.a else -1, ent.get(f.b, -1) if f.b else -1))
        return torch.tensor(rows, dtype=torch.long).reshape(-1, 3)


def subsample(points, colors, n: int, generator: torch.Generator | None = None):
    """n points: random while training (generator given), evenly strided otherwise."""
    N = points.shape[-2]
    if N <= n:
        return points, colors
    if generator is None:
        idx = torch.linspace(0, N - 1, n).long()
    else:
        idx = torch.randperm(N, generator=generator)[:n]
    return points[..., idx, :], colors[..., idx, :]
