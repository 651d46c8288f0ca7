"""Rasa's stores connect to the gateway's Redis by URL: `redis://`, `unix://`, or the
primary that Sentinel names (`redis+sentinel://h1:p1,h2:p2/service`, followed after a
failover: the sentinel-managed pool asks the sentinels again when a connection breaks)."""

from __future__ import annotations

from typing import Any

import redis
from redis.sentinel import Sentinel

from handover.ops.sentinel_url import parse_sentinel_url


def connect(url: str, **options: Any) -> redis.Redis:
    address = parse_sentinel_url(url)
    if address is None:
        return redis.Redis.from_url(url, **options)
    sentinels = Sentinel(address.sentinels, socket_timeout=1.0)
    return sentinels.master_for(
        address.service, db=address.db, password=address.password, **options
    )
