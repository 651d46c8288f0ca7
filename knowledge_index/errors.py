"""Errors of the knowledge index, with the file and field a user has to fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class SourceError(ValueError):
    """A source file cannot be read: names the file and, where known, the field."""

    def __init__(self, path: Path | str, message: str, field: str | None = None) -> None:
        self.path = Path(path)
        self.field = field
        where = f"{self.path}" + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {message}")


class BuildError(RuntimeError):
    """Building the index failed; the previous index stays in place."""


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-empty line of a JSONL file; bad JSON names its line."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(path, f"line {number} is not JSON: {exc.msg}") from exc
