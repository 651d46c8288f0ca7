"""One way to connect to Redis for every process of the app environment.

REDIS_URL (or the embedded Redis's socket), or, with REDIS_SENTINELS, the primary the
sentinels name: the sentinel-managed pool asks them again whenever a connection breaks,
so after a failover new commands go to the new primary, and the retries below carry a
command over the few seconds the failover takes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

from handover.ops import metrics
from handover.ops.redis_retry import command_retries
from handover.ops.sentinel_url import SentinelAddress, parse_sentinel_url
from handover.settings import Settings

log = structlog.get_logger(__name__)

# How often the gateway asks the sentinels which primary they name (for health and logs).
PRIMARY_CHECK_S = 1.0


def _options(settings: Settings) -> dict[str, Any]:
    return {
        "decode_responses": True,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "health_check_interval": 30,
        # Retries ride out a Redis restart or a failover of a few seconds instead of
        # failing the citizen's message at once (the append is idempotent by client id).
        **command_retries(),
    }


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """The sentinels' pool (connections go to the primary they name), but a burst waits
    for a free connection as with REDIS_URL instead of failing with "Too many connections"
    (found under the chaos test's load: 200 conversations on three replicas)."""


def sentinels_of(address: SentinelAddress) -> Sentinel:
    return Sentinel(address.sentinels, socket_timeout=1.0, socket_connect_timeout=1.0)


def connect(settings: Settings) -> Redis:
    """A pooled client for the primary (REDIS_SENTINELS, REDIS_URL or the embedded Redis)."""
    url = settings.effective_redis_url
    address = parse_sentinel_url(url)
    if address is not None:
        client: Redis = sentinels_of(address).master_for(
            address.service, redis_class=Redis,
            connection_pool_class=BlockingSentinelConnectionPool, db=address.db,
            password=address.password, max_connections=settings.redis_max_connections,
            timeout=5, **_options(settings),
        )  # fmt: skip
        return client
    pool = BlockingConnectionPool.from_url(
        url,
        # Bursts wait for a free connection instead of failing; one pipelined
        # command takes well under a millisecond, so the wait is short.
        max_connections=settings.redis_max_connections,
        timeout=5,
        **_options(settings),
    )
    # from_pool: closing the client closes the pool with it.
    return Redis.from_pool(pool)


class PrimaryWatch:
    """Which primary the sentinels name, asked every second: a change is a failover,
    logged at warning and counted (`gateway_redis_failovers_total`), and /healthz says
    which primary the gateway writes to."""

    def __init__(self, settings: Settings) -> None:
        address = parse_sentinel_url(settings.effective_redis_url)
        self._address = address
        self._sentinels = sentinels_of(address) if address else None
        self.primary = ""

    async def run(self) -> None:
        if self._sentinels is None or self._address is None:
            return
        while True:
            try:
                host, port = await self._sentinels.discover_master(self._address.service)
            except RedisError as exc:
                log.warning("redis_sentinels_unavailable", error=repr(exc))
            else:
                now = f"{host}:{port}"
                if self.primary and now != self.primary:
                    metrics.REDIS_FAILOVERS.inc()
                    log.warning("redis_failover", old_primary=self.primary, new_primary=now)
                self.primary = now
            await asyncio.sleep(PRIMARY_CHECK_S)
