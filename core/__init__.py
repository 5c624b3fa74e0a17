"""vla-stack: a hierarchical vision-language-action stack for robot manipulation."""

__version__ = "0.1.0"
