"""`make run`: the whole assistant as one supervised group of processes.

Redis (embedded, unless REDIS_URL is set), the Rasa server, the action server
and the gateway run under honcho's process manager: output is prefixed per
process, Ctrl-C stops them all, and if one dies the others are stopped too
instead of leaving a half-working assistant behind.

`process_commands` is also how the tests and benchmarks start these processes,
so what they measure is what a user runs.
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from honcho.manager import Manager

from handover import keys
from handover.ops.private_files import PRIVATE_UMASK, restrict_tree, write_private_file
from handover.rasa.trackers import TRACKER_KEY_PREFIX
from handover.settings import PROJECT_ROOT, Settings, get_settings

PROCESS_NAMES = ("redis", "rasa", "actions", "gateway")


@dataclass(frozen=True)
class ProcessCommand:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def rasa_endpoints(settings: Settings) -> Path:
    """An endpoints file for the running group's Rasa, written 0600 under DATA_DIR.

    bot/endpoints.yml keeps Rasa's defaults for `rasa shell` and friends; the
    group may use other ports, and Rasa must present the action server's token
    and keep its trackers in the gateway's Redis with an expiry. Secrets and the
    Redis URL (which may hold a password) are not written here: Rasa fills
    `${…}` from its environment (process_commands).
    """
    path = settings.data_dir / "rasa-endpoints.yml"
    write_private_file(
        path,
        "# Written by handover.ops.stack from the settings; edit bot/endpoints.yml instead.\n"
        "action_endpoint:\n"
        f'  url: "http://127.0.0.1:{settings.actions_port}/webhook"\n'
        "  headers:\n"
        "    Authorization: Bearer ${ACTION_SERVER_TOKEN}\n"
        "tracker_store:\n"
        "  type: bot.tracker_store.RedisUrlTrackerStore\n"
        "  url: ${RASA_TRACKER_STORE_URL}\n"
        f'  key_prefix: "{TRACKER_KEY_PREFIX}"\n'
        f"  record_exp: {settings.tracker_retention_s}\n"
        "lock_store:\n"
        "  type: bot.lock_store.RedisUrlLockStore\n"
        "  url: ${RASA_TRACKER_STORE_URL}\n"
        f'  key_prefix: "{keys.RASA_LOCK_PREFIX}"\n',
    )
    return path


def _kept_secret(settings: Settings, file_name: str) -> str:
    """This installation's own secret `file_name`, made once and kept 0600 in DATA_DIR.

    Random per installation: no deployment ships a secret that is known to
    everyone who read the source.
    """
    secret_file = settings.data_dir / file_name
    if secret_file.exists():
        return secret_file.read_text().strip()
    secret = secrets.token_urlsafe(32)
    write_private_file(secret_file, secret + "\n")
    return secret


def case_api_token(settings: Settings) -> str:
    """CASE_API_TOKEN, or this installation's own (DATA_DIR/case-api-token)."""
    return settings.case_api_token or _kept_secret(settings, "case-api-token")


def rasa_jwt_secret(settings: Settings) -> str:
    """RASA_JWT_SECRET, or this installation's own (DATA_DIR/rasa-jwt-secret)."""
    return settings.rasa_jwt_secret or _kept_secret(settings, "rasa-jwt-secret")


def action_server_token(settings: Settings) -> str:
    """ACTION_SERVER_TOKEN, or this installation's own (DATA_DIR/action-server-token)."""
    return settings.action_server_token or _kept_secret(settings, "action-server-token")


def with_installation_secrets(settings: Settings) -> Settings:
    """`settings` with every secret the group shares filled in (kept ones where unset)."""
    return settings.model_copy(
        update={
            "case_api_token": case_api_token(settings),
            "rasa_jwt_secret": rasa_jwt_secret(settings),
            "action_server_token": action_server_token(settings),
        }
    )


def _secrets_env(**values: str | None) -> dict[str, str]:
    """Environment variables for the secrets that are set (upper-case names)."""
    return {name.upper(): value for name, value in values.items() if value}


