from __future__ import annotations

import time

from handover.rate_limit import TokenBucket


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
