"""One way to connect to Redis for every process of the app environment."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from handover.settings import Settings


def connect(settings: Settings) -> Redis:
    """A pooled client for REDIS_URL or the embedded Redis.

    Retries ride out a Redis restart of a few seconds (the append-only file is
    replayed on start) instead of failing the citizen's message at once.
    """
    pool = BlockingConnectionPool.from_url(
        settings.effective_redis_url,
        decode_responses=True,
        # Bursts wait for a free connection instead of failing; one pipelined
        # command takes well under a millisecond, so the wait is short.
        max_connections=settings.redis_max_connections,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=5),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    # from_pool: closing the client closes the pool with it.
    return Redis.from_pool(pool)
