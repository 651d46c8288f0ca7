"""Files under DATA_DIR are readable by the service's own user only.

DATA_DIR holds the embedded Redis's append-only file (token-signing key,
password hashes, transcripts, cases) and the installation's secrets. Every
directory there is 0700 and every file 0600: files are created with that mode
(never written first and restricted after, which leaves a window), and
`restrict_tree` repairs an installation made before this rule.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_directory(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700; tighten it if it exists."""
    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    path.chmod(DIRECTORY_MODE)
    return path


def write_private_file(path: Path, text: str) -> None:
    """Write `text` to `path` as a 0600 file, atomically (a reader sees old or new, never half)."""
    private_directory(path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def restrict_tree(root: Path) -> None:
    """Make every directory under `root` 0700 and every regular file 0600.

    Sockets and other special files keep their mode: redis-server sets its
    socket's itself (`--unixsocketperm`).
    """
    if not root.exists():
        return
    private_directory(root)
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories:
            Path(directory, name).chmod(DIRECTORY_MODE)
        for name in files:
            path = Path(directory, name)
            if stat.S_ISREG(path.lstat().st_mode):
                path.chmod(FILE_MODE)
