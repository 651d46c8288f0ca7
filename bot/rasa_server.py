"""`python -m bot.rasa_server …`: `rasa run …` with its secrets from the environment.

Rasa's CLI takes `--jwt-secret` as an argument, and every local user can read
a process's arguments (`ps`); the environment is readable by the process's own
user only. So `make run` starts Rasa here: RASA_JWT_SECRET becomes Rasa's JWT
key (its HTTP API then wants `Authorization: Bearer <JWT>`; `--auth-token`
would put the credential in a `?token=` URL), the gateway channel checks the
same JWT (bot/gateway_channel.py), and the logs are cleaned
(bot/private_logs.py). Every other argument is passed on to `rasa run`.
"""

from __future__ import annotations

import os
import sys

from bot import private_logs


def rasa_argv(arguments: list[str], jwt_secret: str | None) -> list[str]:
    """The argument vector of `rasa run` (in this process only, never in /proc)."""
    argv = ["rasa", "run", *arguments]
    if jwt_secret:
        argv += ["--jwt-secret", jwt_secret, "--jwt-method", "HS256"]
    return argv


def main() -> None:
    jwt_secret = os.environ.get("RASA_JWT_SECRET")
    if not jwt_secret:
        sys.exit("RASA_JWT_SECRET is not set: Rasa's API and the gateway channel would be open.")
    private_logs.install()
    sys.argv = rasa_argv(sys.argv[1:], jwt_secret)
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
