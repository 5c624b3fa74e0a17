"""`WorldModel`: checks camera inputs, runs the subgoal U-Net, returns images and a latent.

This is the boundary other components call (the action expert, `vla eval`, the ROS node),
so every input is validated here and a wrong one raises `schema.SchemaError` naming it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vla_stack import schema
from vla_stack.text import EMBED_DIM, default_encoder

from . import objects
from .config import WorldModelConfig
from .unet import SubgoalUNet
from .words import word_tokens

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: The world model a user gets when naming none (`predict_subgoal`, `vla eval world-model`, the ROS node):
#: the shipped one, which links to the current checkpoint (`vla ship`, agent/weights.py).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "shipped" / "world_model"


@dataclass
class Subgoal:
    rgb: np.ndarray  # uint8 (H, W, 3): the camera image expected when the subtask is done
    depth: np.ndarray | None  # float32 (H, W) metres, or None for an RGB-only model
    latent: np.ndarray  # float32 (latent_dim,): what the action expert is conditioned on


def check_rgb(rgb, size: int, name: str = schema.OBS_RGB) -> np.ndarray:
    """uint8 (size, size, 3) or (B, size, size, 3); anything else is refused, not converted."""
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8:
        raise schema.SchemaError(f"{name}: expected dtype uint8 (0..255), got {arr.dtype}")
    if arr.ndim not in (3, 4) or arr.shape[-3:] != (size, size, 3):
        raise schema.SchemaError(f"{name}: expected shape ({size}, {size}, 3) [with an optional batch axis], got {arr.shape}")
    return arr


def check_depth(depth, size: int, batch_shape: tuple, name: str = schema.OBS_DEPTH) -> np.ndarray:
    """float32 metres, same batch and size as the image, finite and non-negative."""
    arr = np.asarray(depth)
    if not np.issubdtype(arr.dtype, np.floating):
        raise schema.SchemaError(f"{name}: expected a float32 array in metres, got dtype {arr.dtype}")
    if arr.shape != (*batch_shape, size, size):
        raise schema.SchemaError(f"{name}: expected shape {(*batch_shape, size, size)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise schema.SchemaError(f"{name}: contains NaN/inf")
    if np.any(arr < 0):
        raise schema.SchemaError(f"{name}: contains negative depth ({float(arr.min()):.3g} m)")
    return arr.astype(np.float32, copy=False)


def check_subtask(text) -> str:
    if not isinstance(text, str):
        raise schema.SchemaError(f"{schema.INFO_SUBTASK}: expected a string, got {type(text).__name__}")
    if not text.strip():
        raise schema.SchemaError(f"{schema.INFO_SUBTASK}: empty subtask text")
    if text.strip() == schema.DONE_TOKEN:
        raise schema.SchemaError(f"{schema.INFO_SUBTASK}: {schema.DONE_TOKEN!r} is the planner's end token, not a subtask")
    return text


class WorldModel:
    """Predicts the end-of-subtask camera frame (and depth) from the current frame and text."""

    def __init__(self, config: WorldModelConfig | None = None, net: SubgoalUNet | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.config = config or WorldModelConfig()
        self.net = (net or SubgoalUNet(self.config)).to(device).eval()
        self.device = torch.device(device)

    # -- checkpoints: safetensors + JSON, never pickle ------------------------------------
    def save(self, directory: Path | str, half: bool = False) -> Path:
        """`half` stores float16 weights (half the size in git; loading converts back to float32)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(self.config.to_json() + "\n")
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        return directory

    @classmethod
    def load(cls, directory: Path | str, device: str | torch.device = "cpu") -> "WorldModel":
        directory = Path(directory)
        for f in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / f).is_file():
                raise FileNotFoundError(f"world model checkpoint {directory}: missing {f} (train one with `vla train world-model`)")
        config = WorldModelConfig.load(directory / CONFIG_FILE)
        net = SubgoalUNet(config)
        try:
            state = load_file(str(directory / WEIGHTS_FILE))
        except Exception as e:  # safetensors raises its own error types for corrupt files
            raise ValueError(f"world model checkpoint {directory / WEIGHTS_FILE}: unreadable ({e})") from None
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"world model checkpoint {directory}: weights do not match config.json "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        return cls(config, net, device)

    # -- tensors <-> images ----------------------------------------------------------------
    def encode_images(self, rgb: np.ndarray, depth: np.ndarray | None) -> torch.Tensor:
        """uint8 RGB (B,H,W,3) + metres (B,H,W) -> (B, 3 or 4, H, W) in [-1, 1]."""
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if self.config.predict_depth:
            d = torch.from_numpy(np.ascontiguousarray(depth)).to(self.device).float()[:, None]
            x = torch.cat([x, (d / self.config.depth_max_m).clamp(0, 1) * 2 - 1], dim=1)
        return x

    def decode_images(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        x = x.clamp(-1, 1)
        rgb = ((x[:, :3] + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        depth = None
        if self.config.predict_depth:
            depth = ((x[:, 3] + 1) / 2 * self.config.depth_max_m).float().cpu().numpy()
        return rgb, depth

    # -- prediction --------------------------------------------------------------------------
    @torch.inference_mode()
    def predict_batch(self, rgb: np.ndarray, depth: np.ndarray | None, text_embeddings: np.ndarray,
                      word_embeddings: np.ndarray | None = None, word_mask: np.ndarray | None = None,
                      object_masks: np.ndarray | None = None, object_colours: np.ndarray | None = None) -> list[Subgoal]:
        """Batched prediction from precomputed conditioning (embeddings of the text the model reads: the
        delexicalised one for an object-mask model; words.py for the tokens; objects.py for the masks).
        `predict_subtasks` computes all of that from plain subtask strings."""
        size = self.config.image_size
        rgb = check_rgb(rgb, size)
        if rgb.ndim == 3:
            raise schema.SchemaError(f"{schema.OBS_RGB}: predict_batch needs a batch axis, got {rgb.shape}")
        if self.config.predict_depth:
            if depth is None:
                raise schema.SchemaError(f"{schema.OBS_DEPTH}: this world model was trained with depth; pass the depth image")
            depth = check_depth(depth, size, rgb.shape[:1])
        emb = schema.check_array("subtask_embedding", text_embeddings, (rgb.shape[0], EMBED_DIM))
        words = mask = None
        if self.config.word_tokens:
            if word_embeddings is None or word_mask is None:
                raise schema.SchemaError("subtask: this world model needs word tokens (words.word_tokens) beside the sentence embedding")
            words = torch.from_numpy(schema.check_array("word_embeddings", word_embeddings, (rgb.shape[0], None, EMBED_DIM))).to(self.device)
            mask = torch.from_numpy(np.asarray(word_mask, bool)).to(self.device)
            if mask.shape != words.shape[:2] or not bool(mask.any(dim=1).all()):
                raise schema.SchemaError(f"word_mask: expected {tuple(words.shape[:2])} with at least one word per subtask")
        masks = None
        if self.config.object_masks:
            if object_masks is None:
                raise schema.SchemaError("object_masks: this world model needs the subtask's object masks (objects.object_masks)")
            size_hw = (rgb.shape[0], objects.N_MASKS, size, size)
            if isinstance(object_masks, torch.Tensor):  # made on the device by object_masks_on_device
                if tuple(object_masks.shape) != size_hw:
                    raise schema.SchemaError(f"object_masks: expected shape {size_hw}, got {tuple(object_masks.shape)}")
                masks = object_masks.to(self.device)
            else:
                masks = torch.from_numpy(schema.check_array("object_masks", np.asarray(object_masks, np.float32), size_hw)).to(self.device)
        colours = None
        if self.net.colour_inputs:
            if object_colours is None:
                raise schema.SchemaError("object_colours: this world model needs the named cubes' colours (objects.colour_vector)")
            colours = torch.from_numpy(schema.check_array("object_colours", np.asarray(object_colours, np.float32),
                                                          (rgb.shape[0], self.net.colour_inputs))).to(self.device)
        out, latent = self.net(self.encode_images(rgb, depth), torch.from_numpy(emb).to(self.device), words, mask, masks, colours)
        sub_rgb, sub_depth = self.decode_images(out)
        latent = latent.float().cpu().numpy()
        return [Subgoal(sub_rgb[i], None if sub_depth is None else sub_depth[i], latent[i]) for i in range(len(latent))]

    def model_text(self, subtask: str) -> str:
        """The text the network reads: delexicalised when the objects come as masks."""
        return objects.delexicalise(subtask, self.config.object_words) if self.config.object_masks else subtask

    def object_masks(self, rgb: np.ndarray, subtasks: list[str]) -> np.ndarray:
        """float32 (B, N_MASKS, H, W): the cube each subtask moves / puts it on, segmented by colour in `rgb`."""
        cfg = self.config
        return np.stack([objects.object_masks(im, objects.mask_colours(t, cfg.object_words, cfg.object_colors))
                         for im, t in zip(rgb, subtasks)])

    def object_masks_on_device(self, rgb: np.ndarray, subtasks: list[str]) -> torch.Tensor:
        """Fast path of `object_masks` (same test, batched on the model's device; tests compare the two)."""
        cfg = self.config
        cols = [objects.mask_colours(t, cfg.object_words, cfg.object_colors) for t in subtasks]
        colours = torch.tensor(np.array([[c if c is not None else np.zeros(3, np.float32) for c in row] for row in cols]),
                               dtype=torch.float32, device=self.device)
        present = torch.tensor([[c is not None for c in row] for row in cols], dtype=torch.bool, device=self.device)
        return objects.object_masks_torch(torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device), colours, present)

    def predict_subtasks(self, rgb, depth, subtasks: list[str]) -> list[Subgoal]:
        """A batch from plain inputs: rgb uint8 (B,H,W,3), depth float32 (B,H,W) metres, one subtask per row.

        The way to compute subgoals (and latents) over a dataset; texts are embedded once per process.
        """
        size = self.config.image_size
        rgb = check_rgb(rgb, size)
        if rgb.ndim != 4:
            raise schema.SchemaError(f"{schema.OBS_RGB}: predict_subtasks needs a batch axis (B, {size}, {size}, 3), got {rgb.shape}")
        if isinstance(subtasks, str) or len(subtasks) != len(rgb):
            raise schema.SchemaError(f"{schema.INFO_SUBTASK}: expected a list of {len(rgb)} subtask strings, one per image")
        subtasks = [check_subtask(t) for t in subtasks]
        if depth is not None:
            depth = check_depth(depth, size, rgb.shape[:1])
        texts = [self.model_text(t) for t in subtasks]
        emb = default_encoder()(texts)
        words, mask = word_tokens(texts) if self.config.word_tokens else (None, None)
        masks = self.object_masks_on_device(rgb, subtasks) if self.config.object_masks else None
        colours = self.object_colours(subtasks) if self.net.colour_inputs else None
        return self.predict_batch(rgb, depth, emb, words, mask, masks, colours)

    def object_colours(self, subtasks: list[str]) -> np.ndarray:
        """float32 (B, N_MASKS * 4): the named cubes' colours and presence flags (objects.colour_vector)."""
        cfg = self.config
        return np.stack([objects.colour_vector(objects.mask_colours(t, cfg.object_words, cfg.object_colors)) for t in subtasks])

    def predict(self, rgb, depth, subtask: str) -> Subgoal:
        size = self.config.image_size
        rgb = check_rgb(rgb, size)
        if rgb.ndim != 3:
            raise schema.SchemaError(f"{schema.OBS_RGB}: expected one image ({size}, {size}, 3), got {rgb.shape}")
        if depth is not None:
            depth = check_depth(depth, size, ())[None]
        return self.predict_subtasks(rgb[None], depth, [check_subtask(subtask)])[0]

    def predict_subgoal(self, rgb, depth, subtask: str) -> tuple[np.ndarray, np.ndarray]:
        """The interface in docs/interfaces.md: (subgoal_rgb uint8 (H,W,3), latent float32 (D,))."""
        g = self.predict(rgb, depth, subtask)
        return g.rgb, g.latent


@functools.lru_cache(maxsize=4)
def _load_cached(directory: str) -> WorldModel:
    return WorldModel.load(directory)


def predict_subgoal(rgb, depth, subtask: str, checkpoint: Path | str = DEFAULT_CHECKPOINT) -> tuple[np.ndarray, np.ndarray]:
    """Module-level convenience: loads `checkpoint` once per process and predicts."""
    return _load_cached(str(checkpoint)).predict_subgoal(rgb, depth, subtask)
