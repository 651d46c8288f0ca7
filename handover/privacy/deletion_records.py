"""Deletion records: proof that data was erased, without the data.

A record says what kinds of data were erased and how many items of each,
when, by whom and on whose request, kept per DELETION_RECORD_RETENTION_DAYS
(daily_records.py). It never holds content, nor the e-mail address, phone
number or conversation id in clear: those appear as pseudonyms (keyed hashes,
pseudonyms.py), so the city can answer "was this address erased?" without
keeping the address.
"""

from __future__ import annotations

import uuid
from typing import Any

from redis.asyncio import Redis

from handover import keys
from handover.conversation.protocol import utc_now
from handover.privacy.daily_records import DailyRecords

PREFIX = keys.DELETIONS


class DeletionRecords:
    def __init__(self, redis: Redis, retention_s: int) -> None:
        self._records = DailyRecords(redis, PREFIX, retention_s)

    async def record(
        self, *, by: str, via: str, subject: str, erased: dict[str, int]
    ) -> dict[str, Any]:
        """Store and return a record; `subject` is the pseudonym of what the request named."""
        record = {"id": uuid.uuid4().hex, "ts": utc_now(), "by": by, "via": via,
                  "subject": subject, "erased": erased}  # fmt: skip
        await self._records.append(record)
        return record

    async def recent(self, limit: int = 200) -> list[dict[str, Any]]:
        return await self._records.recent(limit)
