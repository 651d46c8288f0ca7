"""Where an index lives, and how a new one replaces the old one atomically.

    models/knowledge/<name>/current -> build-<id>/   (a symlink)

A build writes a fresh `build-<id>` directory, then swaps the `current` symlink
with one rename (atomic on POSIX). A reader holding the old build keeps reading
it; a failed build never touches `current`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

CURRENT = "current"


def index_name(source: Path) -> str:
    """A readable, collision-free directory name for the index of `source`."""
    resolved = source.resolve()
    slug = re.sub(r"[^a-z0-9]+", "-", f"{resolved.parent.name}-{resolved.stem}".lower()).strip("-")
    return f"{slug}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:8]}"


def index_root(models_dir: Path, source: Path) -> Path:
    return models_dir / index_name(source)


def current_build(root: Path) -> Path | None:
    link = root / CURRENT
    return link.resolve() if link.exists() else None


def new_build_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"build-{uuid.uuid4().hex[:12]}.partial"
    path.mkdir()
    return path


def publish(root: Path, build: Path) -> Path:
    """Make `build` the current index with one atomic rename; remove older builds."""
    final = build.with_suffix("")
    build.rename(final)
    tmp_link = root / f".{CURRENT}-{uuid.uuid4().hex[:8]}"
    os.symlink(final.name, tmp_link)
    os.replace(tmp_link, root / CURRENT)
    for old in root.glob("build-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def discard(build: Path) -> None:
    shutil.rmtree(build, ignore_errors=True)
