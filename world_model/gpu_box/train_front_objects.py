"""Train the object-mask front-camera world model on the generated shards: train.py TIME_LIMIT_S OUT [STEPS]."""
import glob
import os
import sys
from pathlib import Path

import vla_stack.text as text

def _no_model():
    raise RuntimeError("MiniLM needed for a text missing from VLA_TEXT_CACHE")
text._model = _no_model

from vla_stack.world_model.config import WorldModelConfig
from vla_stack.world_model.train import TrainConfig, train

data = tuple(Path(p) for p in sorted(glob.glob("/tmp/gen/s*/front/train.npz")))
print("shards:", len(data))
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 10**6
small = len(sys.argv) > 3
model = WorldModelConfig(object_masks=True, word_tokens=False, object_colour_input=os.environ.get("COLOUR_INPUT") == "1",
                         **({"channels": (8, 8, 8, 8, 8)} if small else {}))
train(TrainConfig(data=data, out=Path(sys.argv[2]), model=model, steps=steps, time_limit_s=float(sys.argv[1]),
                  batch_size=64 if not small else 4, lr=2e-3, save_fp16=True, object_weight=16.0, colour_permute_prob=0.5,
                  log_every=250 if not small else 1))
