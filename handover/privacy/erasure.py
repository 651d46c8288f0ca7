"""Erasure (DSGVO Art. 17): a conversation, or everything about a person, removed everywhere.

Final and complete: the log stream, meta hash, client ids, NLU data, rating,
replica set, the token's key, queue entries, agents' lists and reasons, the
tickets written in it, the Rasa tracker (rasa/trackers.py) and the look-up
counter named after it. Before anything is deleted, a `state` event with
reason `erased` is appended: every replica's open citizen socket and every
agent following it is told (the widget forgets its token; the console drops
the chat), and a supervisor's views refresh. Cases reported in an erased
conversation, and applications sent while it was open, keep being processed but
lose their link to it, unless the request named the person (then they go too,
an application with its upload). The audit log keeps that
someone read the conversation, under a pseudonym; a deletion record says what
went, never what it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis

from handover import keys
from handover.agents.queues import agent_conversations_key, queue_key, unassigned_key
from handover.conversation import states
from handover.conversation.bus import AGENTS_CHANNEL, EventBus
from handover.conversation.log import ConversationLog
from handover.privacy.audit_log import AuditLog
from handover.privacy.deletion_records import DeletionRecords
from handover.privacy.person_data import Holdings, PersonData
from handover.privacy.pseudonyms import Pseudonyms
from handover.rasa.trackers import delete_tracker

log = structlog.get_logger(__name__)

ERASED = "erased"  # the reason of the last `state` event citizens and agents see


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked: 'citizen' for the citizen's own erasure, else an agent's username."""

    name: str
    via: str  # widget, admin-api, admin-command


def _lookup_counter_key(conversation_id: str) -> str:
    digest = hashlib.sha256(conversation_id.encode()).hexdigest()[:32]
    return keys.case_lookups_of_conversation(digest)


