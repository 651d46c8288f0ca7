"""`python -m actions.server …`: rasa_sdk's action server that answers Rasa only.

rasa_sdk's own server runs any action for any caller that reaches its port;
an action can create cases and read their status through the gateway's case
API with the action server's own token. This entry point serves the same
Sanic app (rasa_sdk.endpoint.create_app_for_serve, same flags as
`python -m rasa_sdk`) behind a check that every request but `/health` carries
`Authorization: Bearer <ACTION_SERVER_TOKEN>`: Rasa sends it from the action
endpoint's `headers:` (handover/ops/stack.py writes them). A call without it gets
401 before any action is looked up or run. The token comes from the
environment, never from the command line (`ps` shows that to every local user).

Log lines are cleaned like the gateway's (handover/ops/log_config.py): no query
strings, no e-mail addresses, phone numbers or IBANs, at any level.
"""

from __future__ import annotations

import hmac
import logging
import os
import sys
from functools import partial
from typing import Any

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app_for_serve, create_argument_parser
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.worker.loader import AppLoader

from handover.ops.log_config import install_log_cleaning
from handover.settings import get_settings

logger = logging.getLogger(__name__)
# Liveness probes (the tests, an orchestrator) need no secret and run nothing.
OPEN_PATHS = frozenset({"/health"})


def is_rasa(request: Request, token: str) -> bool:
    """The request carries the action server's bearer token (compared in constant time)."""
    scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.encode(), token.encode())


async def _failed(request: Request, exception: Exception) -> HTTPResponse:
    """An error without the request echoed back.

    rasa_sdk's own handler answers a failing action with the whole request body (the
    tracker, every message of the conversation), which Rasa then logs with its error.
    """
    if isinstance(exception, SanicException):
        status = exception.status_code
        return response.json({"error": type(exception).__name__}, status=status)
    logger.error("Action call failed: %s", type(exception).__name__, exc_info=exception)
    return response.json({"error": "action_failed"}, status=500)


def protect(app: Sanic[Any, Any], token: str) -> Sanic[Any, Any]:
    """Refuse (401) every request to `app` but OPEN_PATHS without the bearer token."""

    async def refuse_strangers(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS or is_rasa(request, token):
            return None
        return response.json(
            {"error": "unauthorized", "message": "The action server answers Rasa only."},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    app.register_middleware(refuse_strangers, "request")
    # Route-specific handlers win over rasa_sdk's catch-all one (which echoes the request).
    app.error_handler.add(Exception, _failed, route_names=[f"{app.name}.webhook"])
    return app


def create_protected_app(
    action_executor: ActionExecutor, token: str, cors_origins: str | None, endpoints: str
) -> Sanic[Any, Any]:
    """rasa_sdk's app behind `protect`; module level so Sanic's workers can rebuild it."""
    return protect(
        create_app_for_serve(action_executor, cors_origins=cors_origins, endpoints=endpoints),
        token,
    )


def main() -> None:
    token = os.environ.get("ACTION_SERVER_TOKEN")
    if not token:
        sys.exit("ACTION_SERVER_TOKEN is not set: the action server would run actions for anyone.")
    args = create_argument_parser().parse_args()
    install_log_cleaning()
    # LOG_LEVEL, as for every process of the group, unless -vv or --quiet say otherwise.
    level = args.loglevel
    if level == logging.INFO:
        level = logging.getLevelNamesMapping().get(get_settings().log_level.upper(), level)
    utils.configure_colored_logging(level)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME),
        args.log_file,
        level,
        args.logging_config_file,
    )
    utils.update_sanic_log_level()

    executor = ActionExecutor()
    executor.register_package(args.actions_module or args.actions)
    loader = AppLoader(
        factory=partial(create_protected_app, executor, token, args.cors, args.endpoints)
    )
    app = loader.load()
    # rasa_sdk binds to SANIC_HOST; the stack keeps it on loopback.
    app.prepare(
        host=os.environ.get("SANIC_HOST", "127.0.0.1"),
        port=args.port,
        workers=utils.number_of_sanic_workers(),
    )
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
