"""Finding everything the gateway holds about one person: conversations, cases, tickets,
applications.

A request names a conversation id, a case number, an application number, an
e-mail address or a phone number. Conversations link to the tickets written in
them (meta `ticket`) and to the cases reported and applications submitted while
they were open (field `conversation_id`); a case, ticket or application links
back to its conversation.

E-mail addresses and phone numbers are found with a bounded scan rather than an
index: only cases (`bs:case:{…}`), tickets (`bs:ticket:*`) and applications
(`bs:application:{…}`) carry them, all expire with their retention, so the scan
is bounded by what a retention period holds (a city's cases, tickets and
applications of half a year: tens of thousands of hashes, about a second of
SCAN). Such requests are rare and made by administrators; an index would be a
second copy of every address that has to be kept in step with the data it
points to, and would outlive an erased case if a write were lost.
Addresses typed only into a chat message are not found this way: the
conversation is found by its id or through the case or ticket it led to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis

from handover import keys
from handover.applications.store import normalise_application_number
from handover.cases.store import normalise_case_number
from handover.privacy.pseudonyms import normalise_email, normalise_phone

SubjectKind = Literal["conversation_id", "case_number", "application_number", "email", "phone"]
SUBJECT_KINDS: tuple[SubjectKind, ...] = (
    "conversation_id", "case_number", "application_number", "email", "phone",
)  # fmt: skip
SCAN_BATCH = 500


class UnknownSubject(ValueError):
    """The identifier is malformed (the message says which)."""


@dataclass(slots=True)
class Holdings:
    """Keys of what was found: conversation ids, case numbers, ticket ids, application numbers."""

    conversations: set[str] = field(default_factory=set)
    cases: set[str] = field(default_factory=set)
    tickets: set[str] = field(default_factory=set)
    applications: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (self.conversations or self.cases or self.tickets or self.applications)


def normalised_subject(kind: SubjectKind, value: str) -> str:
    """The canonical form of the identifier, or UnknownSubject."""
    value = value.strip()
    if kind == "conversation_id":
        if not (0 < len(value) <= 64 and value.isalnum()):
            raise UnknownSubject("conversation_id: expected the 32 hex digits of a conversation id")
        return value.lower()
    if kind == "case_number":
        number = normalise_case_number(value)
        if number is None:
            raise UnknownSubject("case_number: expected e.g. MM-2026-000001")
        return number
    if kind == "application_number":
        number = normalise_application_number(value)
        if number is None:
            raise UnknownSubject("application_number: expected e.g. PV-2026-7K3Q-9XHG")
        return number
    if kind == "email":
        email = normalise_email(value)
        if "@" not in email or len(email) > 254:
            raise UnknownSubject("email: not an e-mail address")
        return email
    phone = normalise_phone(value)
    if not 6 <= len(phone) <= 20:
        raise UnknownSubject("phone: not a phone number")
    return phone


class PersonData:
    def __init__(self, redis: Redis) -> None:
        self._redis: Any = redis

    async def find(self, kind: SubjectKind, value: str) -> Holdings:
        """Everything linked to the (normalised) identifier, following links one step."""
        found = Holdings()
        if kind == "conversation_id":
            if await self._redis.exists(keys.conversation(value), keys.conversation_log(value)):
                found.conversations.add(value)
        elif kind == "case_number":
            if await self._redis.exists(keys.case(value)):
                found.cases.add(value)
        elif kind == "application_number":
            if await self._redis.exists(keys.application(value)):
                found.applications.add(value)
        else:
            await self._scan_contacts(kind, value, found)
        await self._follow_links(found)
        return found

    async def _scan_contacts(self, kind: SubjectKind, value: str, found: Holdings) -> None:
        same = normalise_email if kind == "email" else normalise_phone
        if kind == "email":
            async for key, (email,) in self._scan(keys.case("*"), ["email"]):
                if email and same(email) == value:
                    found.cases.add(key[len(keys.CASE_PREFIX) : -1])
        async for key, (email, phone) in self._scan(keys.application("*"), ["email", "phone"]):
            contact = email if kind == "email" else phone
            if contact and same(contact) == value:
                found.applications.add(key[len(keys.APPLICATION_PREFIX) : -1])
        async for key, (contact,) in self._scan(keys.ticket("*"), ["contact"]):
            if contact and ("@" in contact) == (kind == "email") and same(contact) == value:
                found.tickets.add(key[len(keys.TICKET_PREFIX) :])

    async def _scan(self, pattern: str, fields: list[str]) -> Any:
        """(key, field values) of every hash matching `pattern`, in pipelined batches."""
        batch: list[str] = []
        async for key in self._redis.scan_iter(match=pattern, count=SCAN_BATCH, _type="hash"):
            batch.append(key)
            if len(batch) >= SCAN_BATCH:
                for item in await self._fields(batch, fields):
                    yield item
                batch = []
        for item in await self._fields(batch, fields):
            yield item

    async def _fields(self, keys: list[str], fields: list[str]) -> list[tuple[str, list[str]]]:
        if not keys:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, fields)
            values = await pipe.execute()
        return list(zip(keys, values, strict=True))

    async def _follow_links(self, found: Holdings) -> None:
        """Add the conversations of found cases and tickets, and the tickets and cases
        of found conversations."""
        for number in list(found.cases):
            conversation_id = await self._redis.hget(keys.case(number), "conversation_id")
            if conversation_id:
                found.conversations.add(conversation_id)
        for ticket_id in list(found.tickets):
            conversation_id = await self._redis.hget(keys.ticket(ticket_id), "conversation_id")
            if conversation_id:
                found.conversations.add(conversation_id)
        for number in list(found.applications):
            conversation_id = await self._redis.hget(keys.application(number), "conversation_id")
            if conversation_id:
                found.conversations.add(conversation_id)
        for conversation_id in list(found.conversations):
            ticket_id = await self._redis.hget(keys.conversation(conversation_id), "ticket")
            if ticket_id:
                found.tickets.add(ticket_id)
        found.tickets |= await self.tickets_of(found.conversations)
        found.cases |= await self.cases_of(found.conversations)
        found.applications |= await self.applications_of(found.conversations)

    async def conversation_holdings(self, conversation_id: str, *, scan: bool) -> Holdings:
        """One conversation with the tickets written, cases reported and applications sent in it.

        Without `scan` (the citizen's export, which anyone with a token may repeat):
        only the ticket its meta names, no scan of every case and ticket.
        """
        found = Holdings(conversations={conversation_id})
        ticket_id = await self._redis.hget(keys.conversation(conversation_id), "ticket")
        if ticket_id:
            found.tickets.add(ticket_id)
        if scan:
            found.tickets |= await self.tickets_of(found.conversations)
            found.cases = await self.cases_of(found.conversations)
            found.applications = await self.applications_of(found.conversations)
        return found

    async def tickets_of(self, conversation_ids: set[str]) -> set[str]:
        """Tickets written in these conversations (a scan: a ticket may outlive its meta)."""
        if not conversation_ids:
            return set()
        return {
            key[len(keys.TICKET_PREFIX) :]
            async for key, (cid,) in self._scan(keys.ticket("*"), ["conversation_id"])
            if cid in conversation_ids
        }

    async def cases_of(self, conversation_ids: set[str]) -> set[str]:
        """Cases reported in these conversations."""
        if not conversation_ids:
            return set()
        return {
            key[len(keys.CASE_PREFIX) : -1]
            async for key, (cid,) in self._scan(keys.case("*"), ["conversation_id"])
            if cid in conversation_ids
        }

    async def applications_of(self, conversation_ids: set[str]) -> set[str]:
        """Applications submitted while these conversations were open (and linked to them)."""
        if not conversation_ids:
            return set()
        return {
            key[len(keys.APPLICATION_PREFIX) : -1]
            async for key, (cid,) in self._scan(keys.application("*"), ["conversation_id"])
            if cid in conversation_ids
        }
