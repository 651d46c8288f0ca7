"""The gateway's credential towards Rasa: a short-lived JWT in an Authorization header.

Rasa runs with `--jwt-secret` (bot/rasa_server.py) and the gateway channel
checks the same token (bot/gateway_channel.py), so nobody else on the host can
drive the bot, read a tracker or pause a conversation. The token names the
gateway with Rasa's `admin` role (all conversations) and expires after a few
minutes; it is renewed well before, so a request never carries a stale one.
Never in a URL: Rasa's `--auth-token` alternative is a `?token=` parameter.
"""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import OctKey

TOKEN_LIFETIME_S = 300
# Renewed when less than this is left: covers clock steps and a slow request.
RENEW_BEFORE_S = 60


class RasaCredentials:
    """Authorization headers for calls to Rasa, signed with RASA_JWT_SECRET."""

    def __init__(self, secret: str, lifetime_s: int = TOKEN_LIFETIME_S) -> None:
        self._key = OctKey.import_key(secret)
        self._lifetime_s = lifetime_s
        self._headers: dict[str, str] = {}
        self._expires = 0.0

    def headers(self) -> dict[str, str]:
        now = time.time()
        if now > self._expires - RENEW_BEFORE_S:
            self._expires = now + self._lifetime_s
            claims = {
                "user": {"username": "gateway", "role": "admin"},
                "iat": int(now),
                "exp": int(self._expires),
            }
            token = jwt.encode({"alg": "HS256"}, claims, self._key)
            self._headers = {"Authorization": f"Bearer {token}"}
        return self._headers
