"""The gateway's credential as Rasa checks it: `Authorization: Bearer <JWT>`, HS256.

One check for Rasa's HTTP API (bot/rasa_server.py puts it in front of every
route) and for the gateway channel (bot/gateway_channel.py checks it again
itself, as channel webhooks are outside Rasa's own authentication). Stricter
than Rasa's sanic-jwt: HS256 only, `exp` required and no leeway beyond a few
seconds of clock skew (sanic-jwt accepts tokens three minutes past expiry),
and a malformed token is a 401, never a 500.
"""

from __future__ import annotations

import jwt  # PyJWT, installed with Rasa (its sanic-jwt depends on it)
from sanic.request import Request

CLOCK_SKEW_S = 5


def is_gateway(request: Request, secret: str | None) -> bool:
    """The request carries a current JWT signed with `secret` (never true without one)."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if not secret or scheme.lower() != "bearer" or not token:
        return False
    try:
        jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["exp"]},
            leeway=CLOCK_SKEW_S,
        )
    except jwt.PyJWTError:
        return False
    return True
