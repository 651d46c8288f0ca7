"""The audit log: which agent or administrator read, exported or erased which conversation.

Kept per AUDIT_RETENTION_DAYS in daily lists (daily_records.py), visible to
supervisors (`GET /api/admin/audit`, the console's audit panel). Entries hold
who, what, which conversation and when, never message text. When a
conversation is erased its id in the log is replaced by a pseudonym
(pseudonyms.py): the log still shows that someone read it, not which one.
"""

from __future__ import annotations

from typing import Any, Literal

from redis.asyncio import Redis

from handover import keys
from handover.conversation.protocol import utc_now
from handover.privacy.daily_records import DailyRecords

AuditAction = Literal[
    "accept",  # an agent took the conversation over
    "read_transcript",  # the transcript was shown to an agent (accept, reconnect, auto-assign)
    "export",  # the conversation or a person's data was exported
    "erase",  # the conversation or a person's data was erased
    "read_audit_log",  # a supervisor looked at this log
    "read_deletion_records",
]
PREFIX = keys.AUDIT


class AuditLog:
    def __init__(self, redis: Redis, retention_s: int) -> None:
        self._records = DailyRecords(redis, PREFIX, retention_s)

    async def record(
        self,
        action: AuditAction,
        *,
        actor: str,
        role: str,
        conversation_id: str | None = None,
        subject: str | None = None,
        via: str = "console",
    ) -> None:
        """One entry. `actor` is a username ('citizen' for the citizen's own export);
        `subject` a pseudonym when the request named a person, not a conversation."""
        entry: dict[str, Any] = {"ts": utc_now(), "action": action, "actor": actor,
                                 "role": role, "via": via}  # fmt: skip
        if conversation_id:
            entry["conversation_id"] = conversation_id
        if subject:
            entry["subject"] = subject
        await self._records.append(entry)

    async def recent(self, limit: int = 200) -> list[dict[str, Any]]:
        return await self._records.recent(limit)

    async def pseudonymise(self, conversation_id: str, pseudonym: str) -> int:
        """The erased conversation's id becomes `pseudonym` in every entry kept."""
        return await self._records.rewrite("conversation_id", conversation_id, pseudonym)
