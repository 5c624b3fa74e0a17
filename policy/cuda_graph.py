"""One streaming tick of the Mamba policy captured as a CUDA graph: at batch 1 the step is a
few hundred small kernels, so launch overhead, not arithmetic, sets the latency. The Mamba
state is updated in place, which is what makes the step capturable (a growing KV cache is not)."""

from __future__ import annotations

import torch

from .model import PolicyModel
from .object_channels import CODE_DIM, N_CHANNELS


class GraphedStep:
    def __init__(self, model: PolicyModel, batch: int, n_points: int, warmup: int = 3):
        if model.cfg.backbone != "mamba":
            raise ValueError("CUDA-graph capture needs the Mamba backbone (the Transformer's KV cache grows)")
        p = next(model.parameters())
        if p.device.type != "cuda":
            raise ValueError("GraphedStep needs the model on a CUDA device")
        self.model = model.eval()
        self.bstate = model.init_state(batch, p.device)
        z = lambda *s: torch.zeros(*s, device=p.device, dtype=p.dtype)  # noqa: E731
        self.inputs = [z(batch, n_points, 3), z(batch, n_points, 3), z(batch, 15), z(batch, model.cfg.text_dim)]
        self.inputs[0].normal_()
        self.inputs[2][:, 3] = 1.0  # identity quaternion
        if model.cfg.object_channels:
            self.inputs.append(z(batch, N_CHANNELS, CODE_DIM))  # object codes (object_channels.object_codes)
        with torch.inference_mode():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(warmup):
                    self._step()
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.out = self._step()
        self.reset()

    def _step(self) -> torch.Tensor:
        objects = self.inputs[4] if len(self.inputs) > 4 else None
        return self.model.step(*self.inputs[:4], self.bstate, objects=objects)

    def reset(self) -> None:
        for layer in self.bstate["layers"]:
            layer.conv.zero_()
            layer.ssm.zero_()

    def __call__(self, points, colors, state, text, objects=None) -> torch.Tensor:
        """Inputs as for `PolicyModel.step`; returns the static output (copy it to keep it)."""
        if (objects is None) != (len(self.inputs) == 4):
            raise ValueError("GraphedStep: pass objects exactly when the model has object channels")
        for dst, src in zip(self.inputs, (points, colors, state, text, objects)):
            dst.copy_(src)
        self.graph.replay()
        return self.out
