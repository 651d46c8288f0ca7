"""Errors of the knowledge index, with the file and field a user has to fix."""

from __future__ import annotations

from pathlib import Path


class SourceError(ValueError):
    """A source file cannot be read: names the file and, where known, the field."""

    def __init__(self, path: Path | str, message: str, field: str | None = None) -> None:
        self.path = Path(path)
        self.field = field
        where = f"{self.path}" + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {message}")


class BuildError(RuntimeError):
    """Building the index failed; the previous index stays in place."""
