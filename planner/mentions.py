"""Find which scene entities an instruction mentions, and abstract the movable ones away.

Compositional generalisation comes from here: "put the blue cube in the drawer" and "put
the red cube in the drawer" both become "put the cube A in the drawer", so a plan learned
for one colour applies to every colour, and a held-out object/skill/target combination is
an ordinary input for the learned decoder. Placeholders are bound in order of mention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .refusal import COLOUR_WORDS, words

PLACEHOLDERS = ("cube A", "cube B", "cube C", "cube D")
#: nouns a user may use for an entity's noun (entity name's last word)
NOUN_SYNONYMS = {
    "cube": ("cube", "cubes", "block", "blocks", "box"),
    "drawer": ("drawer",),
    "bowl": ("bowl", "bin", "basket", "dish"),
    "button": ("button", "switch"),
}


def entity_words(entity: str) -> list[str]:
    return words(entity.replace("_", " "))


def is_movable(entity: str) -> bool:
    """Entities with a colour in their name are the interchangeable objects (cubes)."""
    ws = entity_words(entity)
    return len(ws) > 1 and ws[0] in COLOUR_WORDS


@dataclass(frozen=True)
class Mention:
    entity: str
    start: int  # word index of the mention in the instruction
    end: int  # one past the last word


def find_mentions(text: str, entities) -> list[Mention]:
    """Mentions of `entities` in `text`, in order of appearance (each entity once)."""
    toks = words(text)
    found: dict[str, Mention] = {}
    for e in entities:
        ew = entity_words(e)
        nouns = NOUN_SYNONYMS.get(ew[-1], (ew[-1],))
        if is_movable(e):
            colour = ew[0]
            for i, w in enumerate(toks):
                if w != colour:
                    continue
                # "blue cube", "blue one", or a bare "blue" when it names this object
                end = i + 2 if i + 1 < len(toks) and (toks[i + 1] in nouns or toks[i + 1] == "one") else i + 1
                found.setdefault(e, Mention(e, i, end))
                break
        else:
            for i, w in enumerate(toks):
                if w in nouns:
                    found.setdefault(e, Mention(e, i, i + 1))
                    break
    return sorted(found.values(), key=lambda m: m.start)


@dataclass(frozen=True)
class Delexicalized:
    text: str  # instruction with movable objects replaced by placeholders
    binding: dict[str, str]  # placeholder -> entity

    def lexicalize(self, subtask_template: str, display) -> str:
        out = subtask_template
        for ph, e in self.binding.items():
            out = out.replace(ph, display(e))
        return out


def delexicalize(text: str, entities) -> Delexicalized:
    toks = words(text)
    movable = [m for m in find_mentions(text, entities) if is_movable(m.entity)]
    binding = {}
    out, pos = [], 0
    for ph, m in zip(PLACEHOLDERS, movable):
        out += toks[pos:m.start] + [ph]
        pos = m.end
        binding[ph] = m.entity
    out += toks[pos:]
    return Delexicalized(" ".join(out), binding)


def template_of(subtask_text: str, binding: dict[str, str], display) -> str:
    """A canonical subtask text with bound entities replaced by their placeholders."""
    out = subtask_text
    for ph, e in binding.items():
        out = re.sub(rf"\b{re.escape(display(e))}\b", ph, out)
    return out
