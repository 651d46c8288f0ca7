"""Rasa's stores connect to the gateway's Redis by URL: `redis://`, `unix://`, or the
primary that Sentinel names (`redis+sentinel://h1:p1,h2:p2/service`, followed after a
failover: the sentinel-managed pool asks the sentinels again when a connection breaks).

`connect_async` is what a turn uses: Rasa serves every conversation on one event loop,
and a synchronous round trip to Redis stops all of them while it waits (issue 16: a
tenth of Rasa's time at saturation went to waiting in the tracker and lock stores)."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from handover.ops.redis_retry import command_retries
from handover.ops.sentinel_url import parse_sentinel_url


def connect(url: str, **options: Any) -> redis.Redis:
    address = parse_sentinel_url(url)
    if address is None:
        return redis.Redis.from_url(url, **options)
    sentinels = Sentinel(address.sentinels, socket_timeout=1.0)
    return sentinels.master_for(
        address.service, db=address.db, password=address.password, **options
    )


def connect_async(url: str, retries: bool = True, **options: Any) -> redis.asyncio.Redis:
    """An asyncio client. With `retries`, a command is sent again over a Redis restart or
    failover: only for commands that may run twice (a read, a whole-value write)."""
    if retries:
        options = {**command_retries(), **options}
    address = parse_sentinel_url(url)
    if address is None:
        return redis.asyncio.Redis.from_url(url, **options)
    sentinels = AsyncSentinel(address.sentinels, socket_timeout=1.0)
    return sentinels.master_for(
        address.service, db=address.db, password=address.password, **options
    )