class Eraser:
    def __init__(
        self,
        redis: Redis,
        log_: ConversationLog,
        audit: AuditLog,
        records: DeletionRecords,
        pseudonyms: Pseudonyms,
        bus: EventBus | None = None,
    ) -> None:
        self._redis: Any = redis
        self._log = log_
        self._audit = audit
        self._records = records
        self._pseudonyms = pseudonyms
        self._bus = bus
        self.person_data = PersonData(redis)

    async def erase(
        self,
        holdings: Holdings,
        requester: Requester,
        subject: str,
        *,
        token: str | None = None,
        keep_cases: bool = False,
    ) -> dict[str, Any]:
        """Erase what `holdings` names; returns the deletion record.

        `subject` is the pseudonym of what the request named. `token` (the
        citizen's own request) spares the scan for the token's key.
        `keep_cases`: cases and applications survive, unlinked from the conversations.
        """
        erased: dict[str, int] = {}

        def count(kind: str, n: int) -> None:
            if n:
                erased[kind] = erased.get(kind, 0) + n

        for conversation_id in sorted(holdings.conversations):
            await self._announce(conversation_id)
        token_keys = (
            [keys.legacy_token(token)] if token else await self._token_keys(holdings.conversations)
        )
        for conversation_id in sorted(holdings.conversations):
            for kind, n in (await self._erase_conversation(conversation_id)).items():
                count(kind, n)
        count("tokens", int(await self._redis.delete(*token_keys)) if token_keys else 0)
        for ticket_id in sorted(holdings.tickets):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(keys.ticket(ticket_id))
                pipe.zrem(keys.TICKETS_OPEN, ticket_id)
                deleted, _ = await pipe.execute()
            count("tickets", int(deleted))
        for number in sorted(holdings.cases):
            if keep_cases:
                unlinked = await self._redis.hdel(keys.case(number), "conversation_id")
                count("case_links", int(unlinked))
            else:
                deleted = await self._redis.delete(keys.case(number),
                                                   keys.case_history(number))  # fmt: skip
                count("cases", 1 if deleted else 0)
        for number in sorted(holdings.applications):
            if keep_cases:
                unlinked = await self._redis.hdel(keys.application(number), "conversation_id")
                count("application_links", int(unlinked))
            else:
                deleted = await self._redis.delete(*keys.application_keys(number))
                count("applications", 1 if deleted else 0)
        for conversation_id in sorted(holdings.conversations):
            pseudonym = await self._pseudonyms.of("conversation", conversation_id)
            count("audit_entries_pseudonymised",
                  await self._audit.pseudonymise(conversation_id, pseudonym))  # fmt: skip
        await self._agents_changed()
        record = await self._records.record(
            by=requester.name, via=requester.via, subject=subject, erased=erased
        )
        log.info("data_erased", by=requester.name, via=requester.via, record=record["id"],
                 erased=erased)  # fmt: skip
        return record

    async def _announce(self, conversation_id: str) -> None:
        """Tell open sockets (every replica) that the conversation is gone."""
        event = states.closed(ERASED).as_event()
        appended = await self._log.append(conversation_id, event, meta=states.CLOSE.meta())
        if appended.stored and self._bus is not None:
            self._bus.publish_local(conversation_id, {**event, "seq": appended.seq})

    async def _erase_conversation(self, conversation_id: str) -> dict[str, int]:
        meta = await self._log.meta(conversation_id)
        names = keys.conversation_keys(conversation_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(names[1])
            pipe.hlen(names[3])
            pipe.exists(names[4])
            events, nlu, rated = await pipe.execute()
        await self._forget_channel_user(conversation_id, meta)
        queues = set(await self._redis.smembers(keys.QUEUES)) | {meta.get("queue") or ""}
        agents = set(await self._redis.smembers(keys.AGENTS)) | {meta.get("agent") or ""}
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue in sorted(queues - {""}):
                pipe.zrem(queue_key(queue), conversation_id)
            for username in sorted(agents - {""}):
                pipe.srem(agent_conversations_key(username), conversation_id)
                pipe.hdel(unassigned_key(username), conversation_id)
            # Its signed token must not resume it, not even as a new empty conversation.
            pipe.set(keys.erased(conversation_id), 1, ex=self._log.retention_s)
            pipe.delete(*names, _lookup_counter_key(conversation_id))
            results = await pipe.execute()
        n_queues = len(queues - {""})
        n_agents = len(agents - {""})
        queue_entries = sum(int(r) for r in results[:n_queues])
        assignments = sum(int(r) for r in results[n_queues : n_queues + 2 * n_agents : 2])
        trackers = await delete_tracker(self._redis, conversation_id)
        return {"conversations": 1 if results[-1] else 0, "conversation_events": int(events),
                "nlu_entries": int(nlu), "ratings": int(rated), "queue_entries": queue_entries,
                "assignments": assignments, "rasa_trackers": int(trackers)}  # fmt: skip

    async def _forget_channel_user(self, conversation_id: str, meta: dict[str, str]) -> None:
        """A messenger user's next message must not find the erased conversation."""
        channel, recipient = meta.get("channel", "web"), meta.get("recipient")
        if not recipient or channel == "web":
            return
        user_key = keys.channel_user(channel, await self._pseudonyms.of(channel, recipient))
        if await self._redis.get(user_key) == conversation_id:
            await self._redis.delete(user_key)

    async def _token_keys(self, conversation_ids: set[str]) -> list[str]:
        """Token keys pointing at these conversations: a scan, since only a hash of
        the token is stored (bounded by the conversations of one retention period)."""
        if not conversation_ids:
            return []
        found: list[str] = []
        batch: list[str] = []

        async def check() -> None:
            values = await self._redis.mget(batch)
            found.extend(k for k, v in zip(batch, values, strict=True) if v in conversation_ids)
            batch.clear()

        async for key in self._redis.scan_iter(match=keys.LEGACY_TOKEN_PREFIX + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await check()
        if batch:
            await check()
        return found

    async def _agents_changed(self) -> None:
        if self._bus is not None:
            await self._bus.agents_changed()
        else:
            await self._redis.publish(AGENTS_CHANNEL, "erasure")
