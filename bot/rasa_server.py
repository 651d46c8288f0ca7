"""`python -m bot.rasa_server …`: `rasa run …` that answers the gateway only.

Rasa's CLI takes `--jwt-secret` as an argument, and every local user can read
a process's arguments (`ps`); the environment is readable by the process's own
user only. So `make run` starts Rasa here, with RASA_JWT_SECRET from the
environment:
- it becomes Rasa's own JWT key (`--auth-token` would put the credential in a
  `?token=` URL), so Rasa's API wants `Authorization: Bearer <JWT>`;
- a request middleware in front of every route checks the same JWT strictly
  (bot/gateway_auth.py), channel webhooks included, which Rasa's auth skips;
  only the two health probes stay open;
- log records are cleaned (bot/private_logs.py);
- two per-turn costs of Rasa are removed (bot/rasa_fast_paths.py).
Every other argument is passed on to `rasa run`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from bot import private_logs, rasa_fast_paths
from bot.gateway_auth import is_gateway

# Rasa's hello and the gateway channel's health route: readiness probes, no data.
OPEN_PATHS = frozenset({"/", "/webhooks/gateway", "/webhooks/gateway/"})


def rasa_argv(arguments: list[str], jwt_secret: str) -> list[str]:
    """The argument vector of `rasa run` (in this process only, never in /proc).

    `--jwt-secret=<secret>` in one word: a generated secret starts with `-` once in
    64 (token_urlsafe), and argparse would take a separate word for an option.
    """
    return ["rasa", "run", *arguments, f"--jwt-secret={jwt_secret}", "--jwt-method", "HS256"]


def guard(app: Any, jwt_secret: str) -> Any:
    """Refuse (401) every request to Rasa's Sanic `app` but OPEN_PATHS without the JWT."""
    from sanic import response

    async def refuse_strangers(request: Any) -> Any:
        if request.path in OPEN_PATHS or is_gateway(request, jwt_secret):
            return None
        return response.json(
            {"error": "unauthorized", "message": "Rasa answers the gateway only."},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    app.register_middleware(refuse_strangers, "request")
    return app


def _guard_every_app(jwt_secret: str) -> None:
    """Put `guard` around the app `rasa run` builds (rasa.core.run.configure_app)."""
    import rasa.core.run

    configure_app = rasa.core.run.configure_app

    def configure_guarded_app(*args: Any, **kwargs: Any) -> Any:
        return guard(configure_app(*args, **kwargs), jwt_secret)

    rasa.core.run.configure_app = configure_guarded_app


def main() -> None:
    jwt_secret = os.environ.get("RASA_JWT_SECRET")
    if not jwt_secret:
        sys.exit("RASA_JWT_SECRET is not set: Rasa's API and the gateway channel would be open.")
    private_logs.install()
    rasa_fast_paths.install()
    _guard_every_app(jwt_secret)
    sys.argv = rasa_argv(sys.argv[1:], jwt_secret)
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