def process_commands(settings: Settings) -> dict[str, ProcessCommand]:
    """The group's processes. Secrets travel in their environment, never in their argv."""
    python = sys.executable
    # The action server creates cases through the gateway's case API.
    case_api = _secrets_env(case_api_token=settings.case_api_token)
    return {
        "redis": ProcessCommand([python, "-m", "handover.ops.embedded_redis"]),
        "rasa": ProcessCommand(
            [
                # `rasa run` with its JWT secret from the environment and cleaned logs.
                str(settings.bot_venv / "bin" / "python"),
                "-m",
                "bot.rasa_server",
                "--enable-api",
                "--interface",
                settings.rasa_host,
                "--port",
                str(settings.rasa_port),
                "--model",
                str(settings.rasa_model),
                "--endpoints",
                str(rasa_endpoints(settings)),
                "--credentials",
                str(PROJECT_ROOT / "bot" / "credentials.yml"),
            ],
            env={
                # Rasa 3.6's pinned libraries warn about their own deprecations at
                # every start; they say nothing an operator can act on.
                "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::UserWarning",
                "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
                # Rasa reads LOG_LEVEL too, but wants a level name in upper case.
                "LOG_LEVEL": settings.log_level.upper(),
                "RASA_TRACKER_STORE_URL": settings.effective_redis_url,
                **_secrets_env(
                    rasa_jwt_secret=settings.rasa_jwt_secret,
                    action_server_token=settings.action_server_token,
                ),
            },
        ),
        # rasa_sdk's server behind the bearer check; bound to SANIC_HOST, loopback.
        "actions": ProcessCommand(
            [
                python,
                "-m",
                "actions.server",
                "--actions",
                "actions",
                "--port",
                str(settings.actions_port),
                # rasa_sdk reads its (tracing) endpoints from here.
                "--endpoints",
                str(PROJECT_ROOT / "bot" / "endpoints.yml"),
            ],
            env={
                "SANIC_HOST": "127.0.0.1",
                "GATEWAY_URL": settings.gateway_url,
                **case_api,
                **_secrets_env(action_server_token=settings.action_server_token),
            },
        ),
        "gateway": ProcessCommand(
            [python, "-m", "handover"],
            env={**case_api, **_secrets_env(rasa_jwt_secret=settings.rasa_jwt_secret)},
        ),
    }


def main(argv: list[str]) -> int:
    # Everything the group writes (Redis's append-only file, secrets, generated
    # files) is its own user's alone; children inherit the mask.
    os.umask(PRIVATE_UMASK)
    settings = get_settings()
    restrict_tree(settings.data_dir)  # an installation from before this rule
    wanted = argv or list(PROCESS_NAMES)
    if settings.redis_url and "redis" in wanted:
        wanted.remove("redis")
    unknown = [name for name in wanted if name not in PROCESS_NAMES]
    if unknown:
        print(f"Unknown process {unknown}; choose from {PROCESS_NAMES}", file=sys.stderr)
        return 2
    if not settings.rasa_model.exists():
        print(f"No Rasa model at {settings.rasa_model}; run `make model` first.", file=sys.stderr)
        return 2
    where = settings.redis_url or f"embedded, {settings.embedded_redis_socket}"
    print(
        f"Starting {', '.join(wanted)} (Redis: {where}).\n"
        f"The demo portal will be at {settings.gateway_url}/ once the bot has loaded. "
        "Stop with Ctrl-C.",
        flush=True,
    )
    commands = process_commands(with_installation_secrets(settings))
    # The demo group gets a demo agent; the gateway prints its login when ready.
    commands["gateway"].env.setdefault("DEMO_AGENT", settings.demo_agent or "alina")
    return supervise({name: commands[name] for name in wanted})


def supervise(commands: dict[str, ProcessCommand]) -> int:
    """Run the processes as one group under honcho until they stop; the exit status."""
    manager = Manager()
    for name, command in commands.items():
        manager.add_process(
            # honcho replaces the environment with `env`; keep the user's settings in it.
            name,
            shlex.join(command.argv),
            env={**os.environ, **command.env},
            cwd=str(PROJECT_ROOT),
        )
    manager.loop()
    # Ctrl-C or a TERM from the user is a clean stop, not a failure.
    return 0 if manager.returncode in (130, 143) else manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
