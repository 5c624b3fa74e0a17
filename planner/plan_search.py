"""Plan an instruction: decode every candidate clause split, keep the most confident plan.

Confidence of a split = the lowest familiarity of its clauses. A clause's familiarity is
its best match among the training instructions (the decoder keeps them): cosine similarity
of the delexicalised MiniLM embeddings, scaled by word-order agreement (difflib ratio,
because sentence embeddings barely see order: "put X in the bowl, then press the button"
embeds like the trained "press the button, then put X in the bowl"). A decoder overfit to
45 phrasings is confident on anything, so its softmax cannot rank splits; closeness to
what it was trained on can. Ties go to fewer clauses. Consecutive
duplicates from joining clauses are merged ("open the drawer" + "...in the drawer").
"""

from __future__ import annotations

import difflib

import torch

from vla_stack import schema, text

from .grammar import SkillCatalog
from .mentions import PLACEHOLDERS, delexicalize
from .plan_decoder import BOS, DONE_CLASS, PlanDecoder
from .segment import candidate_splits


def familiarity_of(model: PlanDecoder, delex_text: str, emb: torch.Tensor) -> float:
    if not model.memory_texts:
        return 1.0
    cos = model.memory @ emb
    order = torch.tensor([difflib.SequenceMatcher(None, delex_text.split(), t.split()).ratio()
                          for t in model.memory_texts])
    return float((cos * (0.5 + 0.5 * order)).max())


def decode_clause(model: PlanDecoder, clause: str, catalog: SkillCatalog, binding_entities, encoder):
    """(plan, weakest step probability) for one clause; ([], 0) if nothing executable."""
    d = delexicalize(clause, binding_entities)
    valid = torch.zeros(len(model.templates) + 1, dtype=torch.bool)
    valid[DONE_CLASS] = True
    for i, t in enumerate(model.templates):
        if any(ph in t for ph in PLACEHOLDERS if ph not in d.binding):
            continue
        valid[i + 1] = catalog.parse(d.lexicalize(t, str)) is not None
    emb = torch.from_numpy(encoder(d.text)).unsqueeze(0)
    familiarity = familiarity_of(model, d.text, emb[0])
    so_far = torch.zeros(1, len(model.templates))
    prev, plan = BOS, []
    with torch.no_grad():
        for step in range(model.cfg.max_steps):
            logits = model(emb, torch.tensor([prev]), torch.tensor([step]), so_far)[0]
            probs = logits.masked_fill(~valid, float("-inf")).softmax(-1)
            k = int(probs.argmax())
            if k == DONE_CLASS:
                break
            plan.append(catalog.get(d.lexicalize(model.templates[k - 1], str)).text)
            prev = k
            so_far[0, k - 1] = 1.0
    return plan, (familiarity if plan else 0.0)


def plan_instruction(model: PlanDecoder, instruction: str, catalog: SkillCatalog, encoder=None,
                     return_details: bool = False):
    encoder = encoder or text.default_encoder()
    model.eval()
    best = None
    for split in candidate_splits(instruction):
        plan, conf = [], 1.0
        for clause in split:
            p, c = decode_clause(model, clause, catalog, catalog.entities, encoder)
            conf = min(conf, c)
            for s in p:
                if not plan or plan[-1] != s:
                    plan.append(s)
        if best is None or conf > best[1] + 1e-3:
            best = (plan, conf, split)
    plan, conf, split = best
    if not plan or conf <= 0.0:
        raise schema.SchemaError(f"instruction {instruction!r}: no executable subtask could be planned in this scene")
    return (plan, conf, split) if return_details else plan
