"""Word tokens of a subtask: one MiniLM embedding per word, in order.

The sentence embedding alone generalises poorly to held-out compositions: with a dozen
training subtasks the network memorises a dozen points of embedding space, and "stack the
blue cube on the red cube" lands between them. Words recombine: "blue", "red", "stack",
"bowl" each occur in training in other subtasks, and cross-attention from image features to
the word tokens (with their positions: the first cube named is the one that moves) can
reuse them in a new combination.
"""

from __future__ import annotations

import re

import numpy as np

from vla_stack.text import EMBED_DIM, TextEncoder, default_encoder

MAX_WORDS = 16


def split_words(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    if not words:
        raise ValueError(f"subtask {text!r}: no words")
    return words[:MAX_WORDS]


def word_tokens(texts: list[str], encoder: TextEncoder | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(T, MAX_WORDS, EMBED_DIM) float32 word embeddings (zero padded) and (T, MAX_WORDS) bool mask."""
    encoder = encoder or default_encoder()
    emb = np.zeros((len(texts), MAX_WORDS, EMBED_DIM), np.float32)
    mask = np.zeros((len(texts), MAX_WORDS), bool)
    for i, t in enumerate(texts):
        words = split_words(t)
        emb[i, : len(words)] = encoder(words)
        mask[i, : len(words)] = True
    return emb, mask


if __name__ == "__main__":  # add word tokens to triples files made before they existed
    import sys

    from .triples import SubgoalEpisodes

    for path in sys.argv[1:]:
        d = SubgoalEpisodes.load(path)
        d.word_embeddings, d.word_mask = word_tokens(d.texts)
        d.save(path)
        print(f"{path}: word tokens for {len(d.texts)} texts")
