"""vla_stack.policy: the action expert (equivariant point-cloud encoder + Mamba backbone)."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import PolicyConfig, tiny_config
from .expert import ActionExpert
from .model import PolicyModel

__all__ = ["ActionExpert", "PolicyConfig", "PolicyModel", "load_checkpoint", "save_checkpoint", "tiny_config"]
