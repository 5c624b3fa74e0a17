"""Checks that make a planner refuse an instruction instead of inventing a plan.

Refused: empty text, over-long text (a planner prompt is not a document), and text naming
an object the scene does not hold. The last check is lexical on purpose: a colour + shape
phrase ("the purple cube", "the red bowl") is compared with the entities actually present,
so "put the purple cube in the drawer" is refused even though a learned model would
happily map it to the nearest cube it knows.
"""

from __future__ import annotations

import re

from vla_stack import schema

MAX_INSTRUCTION_CHARS = 240
MAX_INSTRUCTION_WORDS = 40

#: Colour words a user may write; an entity colour outside this list is still handled,
#: because the catalogue's own entity words are added at run time.
COLOUR_WORDS = frozenset(
    "red green blue yellow orange purple violet pink magenta cyan teal black white grey gray brown "
    "golden silver beige maroon navy turquoise".split()
)
#: Object nouns a user may write for things the suite does not have. Not exhaustive: an
#: unknown noun outside this list is caught by the learned planner's grounding check instead.
OBJECT_NOUNS = frozenset(
    "cube cubes block blocks box ball sphere cylinder bowl bin basket cup mug plate bottle can drawer "
    "cabinet button switch lever door lid apple banana orange sponge tray shelf".split()
)


class InstructionRefused(schema.SchemaError):
    """The planner will not plan for this instruction; the message says why."""


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def check_instruction(instruction, scene_entities: list[str] | tuple[str, ...],
                      known_entities: list[str] | tuple[str, ...] = ()) -> str:
    """Return the instruction stripped, or raise InstructionRefused naming the problem."""
    if not isinstance(instruction, str):
        raise InstructionRefused(f"instruction: expected text, got {type(instruction).__name__}")
    text = " ".join(instruction.split())
    if not text:
        raise InstructionRefused("instruction is empty: say what the robot should do")
    if len(text) > MAX_INSTRUCTION_CHARS or len(words(text)) > MAX_INSTRUCTION_WORDS:
        raise InstructionRefused(
            f"instruction is too long ({len(text)} characters, {len(words(text))} words; at most "
            f"{MAX_INSTRUCTION_CHARS} characters and {MAX_INSTRUCTION_WORDS} words): give one task")
    if not words(text):
        raise InstructionRefused(f"instruction {text!r} has no words")
    missing = absent_entities(text, scene_entities, known_entities)
    if missing:
        raise InstructionRefused(
            f"instruction names {', '.join(repr(m) for m in missing)}, which is not in the scene "
            f"(the scene holds: {', '.join(sorted(scene_entities))})")
    return text


def absent_entities(text: str, scene_entities, known_entities=()) -> list[str]:
    """Colour + noun phrases in `text` that match no entity of the scene."""
    ents = [words(e) for e in scene_entities]
    known_words = {w for e in (*known_entities, *scene_entities) for w in words(e)}
    colours = COLOUR_WORDS | {w for e in (*known_entities, *scene_entities) for w in words(e)[:-1]}
    nouns = OBJECT_NOUNS | {words(e)[-1] for e in (*known_entities, *scene_entities) if words(e)}
    toks = words(text)
    missing = []
    for i, w in enumerate(toks):
        if w not in nouns:
            continue
        colour = toks[i - 1] if i > 0 and toks[i - 1] in colours else None
        if colour is None and w not in known_words:
            # a bare noun the suite has never heard of ("the banana")
            missing.append(w)
            continue
        if colour is None:
            # bare known noun ("the drawer", "the cube"): fine if some scene entity has it
            if not any(w in e or _singular(w) in e for e in ents):
                missing.append(w)
            continue
        if not any(colour in e and (w in e or _singular(w) in e or _synonym(w, e)) for e in ents):
            missing.append(f"{colour} {w}")
    return missing


def _singular(w: str) -> str:
    return w[:-1] if w.endswith("s") else w


_SHAPE_SYNONYMS = {"block": "cube", "box": "cube", "blocks": "cube", "cubes": "cube"}


def _synonym(w: str, entity_words: list[str]) -> bool:
    return _SHAPE_SYNONYMS.get(w, w) in entity_words
