"""Rate limits: per-socket token buckets, and budgets shared in Redis.

`TokenBucket` limits one socket in memory (the agent socket uses it).
`Budgets` counts in Redis with the `limits` library's moving window, so a
citizen's budget holds however many sockets they open and whichever gateway
replica each lands on. Each kind of budget has its own setting (README); a
check is one small Lua script per window, made before the expensive work
(a Rasa turn, a relay, storing a conversation).
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable
from typing import Literal

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from handover import keys
from handover.settings import Settings

# What is counted, and per what: a conversation's frames of one type, or one
# client address's sockets, new conversations, messages and applications.
Budget = Literal[
    "message", "typing", "csat", "end", "hello",
    "address_connection", "address_conversation", "address_message", "address_application",
    "cobrowse", "cobrowse_kib", "cobrowse_guide",
]  # fmt: skip

KEY_PREFIX = keys.LIMITS


class TokenBucket:
    """Allows `burst` events at once and `per_minute` events per minute sustained."""

    def __init__(self, burst: int, per_minute: int) -> None:
        self._capacity = float(burst)
        self._tokens = float(burst)
        self._refill_per_s = per_minute / 60.0
        self._updated = time.monotonic()

    def take(self) -> bool:
        """Spend one token; False when the bucket is empty (the event must be refused)."""
        now = time.monotonic()
        self._tokens = min(
            self._capacity, self._tokens + (now - self._updated) * self._refill_per_s
        )
        self._updated = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def address_key(host: str) -> str:
    """Who a client address counts as: an IPv4 address itself, an IPv6 address its /64.

    One IPv6 subscriber usually holds a whole /64, so counting single
    addresses would give each of them 2**64 budgets.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP (a test client, a unix socket): counted as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _windows(spec: str) -> list[RateLimitItem]:
    return sorted(parse_many(spec), key=lambda item: item.get_expiry())


def _budgets(settings: Settings) -> dict[Budget, list[RateLimitItem]]:
    return {
        "message": _windows(settings.citizen_message_limits),
        "typing": _windows(settings.citizen_typing_limits),
        "csat": _windows(settings.citizen_csat_limits),
        "end": _windows(settings.citizen_end_limits),
        "hello": _windows(settings.citizen_hello_limits),
        "address_connection": _windows(settings.address_connection_limits),
        "address_conversation": _windows(settings.address_conversation_limits),
        "address_message": _windows(settings.address_message_limits),
        "address_application": _windows(settings.address_application_limits),
        "cobrowse": _windows(settings.citizen_cobrowse_limits),
        "cobrowse_kib": _windows(settings.cobrowse_kib_limits),
        "cobrowse_guide": _windows(settings.cobrowse_guide_limits),
    }


def _unkeyed_name(who: str) -> str:
    return hashlib.sha256(who.encode()).hexdigest()[:32]


class Budgets:
    """Budgets per conversation and per client address, counted in Redis.

    Keys are ``bs:limit:LIMITER/<budget>/<name of who>/…`` and expire with their
    window, so an idle client leaves nothing behind for longer than an hour. `who`
    (a client address, a conversation id) is named by `name`, a keyed hash in the
    gateway (client_keys.py): no address or conversation id is written in clear.
    """

    def __init__(
        self, redis: Redis, settings: Settings, name: Callable[[str], str] | None = None
    ) -> None:
        self._name = name or _unkeyed_name
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            # The app's own pool: one set of connections, the same Redis for sure.
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._items = _budgets(settings)

    async def take(self, budget: Budget, who: str, cost: int = 1) -> bool:
        """Count `cost` (one event, or KiB of data) of `budget` for `who`; False when a
        window is full.

        Windows are checked shortest first and the check stops at the first
        full one, so a refused event uses up nothing of the longer windows.
        """
        for item in self._items[budget]:
            if not await self._limiter.hit(item, budget, self._name(who), cost=cost):
                return False
        return True
