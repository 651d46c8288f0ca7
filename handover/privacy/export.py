"""Export bundles (DSGVO Art. 15 and 20): a conversation, or everything about a person, as JSON.

The citizen's own export (`audience="citizen"`) holds what they see in the
chat plus what the service recorded about it: events visible to citizens, what
the bot understood of each message, the rating, the ticket and the cases
reported in it. The city's export (`audience="city"`) adds agents' internal
notes, for the city to review before it hands a copy out. Applications are
exported whole, their upload included (base64). Neither holds the
conversation token or anything about other people.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from redis.asyncio import Redis

from handover import keys
from handover.applications.store import ApplicationBook
from handover.cases.store import CaseBook
from handover.conversation.delivery import visible_to_citizen
from handover.conversation.log import ConversationLog
from handover.conversation.protocol import utc_now
from handover.privacy.person_data import Holdings

Audience = Literal["citizen", "city"]
# Meta fields that describe the conversation; the rest are internal bookkeeping.
META_FIELDS = ("state", "channel", "language", "created_at", "queue", "reason", "agent_name",
               "ticket")  # fmt: skip
CASE_FIELDS = ("category", "location", "description", "email", "postal_code", "status",
               "created_at", "updated_at", "conversation_id", "language")  # fmt: skip
TICKET_FIELDS = ("id", "conversation_id", "queue", "reason", "contact", "text", "language",
                 "created_at", "status")  # fmt: skip


class DataExport:
    def __init__(
        self,
        redis: Redis,
        log: ConversationLog,
        cases: CaseBook,
        applications: ApplicationBook,
    ) -> None:
        self._redis: Any = redis
        self._log = log
        self._cases = cases
        self._applications = applications

    async def conversation(self, conversation_id: str, audience: Audience) -> dict[str, Any]:
        meta = await self._log.meta(conversation_id)
        events = await self._log.events_after(conversation_id, 0)
        if audience == "citizen":
            events = [event for event in events if visible_to_citizen(event)]
        understanding = await self._log.understanding(conversation_id)
        rating = await self._log.csat(conversation_id)
        return {
            "conversation_id": conversation_id,
            **{name: meta[name] for name in META_FIELDS if meta.get(name)},
            "events": events,
            "understanding": [
                {"seq": seq, **parse} for seq, parse in sorted(understanding.items())
            ],
            "rating": {
                "score": int(rating["csat_score"]),
                "comment": rating.get("csat_comment", ""),
                "ts": rating.get("csat_at", ""),
            }
            if rating.get("csat_score")
            else None,
        }

    async def case(self, number: str) -> dict[str, Any] | None:
        data = await self._redis.hgetall(keys.case(number))
        if not data:
            return None
        found = await self._cases.get(number)
        history = [entry.public() for entry in found.history] if found else []
        return {"case_number": number, **{k: data[k] for k in CASE_FIELDS if data.get(k)},
                "history": history}  # fmt: skip

    async def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        data = await self._redis.hgetall(keys.ticket(ticket_id))
        return {k: data[k] for k in TICKET_FIELDS if data.get(k)} if data else None

    async def bundle(self, holdings: Holdings, audience: Audience) -> dict[str, Any]:
        """Everything in `holdings`, for one download."""
        conversations = [await self.conversation(cid, audience)
                         for cid in sorted(holdings.conversations)]  # fmt: skip
        cases = [case for n in sorted(holdings.cases) if (case := await self.case(n))]
        tickets = [t for tid in sorted(holdings.tickets) if (t := await self.ticket(tid))]
        applications = [a for n in sorted(holdings.applications)
                        if (a := await self._applications.export(n))]  # fmt: skip
        return {
            "exported_at": utc_now(),
            "format": "buergerservice-export/1",
            "conversations": conversations,
            "cases": cases,
            "tickets": tickets,
            "applications": applications,
        }


def bundle_json(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle, ensure_ascii=False, indent=2).encode()
