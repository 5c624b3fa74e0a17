"""One generator shard (no tyro on the GPU box): gen.py SPLIT SHARD EPISODES_PER_TASK OUT_DIR CAMERAS."""
import sys
from pathlib import Path

import vla_stack.text as text

def _no_model():
    raise RuntimeError("MiniLM needed for a text missing from VLA_TEXT_CACHE")
text._model = _no_model
text.default_encoder()  # loads the cache before any EGL context

from vla_stack.world_model.generate import GenerateConfig, generate

split, shard, k, out, cams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], tuple(sys.argv[5].split(","))
generate(GenerateConfig(split=split, episodes_per_task=k, stride=4, cameras=cams, out_dir=Path(out) / f"s{shard}",
                        seed=1_000_000 + 20_000 * shard if split == "train" else 2_000_000 + 20_000 * shard))
