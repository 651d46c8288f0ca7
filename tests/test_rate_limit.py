from __future__ import annotations

import asyncio
import hashlib
import time
import uuid

from redis.asyncio import Redis

from handover.ops.rate_limit import Budgets, TokenBucket, address_key
from handover.settings import Settings


def test_burst_is_allowed_then_refused() -> None:
    bucket = TokenBucket(burst=3, per_minute=1)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_tokens_refill_over_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    bucket = TokenBucket(burst=1, per_minute=60)
    assert bucket.take()
    assert not bucket.take()
    now[0] += 1.01
    assert bucket.take()


# --- budgets shared in Redis (issue 12: limits across sockets and replicas) -------------------


def test_an_ipv6_client_counts_as_its_64_and_ipv4_as_itself() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("testclient") == "testclient"


async def test_two_replicas_share_one_budget_and_its_windows_expire(redis: Redis) -> None:
    settings = Settings(citizen_message_limits="3/10 seconds; 4/minute")
    one, two = Budgets(redis, settings), Budgets(redis, settings)
    who = uuid.uuid4().hex
    taken = [await (one if i % 2 else two).take("message", who) for i in range(5)]
    assert taken == [True, True, True, False, False]
    assert await one.take("message", uuid.uuid4().hex)  # another conversation: its own budget
    assert [key async for key in redis.scan_iter(f"bs:limit:*{who}*")] == []  # never in clear
    name = hashlib.sha256(who.encode()).hexdigest()[:32]
    keys = [key async for key in redis.scan_iter(f"bs:limit:*{name}*")]
    assert len(keys) == 2
    for key in keys:
        assert 0 < await redis.ttl(key) <= 60


async def test_a_refused_event_uses_nothing_of_the_longer_windows(redis: Redis) -> None:
    settings = Settings(citizen_typing_limits="2/2 seconds; 3/minute")
    budgets, who = Budgets(redis, settings), uuid.uuid4().hex
    assert [await budgets.take("typing", who) for _ in range(4)] == [True, True, False, False]
    await asyncio.sleep(2.1)
    # Had the two refused ones counted in the minute, this would be refused.
    assert await budgets.take("typing", who)
    assert not await budgets.take("typing", who)
