"""Start the assistant's real processes on free ports, for tests and benchmarks.

The commands are `make run`'s own (handover.ops.stack.process_commands), so what
the tests exercise and the benchmarks measure is what a user runs.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from handover.ops.embedded_redis import redis_server_binary
from handover.ops.stack import process_commands
from handover.rasa.auth import RasaCredentials
from handover.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BOT_VENV = Path(os.environ.get("BOT_VENV", ROOT / ".venv-bot"))
if not BOT_VENV.is_absolute():
    BOT_VENV = ROOT / BOT_VENV
# TEST_RASA_MODEL runs the suite against another trained model (e.g. a candidate).
RASA_MODEL = Path(os.environ.get("TEST_RASA_MODEL", ROOT / "models" / "rasa" / "current.tar.gz"))
# What `make run` keeps in DATA_DIR/case-api-token: the action server's key to the case API.
CASE_API_TOKEN = secrets.token_urlsafe(24)
# What `make run` keeps in DATA_DIR/rasa-jwt-secret and DATA_DIR/action-server-token: the
# gateway's key to Rasa (its API and the gateway channel) and Rasa's to the action server.
RASA_JWT_SECRET = secrets.token_urlsafe(32)
ACTION_SERVER_TOKEN = secrets.token_urlsafe(32)
_RASA_CREDENTIALS = RasaCredentials(RASA_JWT_SECRET)


def rasa_headers() -> dict[str, str]:
    """What the gateway sends Rasa: tests that call Rasa directly present it too."""
    return dict(_RASA_CREDENTIALS.headers())


def action_server_headers() -> dict[str, str]:
    """What Rasa sends the action server (the action endpoint's `headers:`)."""
    return {"Authorization": f"Bearer {ACTION_SERVER_TOKEN}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=1.0).status_code == 200


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, check: Callable[[], object], timeout: float, what: str) -> None:
        """Poll `check` until it is truthy; show the process's log if it never gets there."""
        try:
            wait_until(check, timeout, what, self.process)
        except (RuntimeError, TimeoutError):
            print(f"--- {what} log ---\n{self.log()[-4000:]}")
            self.stop()
            raise


def wait_until(
    check: Callable[[], object],
    timeout: float,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        try:
            if check():
                return
        except Exception:  # not up yet: refused, reset, not found, HTTP errors
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def start(
    argv: list[str], port: int, name: str, tmp: Path, env: dict[str, str] | None = None
) -> Service:
    log_path = tmp / f"{name}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Service(process, port, log_path)


def start_stack_process(
    name: str, port: int, tmp: Path, env: dict[str, str] | None = None, **settings: object
) -> Service:
    """Start process `name` of `make run` with test ports and paths."""
    command = process_commands(Settings(**settings))[name]  # type: ignore[arg-type]
    return start(command.argv, port, name, tmp, env={**command.env, **(env or {})})


def start_redis(
    tmp: Path,
    name: str = "redis",
    appendonly: bool = False,
    port: int | None = None,
    extra: list[str] | None = None,
) -> Service:
    """A redis-server of its own; `extra` adds arguments (e.g. `--replicaof host port`)."""
    binary = redis_server_binary()
    port = port or free_port()
    data = tmp / f"{name}-data"
    data.mkdir(exist_ok=True)
    service = start(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", "",
         "--appendonly", "yes" if appendonly else "no", *(extra or [])],
        port, name, tmp,
    )  # fmt: skip
    service.wait_ready(lambda: socket.create_connection(("127.0.0.1", port), 0.5).close() is None,
                       10, name)  # fmt: skip
    return service


def start_actions(
    tmp: Path,
    gateway_url: str = "http://127.0.0.1:8000",
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> Service:
    """The action server, reaching the case API at `gateway_url` with CASE_API_TOKEN.

    `env` adds settings of its own (e.g. KNOWLEDGE_SOURCE) on top of the tests' defaults.
    `wait=False` returns at once; `actions_ready` then waits (while others start too).
    """
    port = free_port()
    # Agents work round the clock in the tests, as the gateway's SERVICE_HOURS says below.
    service = start_stack_process(
        "actions", port, tmp, actions_port=port, gateway_url=gateway_url,
        case_api_token=CASE_API_TOKEN, action_server_token=ACTION_SERVER_TOKEN,
        env={"SERVICE_HOURS": "always", **(env or {})},
    )  # fmt: skip
    if wait:
        actions_ready(service)
    return service


def actions_ready(service: Service) -> Service:
    service.wait_ready(lambda: http_ok(f"{service.url}/health"), 60, "action server")
    return service


def start_rasa(
    tmp: Path,
    actions: Service,
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
    wait: bool = True,
) -> Service:
    """Rasa with the tests' secrets, keeping its trackers in the Redis at `redis_url`.

    `env` adds settings (e.g. TRACKER_RETENTION_DAYS) or Rasa's own variables (LOG_LEVEL);
    `port` restarts a replica where it was. Rasa loads its model for half a minute and
    needs the action server only for a turn: with `wait=False` it returns at once and
    `rasa_ready` waits, so replicas and the action server load side by side.
    """
    if redis_url is None:
        raise ValueError("Rasa keeps its trackers in the tests' Redis: pass redis_url")
    if not RASA_MODEL.exists():
        subprocess.run(["make", "model"], cwd=ROOT, check=True)
    port = port or free_port()
    extra = dict(env or {})
    retention = extra.get("TRACKER_RETENTION_DAYS")
    service = start_stack_process(
        "rasa", port, tmp, env=extra, rasa_port=port, actions_port=actions.port, data_dir=tmp,
        rasa_model=RASA_MODEL, bot_venv=BOT_VENV, redis_url=redis_url,
        rasa_jwt_secret=RASA_JWT_SECRET, action_server_token=ACTION_SERVER_TOKEN,
        **({"tracker_retention_days": int(retention)} if retention else {}),
    )  # fmt: skip
    if wait:
        rasa_ready(service)
    return service


def rasa_ready(service: Service) -> Service:
    service.wait_ready(lambda: http_ok(f"{service.url}/webhooks/gateway/"), 240, "Rasa")
    return service


UNLIMITED_ADDRESS = {
    "ADDRESS_CONNECTION_LIMITS": "100000/minute",
    "ADDRESS_CONVERSATION_LIMITS": "100000/minute",
    "ADDRESS_MESSAGE_LIMITS": "100000/minute",
    "ADDRESS_APPLICATION_LIMITS": "100000/minute",
}


def start_gateway(
    tmp: Path,
    name: str,
    redis_url: str,
    rasa_port: int,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Service:
    port = port or free_port()
    service = start_stack_process(
        "gateway", port, tmp, case_api_token=CASE_API_TOKEN, rasa_jwt_secret=RASA_JWT_SECRET,
        env={"GATEWAY_PORT": str(port), "REDIS_URL": redis_url, "RASA_PORT": str(rasa_port),
             # Tests run at any hour; an agent who drops is given back quickly.
             "SERVICE_HOURS": "always", "AGENT_GRACE_S": "1.5", "PRESENCE_TTL_S": "3",
             # Every test client comes from 127.0.0.1: per-address budgets are tested
             # on gateways of their own (test_citizen_limits.py). No proxy in front:
             # X-Forwarded-For is never believed unless a test says so.
             **UNLIMITED_ADDRESS, "TRUSTED_PROXIES": "", **(env or {})},
    )  # fmt: skip
    service.wait_ready(lambda: http_ok(f"{service.url}/healthz"), 30, name)
    return service
