"""Candidate splits of an instruction into clauses, for planning each clause on its own.

A held-out *sequence* ("put the green cube in the bowl, then press the button") is often
two trained instructions joined by a connective. The decoder plans each clause, and the
split with the most confident plan wins (`learned.py`), with no split as one candidate: a
trained multi-step phrasing ("open the drawer, put the cube inside and close it") stays
whole because the decoder is most confident on it.

Cut points: connectives (", then", "and then", "then", ",", "and"), and the end of a noun
phrase naming an entity when a new verb follows ("after pressing the button | tuck ...").
"""

from __future__ import annotations

import itertools
import re

CONNECTIVE = re.compile(r"\s*(?:,\s*and then|,\s*then|\band then\b|\bthen\b|,\s*and\b|,|\band\b)\s*")
LEADING = re.compile(r"^(?:first|after that|afterwards|next|finally|and|after)\s+")
NOUNS = {"button", "drawer", "bowl", "cube", "block", "one", "cubes", "blocks"}
#: words that continue a phrase after a noun rather than starting a new clause
CONTINUES = {"in", "into", "on", "onto", "toward", "towards", "to", "inside", "above", "below", "over", "off", "down",
             "up", "out", "open", "closed", "shut", "away", "back", "first", "both", "goes", "belongs", "and", "then",
             "with", "from", "closer", "without", "in the", "a", "the", "is", "as", "so"}
MAX_CLAUSES = 3


def _cuts(text: str) -> list[tuple[int, int]]:
    """(end of left clause, start of right clause) character positions."""
    cuts = [(m.start(), m.end()) for m in CONNECTIVE.finditer(text) if 0 < m.start() and m.end() < len(text)]
    for m in re.finditer(r"\b(\w+)(?=(\s+)(\w+))", text):
        if m.group(1).lower() in NOUNS and m.group(3).lower() not in CONTINUES:
            if not any(a <= m.end(1) <= b for a, b in cuts):
                cuts.append((m.end(1), m.end(1) + len(m.group(2))))
    return sorted(set(cuts))


def _clean(clause: str) -> str:
    return LEADING.sub("", clause.strip(" ,")).strip()


def candidate_splits(text: str) -> list[list[str]]:
    """The whole text, and every split at 1..MAX_CLAUSES-1 cut points into non-empty clauses."""
    cands = [[text]]
    cuts = _cuts(text)
    for k in range(1, MAX_CLAUSES):
        for chosen in itertools.combinations(cuts, k):
            pieces, pos = [], 0
            for a, b in chosen:
                pieces.append(text[pos:a])
                pos = b
            pieces.append(text[pos:])
            pieces = [_clean(p) for p in pieces]
            if all(len(p.split()) >= 2 for p in pieces):
                cands.append(pieces)
    return cands
