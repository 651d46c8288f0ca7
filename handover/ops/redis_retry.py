"""How every process retries a Redis command over a restart or a failover.

redis-py only: Rasa's tracker store (the bot environment) uses it too.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def command_retries() -> dict[str, Any]:
    """Client options: a command that met a broken connection is sent again, backing off
    for a few seconds (a failover takes about as long). Only for commands that may run
    twice: the callers' appends are idempotent by client id, the tracker's reads and
    whole-value writes are."""
    return {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=8),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }
