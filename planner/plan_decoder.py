"""Instruction -> ordered subtasks: a small autoregressive decoder over subtask templates.

Input: the MiniLM embedding of the *delexicalised* instruction ("put the cube A in the
drawer"), the previous template and the set of templates emitted so far. Output: the next
template ("pick up the cube A") or DONE. Templates are canonical subtask texts with bound
objects abstracted, so the output is composed from the skill grammar seen in training and
re-bound to whichever objects the instruction names: held-out object/skill/target
combinations are reachable by construction (docs/planner.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vla_stack import text

from .grammar import PlanExample
from .mentions import delexicalize, template_of

DONE_CLASS = 0  # output class 0 is DONE; class k >= 1 is templates[k - 1]
BOS = 0  # previous-template input 0 means "start of plan"


@dataclass
class PlanDecoderConfig:
    hidden: int = 256
    max_steps: int = 8
    dropout: float = 0.1


class PlanDecoder(nn.Module):
    def __init__(self, templates: list[str], cfg: PlanDecoderConfig) -> None:
        super().__init__()
        self.templates = list(templates)
        self.cfg = cfg
        n = len(templates)
        self.prev = nn.Embedding(n + 1, cfg.hidden)
        self.step = nn.Embedding(cfg.max_steps + 1, cfg.hidden)
        self.so_far = nn.Linear(n, cfg.hidden, bias=False)
        self.instr = nn.Linear(text.EMBED_DIM, cfg.hidden)
        # delexicalised training instructions (unit MiniLM vectors): how familiar a clause is
        self.register_buffer("memory", torch.zeros(0, text.EMBED_DIM))
        self.memory_texts: list[str] = []  # the texts of those rows
        self.mlp = nn.Sequential(nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, n + 1))

    def forward(self, instr_emb, prev, step, so_far):
        h = self.instr(instr_emb) + self.prev(prev) + self.step(step.clamp(max=self.cfg.max_steps)) + self.so_far(so_far)
        return self.mlp(h)


def teacher_forcing_rows(examples: list[PlanExample], entities_of, templates: list[str] | None = None):
    """(delex instruction, prev, step, so_far multi-hot, target class) rows, and the template list."""
    seqs = []
    for ex in examples:
        d = delexicalize(ex.instruction, entities_of(ex))
        seqs.append((d.text, [template_of(s, d.binding, str) for s in ex.plan]))
    if templates is None:
        templates = sorted({t for _, ts in seqs for t in ts})
    index = {t: i + 1 for i, t in enumerate(templates)}
    rows = []
    for instr, ts in seqs:
        so_far = [0.0] * len(templates)
        prev = BOS
        for step, t in enumerate([*ts, None]):
            target = DONE_CLASS if t is None else index.get(t)
            if target is None:
                break  # a template unknown to this decoder: cannot be a training target
            rows.append((instr, prev, step, list(so_far), target))
            if t is not None:
                prev = index[t]
                so_far[index[t] - 1] = 1.0
    return rows, templates

