"""The one error type of the data layer: it names the file (and episode) at fault."""

from __future__ import annotations

from pathlib import Path

from vla_stack.schema import SchemaError


class DatasetError(SchemaError):
    """A dataset that does not load or validate. Message: `<file> [episode N]: what was wrong`."""

    def __init__(self, message: str, *, path: Path | str | None = None, episode: int | None = None):
        self.path = str(path) if path is not None else None
        self.episode = episode
        where = []
        if path is not None:
            where.append(str(path))
        if episode is not None:
            where.append(f"episode {episode}")
        super().__init__(f"{' '.join(where)}: {message}" if where else message)
