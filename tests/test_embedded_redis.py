"""The embedded Redis of `make run`: a real server on a unix socket, shared and durable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.services import ROOT, Service, start, wait_until


def embedded(data_dir: Path, name: str, log_dir: Path | None = None) -> Service:
    command = [sys.executable, "-m", "handover.ops.embedded_redis"]
    return start(command, 0, name, log_dir or data_dir, env={"DATA_DIR": str(data_dir)})


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A short path: unix socket paths are limited to about 100 bytes.
    return tmp_path_factory.mktemp("emb")


@pytest.fixture
def server(data_dir: Path) -> Iterator[Service]:
    service = embedded(data_dir, "embedded")
    socket_path = data_dir / "redis" / "redis.sock"
    wait_until(lambda: redis.Redis(unix_socket_path=str(socket_path)).ping(), 10, "embedded redis",
               service.process)  # fmt: skip
    yield service
    service.stop()


def test_every_process_reaches_it_by_the_socket_in_the_data_dir(
    server: Service, data_dir: Path
) -> None:
    client = redis.Redis.from_url(f"unix://{data_dir}/redis/redis.sock")
    client.set("greeting", "Hallo")
    other = redis.Redis.from_url(f"unix://{data_dir}/redis/redis.sock")
    assert other.get("greeting") == b"Hallo"
    client.close()
    other.close()


def test_a_second_instance_refuses_to_start(server: Service, data_dir: Path) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "handover.ops.embedded_redis"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=30,
    )  # fmt: skip
    assert second.returncode != 0
    assert "already runs" in second.stderr


def test_data_survives_a_restart(server: Service, data_dir: Path) -> None:
    socket_url = f"unix://{data_dir}/redis/redis.sock"
    client = redis.Redis.from_url(socket_url)
    client.xadd("log", {"e": "1"})
    client.close()
    server.stop()
    restarted = embedded(data_dir, "embedded-again")
    try:
        wait_until(
            lambda: redis.Redis.from_url(socket_url).ping(), 10, "embedded redis", restarted.process
        )
        client = redis.Redis.from_url(socket_url)
        assert client.xlen("log") == 1
        client.close()
    finally:
        restarted.stop()


def _too_open(data_dir: Path) -> list[str]:
    """Paths under `data_dir` that someone other than its owner could read or enter."""
    paths = [data_dir, *data_dir.rglob("*")]
    return [f"{p} {stat.filemode(p.lstat().st_mode)}" for p in paths if p.lstat().st_mode & 0o077]


def test_its_files_are_its_users_alone(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The append-only file holds secrets, hashes and transcripts: 0600 files in 0700 dirs,
    even when the caller's umask would let others read them."""
    data_dir = tmp_path_factory.mktemp("modes")
    data_dir.chmod(0o755)
    previous = os.umask(0o022)
    try:
        service = embedded(data_dir, "embedded-modes", log_dir=tmp_path_factory.mktemp("logs"))
    finally:
        os.umask(previous)
    try:
        socket_path = data_dir / "redis" / "redis.sock"
        wait_until(lambda: redis.Redis(unix_socket_path=str(socket_path)).ping(), 10,
                   "embedded redis", service.process)  # fmt: skip
        client = redis.Redis(unix_socket_path=str(socket_path))
        client.set("bs:secret", "signing key")
        client.save()  # a snapshot file too
        client.bgrewriteaof()
        wait_until(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0, 10,
                   "AOF rewrite")  # fmt: skip
        client.close()
        files = [p.name for p in (data_dir / "redis").iterdir()]
        assert "appendonly.aof" in files and "dump.rdb" in files
        assert _too_open(data_dir) == []
    finally:
        service.stop()
