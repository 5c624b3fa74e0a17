"""`ActionExpert`: the streaming policy API the simulator loop and the ROS node call.

Checks every input at the boundary (shapes, NaN, too few points), embeds the subtask with
MiniLM (cached per string), advances the backbone by one tick and turns the predicted chunk
into one de-normalized schema action.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vla_stack import schema

from .checkpoint import load_checkpoint, recorded_execution, save_checkpoint
from .chunking import ChunkExecutor
from .model import PolicyModel
from .object_channels import codes_for

log = logging.getLogger(__name__)


class ActionExpert:
    def __init__(self, model: PolicyModel, *, execution: Literal["ensemble", "receding"] = "ensemble",
                 exec_steps: int | None = None, clear_on_switch: bool = False, device: str | torch.device = "cpu",
                 text_encoder=None):
        """`clear_on_switch`: when the subtask text changes, drop the chunks predicted for the previous one
        (ChunkExecutor)."""
        self.model = model.to(device).eval()
        self.cfg = model.cfg
        self.device = torch.device(device)
        self.executor = ChunkExecutor(self.cfg.horizon, execution, exec_steps, clear_on_switch=clear_on_switch)
        self.clear_on_switch = clear_on_switch
        self._text = text_encoder
        self._warned_subgoal = False
        self.reset()

    @classmethod
    def load(cls, checkpoint_dir: Path | str, **kwargs) -> "ActionExpert":
        """`execution=None` (or absent) runs the chunk execution recorded in the checkpoint, else ensemble."""
        model, meta = load_checkpoint(checkpoint_dir)
        if kwargs.get("execution") is None:
            kwargs = ({k: v for k, v in kwargs.items() if k not in ("execution", "exec_steps", "clear_on_switch")}
                      | recorded_execution(meta))
        return cls(model, **kwargs)

    def save(self, checkpoint_dir: Path | str, meta: dict | None = None) -> Path:
        return save_checkpoint(checkpoint_dir, self.model, meta)

    def reset(self) -> None:
        """New instruction or episode: clear the recurrent state and the pending chunks."""
        self.state = self.model.init_state(1, self.device)
        self.executor.reset()
        self.ticks = 0

    def embed(self, subtask: str) -> np.ndarray:
        if not isinstance(subtask, str) or not subtask.strip():
            raise schema.SchemaError(f"subtask: expected a non-empty string, got {subtask!r}")
        if self._text is None:
            from vla_stack import text

            self._text = text.default_encoder()
        return self._text(subtask)

    @torch.inference_mode()
    def predict_chunk(self, points, colors, state, subtask: str, subgoal_latent=None) -> np.ndarray:
        """One tick: the whole de-normalized chunk (H, 7) predicted now (advances the state)."""
        pts, cols = schema.check_points(points, colors, min_points=self.cfg.min_points)
        if cols is None:
            cols = np.full_like(pts, 0.5)
        st = schema.check_array("state", state, (schema.STATE_DIM,))
        if np.linalg.norm(st[schema.STATE_EE_QUAT]) < 1e-6:
            raise schema.SchemaError("state: end-effector quaternion has zero norm")
        emb = self.embed(subtask)
        sub = mask = None
        if subgoal_latent is not None:
            if not self.cfg.subgoal_dim:
                if not self._warned_subgoal:
                    log.warning("subgoal latent ignored: this checkpoint was trained without one")
                    self._warned_subgoal = True
            else:
                sub = torch.from_numpy(schema.check_array("subgoal_latent", subgoal_latent, (self.cfg.subgoal_dim,)))
                sub = sub[None].to(self.device)
                mask = torch.ones(1, dtype=torch.bool, device=self.device)
        t = lambda x: torch.from_numpy(np.ascontiguousarray(x))[None].to(self.device)  # noqa: E731
        dtype = next(self.model.parameters()).dtype
        codes = torch.from_numpy(codes_for(self.cfg, [subtask])).to(self.device, dtype)
        chunk = self.model.step(t(pts).to(dtype), t(cols).to(dtype), t(st).to(dtype), t(emb).to(dtype), self.state,
                                None if sub is None else sub.to(dtype), mask, codes)
        self.ticks += 1
        return self.model.normalizer.unnormalize_action(chunk)[0].float().cpu().numpy()

    def step(self, points, colors, state, subtask: str, subgoal_latent=None) -> np.ndarray:
        """-> np.float32 (7,): de-normalized schema action, clipped to the schema's limits."""
        chunk = self.predict_chunk(points, colors, state, subtask, subgoal_latent)
        return schema.validate_action(self.executor(chunk, subtask))
