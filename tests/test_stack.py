"""`make run`'s process group (handover/ops/stack.py): what it writes and how its processes run."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
import redis

from handover.ops.stack import process_commands, with_installation_secrets
from handover.settings import Settings
from tests.services import start, wait_until


def test_secrets_travel_in_the_environment_never_in_arguments(tmp_path: Path) -> None:
    """`ps` shows every process's arguments to every local user; its environment to its own."""
    settings = with_installation_secrets(Settings(data_dir=tmp_path))
    secrets = [settings.case_api_token, settings.rasa_jwt_secret, settings.action_server_token]
    assert all(secrets) and len(set(secrets)) == 3
    commands = process_commands(settings)
    for command in commands.values():
        assert not any(secret in argument for secret in secrets for argument in command.argv)
    assert commands["rasa"].env["RASA_JWT_SECRET"] == settings.rasa_jwt_secret
    assert commands["gateway"].env["RASA_JWT_SECRET"] == settings.rasa_jwt_secret
    assert commands["rasa"].env["ACTION_SERVER_TOKEN"] == settings.action_server_token
    assert commands["actions"].env["ACTION_SERVER_TOKEN"] == settings.action_server_token
    # Kept: a restart gives every process the same secrets again.
    assert with_installation_secrets(Settings(data_dir=tmp_path)) == settings


def _too_open(root: Path) -> list[str]:
    """Paths under `root` that someone other than its owner could read or enter."""
    paths = [root, *root.rglob("*")]
    return [f"{p} {stat.filemode(p.lstat().st_mode)}" for p in paths if p.lstat().st_mode & 0o077]


def _umask_of_process_with(argument: str) -> int:
    """The umask of the running process whose command line holds `argument`."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
            if argument.encode() in cmdline and b"redis-server" in cmdline:
                status = (entry / "status").read_text().splitlines()
                return int(next(x for x in status if x.startswith("Umask:")).split()[1], 8)
        except OSError:
            continue  # a process that ended meanwhile
    raise LookupError(f"no redis-server with {argument}")


def test_everything_under_the_data_dir_is_private(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Secrets, generated files and the embedded Redis's files: 0600/0700, even with umask 022
    and a file left 0644 by an older installation; the group's processes run with umask 077."""
    data_dir = tmp_path_factory.mktemp("stack")
    data_dir.chmod(0o755)
    (data_dir / "case-api-token").write_text("from-an-older-install\n")
    (data_dir / "case-api-token").chmod(0o644)
    model = tmp_path_factory.mktemp("model") / "model.tar.gz"
    model.touch()  # the group checks a model exists; only Redis starts here
    previous = os.umask(0o022)
    try:
        group = start([sys.executable, "-m", "handover.ops.stack", "redis"], 0, "stack",
                      tmp_path_factory.mktemp("logs"),
                      env={"DATA_DIR": str(data_dir), "RASA_MODEL": str(model)})  # fmt: skip
    finally:
        os.umask(previous)
    try:
        socket_path = data_dir / "redis" / "redis.sock"
        wait_until(lambda: redis.Redis(unix_socket_path=str(socket_path)).ping(), 20,
                   "embedded redis", group.process)  # fmt: skip
        client = redis.Redis(unix_socket_path=str(socket_path))
        client.set("bs:secret", "signing key")
        client.save()
        client.close()
        assert _umask_of_process_with(str(socket_path)) == 0o077
        names = {p.name for p in data_dir.rglob("*")}
        assert {"case-api-token", "rasa-jwt-secret", "action-server-token", "rasa-endpoints.yml",
                "appendonly.aof", "dump.rdb"} <= names  # fmt: skip
        assert _too_open(data_dir) == []
    finally:
        group.stop()
