"""Client keys: a keyed hash of a client's address, the name limits count a client under.

Per-address limits must hold across connections, gateway replicas and paths
(the chat goes gateway → Rasa → action server → case API, a web page calls the
case API directly), so every path must name a client the same way. Not by its
address: Redis counters and Rasa's tracker (which stores message metadata) would
then hold personal data in clear, and an unkeyed hash of an IPv4 address is
reversed by trying all 2³² of them. The key is HMAC-SHA256 under a random
secret shared by every replica in Redis (`bs:secret:client-keys`).

The address is the ASGI peer, which is the real client unless the peer is one
of TRUSTED_PROXIES (uvicorn then takes it from X-Forwarded-For).

`CLIENT_KEY` holds the key of the citizen whose socket is being served: the
gateway's ASGI entry point sets it per websocket connection, tasks started
from that connection (bot turns) inherit it, and `RasaBot.turn` puts it into
the metadata Rasa hands to the action server.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from contextvars import ContextVar
from typing import Any

from redis.asyncio import Redis
from starlette.types import Scope

from handover import keys

SECRET_KEY = keys.CLIENT_KEY_SECRET
# 128 bits: no collisions among any realistic number of clients, short in metadata.
KEY_CHARS = 32

CLIENT_KEY: ContextVar[str | None] = ContextVar("client_key", default=None)


def peer_address(scope: Scope) -> str:
    """The client's address as the ASGI server resolved it ("unknown" without one)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ClientKeys:
    """Derives client keys; one instance per process, made with `load`."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    async def load(cls, redis: Redis) -> ClientKeys:
        """The installation's secret from Redis, created by whichever replica starts first."""
        client: Any = redis  # redis-py's stubs cannot know the client decodes to str
        await client.set(SECRET_KEY, secrets.token_urlsafe(32), nx=True)
        secret = await client.get(SECRET_KEY)
        return cls(str(secret).encode())

    def of(self, address: str) -> str:
        """The key of the client at `address`."""
        digest = hmac.new(self._secret, address.encode(), hashlib.sha256).hexdigest()
        return digest[:KEY_CHARS]

    def of_scope(self, scope: Scope) -> str:
        return self.of(peer_address(scope))


def is_client_key(value: object) -> bool:
    """Whether `value` has the shape of a key (so a forged one cannot smuggle in text)."""
    return (
        isinstance(value, str)
        and len(value) == KEY_CHARS
        and all(c in "0123456789abcdef" for c in value)
    )
