"""Damage reports (Mängelmeldungen): numbered cases with a status history, in Redis.

A case number ``MM-<year>-XXXX-XXXX`` is random with a check character
(handover/cases/numbers.py), so numbers cannot be walked. Every number issued in
a year is kept in that year's set until the year is over, and a new one is
drawn again if it was ever issued, so no number is given out twice, not even
after its case has expired. A case is a hash plus a list of status changes;
both expire CASE_RETENTION_DAYS after the last change. The e-mail address and
postal code are stored only when the citizen gave them, as given, and serve
one purpose: letting the citizen look the case up again.

A look-up proves ownership with the e-mail or postal code given with the
report. Every failure looks the same to the caller (unknown number, wrong
pair, no verifier), and the comparison runs against a dummy value when the
number is unknown, so neither the answer nor its timing says whether a number
exists. `LookupThrottle` limits failures per client (a budget) and per
(client, case) pair (an exponential delay), never per case alone, so nobody
can lock an owner out of their own case.

Keys of one case share the hash tag ``{<case number>}`` (one Redis Cluster
shard per case); the throttle's counters share ``{throttle}``, so its
scripts, which touch several counters at once, work there too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from handover import keys
from handover.cases.numbers import new_number
from handover.cases.numbers import normalise_case_number as normalise_case_number
from handover.conversation.protocol import utc_now

Category = Literal[
    "schlagloch", "strassenbeleuchtung", "muell", "graffiti", "spielplatz", "sonstiges"
]
CATEGORIES: tuple[Category, ...] = get_args(Category)
CaseStatus = Literal["eingegangen", "in_bearbeitung", "erledigt", "abgelehnt"]
STATUSES: tuple[CaseStatus, ...] = get_args(CaseStatus)

# The year in a number is the city's, not UTC's: a report at 00:30 on New Year's
# Day in Germany belongs to the new year.
CITY_TZ = ZoneInfo("Europe/Berlin")
# Compared against when a case is unknown, so an unknown number costs what a known one does.
_DUMMY_VERIFIER = "no-such-case@invalid"

# KEYS: case hash, history list. ARGV: status, timestamp, history entry JSON, TTL seconds.
# Returns 0 when the case does not exist (never did, or expired): nothing is written.
_SET_STATUS_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""

# KEYS: the client's failure budget; optionally its (client, case) pair.
# ARGV: budget, budget window ms, pair base delay ms, pair maximum delay ms.
# Refused (returns the milliseconds to wait, counting nothing) while the budget
# is spent or the pair's delay since its last failure has not passed. Otherwise
# counts this attempt as a failure on both, atomically and before the look-up,
# so parallel requests cannot slip past: the pair's n-th failure delays its
# next try by base * 2^(n-2) (none after the first), at most the maximum. A
# successful look-up takes its count back and clears the pair (_RELEASE_SCRIPT).
_ATTEMPT_SCRIPT = """
local budget, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local base, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
if tonumber(redis.call('GET', KEYS[1]) or '0') >= budget then
  wait = redis.call('PTTL', KEYS[1])
  if wait < 0 then
    redis.call('PEXPIRE', KEYS[1], window)
    wait = window
  end
end
local failures = 0
if KEYS[2] then
  failures = tonumber(redis.call('HGET', KEYS[2], 'failures') or '0')
  local ready = tonumber(redis.call('HGET', KEYS[2], 'ready_at') or '0')
  if ready - now > wait then wait = ready - now end
end
if wait > 0 then return wait end
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], window) end
if KEYS[2] then
  local delay = 0
  if failures >= 1 then delay = math.min(cap, base * 2 ^ (failures - 1)) end
  redis.call('HSET', KEYS[2], 'failures', failures + 1, 'ready_at', now + delay)
  redis.call('PEXPIRE', KEYS[2], math.floor(delay + window))
end
return 0
"""

_RELEASE_SCRIPT = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
if KEYS[2] then redis.call('DEL', KEYS[2]) end
return 0
"""


def _case_key(number: str) -> str:
    return keys.case(number)


def _history_key(number: str) -> str:
    return keys.case_history(number)


def _issued_key(year: int) -> str:
    return keys.case_numbers(year)


def issued_mark(number: str) -> str:
    """How the year's set keeps a number it issued: hashed, so that an erased case's
    number is not left behind in clear."""
    return hashlib.sha256(number.encode()).hexdigest()[:24]


# Kept until the year is over (the year is in the number, so no later draw can
# collide), plus a margin for clocks and time zones.
_ISSUED_MARGIN = timedelta(days=2)


async def issue_number(redis: Redis, prefix: str, year: int, issued_key: str) -> str:
    """A ``<prefix>-<year>-…`` number never issued before, marked in the year's set
    `issued_key`; it stays marked even if the caller's write of its record fails."""
    client: Any = redis
    year_end = datetime(year + 1, 1, 1, tzinfo=CITY_TZ) + _ISSUED_MARGIN
    while True:
        number = new_number(prefix, year)
        async with client.pipeline(transaction=True) as pipe:
            pipe.sadd(issued_key, issued_mark(number))
            pipe.expireat(issued_key, int(year_end.timestamp()))
            added, _ = await pipe.execute()
        if added:
            return number


def _digest(value: str) -> bytes:
    # Equal-length digests: compare_digest then reveals nothing, not even a length.
    return hashlib.sha256(value.encode()).digest()


def _normalised(field: str, value: str) -> str:
    value = value.strip()
    return value.lower() if field == "email" else value


@dataclass(frozen=True, slots=True)
class StatusEntry:
    status: CaseStatus
    ts: str
    note: str | None = None
    by: str | None = None  # who changed it (an agent's username); kept, never shown to citizens

    def public(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"status": self.status, "ts": self.ts}
        if self.note:
            entry["note"] = self.note
        return entry

    def to_json(self) -> str:
        data = {"status": self.status, "ts": self.ts, "note": self.note, "by": self.by}
        return json.dumps({k: v for k, v in data.items() if v}, ensure_ascii=False)

    @staticmethod
    def from_json(raw: str) -> StatusEntry:
        data = json.loads(raw)
        return StatusEntry(
            status=data["status"], ts=data["ts"], note=data.get("note"), by=data.get("by")
        )


@dataclass(frozen=True, slots=True)
class Case:
    number: str
    category: str
    location: str
    status: CaseStatus
    created_at: str
    history: tuple[StatusEntry, ...]

    def public(self) -> dict[str, Any]:
        """The case as a verified look-up shows it: no description, no personal data."""
        return {
            "case_number": self.number,
            "category": self.category,
            "location": self.location,
            "status": self.status,
            "created_at": self.created_at,
            "history": [entry.public() for entry in self.history],
        }


def _case(number: str, data: dict[str, str], history: list[str]) -> Case:
    return Case(
        number=number,
        category=data["category"],
        location=data["location"],
        status=cast(CaseStatus, data["status"]),
        created_at=data["created_at"],
        history=tuple(StatusEntry.from_json(raw) for raw in history),
    )


def _verified(data: dict[str, str], given: dict[str, str | None]) -> bool:
    """At least one given verifier matches the one on file, and none contradicts it.

    A verifier the case has no value for is ignored; requiring every given one
    that is on file to match means passing both does not double the guesses.
    All comparisons run whether or not the case exists.
    """
    matched = contradicted = False
    for field, value in given.items():
        if not value or not value.strip():
            continue
        on_file = data.get(field) or ""
        same = hmac.compare_digest(
            _digest(_normalised(field, on_file or _DUMMY_VERIFIER)),
            _digest(_normalised(field, value)),
        )
        if on_file:
            matched = matched or same
            contradicted = contradicted or not same
    return matched and not contradicted


class CaseBook:
    """Cases in Redis: create, look up with proof of ownership, change status."""

    def __init__(self, redis: Redis, retention_s: int) -> None:
        # Typed loosely: redis-py's stubs cannot know the client decodes to str.
        self._redis: Any = redis
        self.retention_s = retention_s
        self._set_status = redis.register_script(_SET_STATUS_SCRIPT)

    async def create(
        self,
        *,
        category: Category,
        location: str,
        description: str,
        email: str | None = None,
        postal_code: str | None = None,
        conversation_id: str | None = None,
        language: str = "de",
    ) -> Case:
        """Store a new case with status `eingegangen` and give it the year's next number."""
        now = datetime.now(CITY_TZ)
        number = await self._issue_number(now.year)
        created_at = utc_now()
        fields = {
            "category": category,
            "location": location,
            "description": description,
            "language": language,
            "status": "eingegangen",
            "created_at": created_at,
            "updated_at": created_at,
        }
        optional = {"email": email, "postal_code": postal_code, "conversation_id": conversation_id}
        fields.update({key: value for key, value in optional.items() if value})
        first = StatusEntry("eingegangen", created_at)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(_case_key(number), mapping=fields)
            pipe.expire(_case_key(number), self.retention_s)
            pipe.rpush(_history_key(number), first.to_json())
            pipe.expire(_history_key(number), self.retention_s)
            await pipe.execute()
        return Case(number, category, location, "eingegangen", created_at, (first,))

    async def _issue_number(self, year: int) -> str:
        return await issue_number(self._redis, "MM", year, _issued_key(year))

    async def _fetch(self, number: str) -> tuple[dict[str, str], list[str]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(_case_key(number))
            pipe.lrange(_history_key(number), 0, -1)
            data, history = await pipe.execute()
        return data, history

    async def get(self, number: str) -> Case | None:
        """The case, for staff (no proof of ownership); None if unknown or expired."""
        data, history = await self._fetch(number)
        return _case(number, data, history) if data else None

    async def look_up(
        self, number: str | None, *, email: str | None, postal_code: str | None
    ) -> Case | None:
        """The case if `number` exists and the e-mail or postal code proves ownership.

        `number` is canonical (`normalise_case_number`) or None for a malformed
        one; every way of failing costs the same Redis round trip and comparisons.
        """
        data, history = await self._fetch(number or "MM-0000-0000-0000")
        verified = _verified(data, {"email": email, "postal_code": postal_code})
        return _case(cast(str, number), data, history) if verified and data else None

    async def set_status(
        self, number: str, status: CaseStatus, *, note: str | None, by: str
    ) -> Case | None:
        """Record a status change (kept another retention period); None if the case is unknown."""
        ts = utc_now()
        entry = StatusEntry(status, ts, note or None, by)
        changed = await self._set_status(
            keys=[_case_key(number), _history_key(number)],
            args=[status, ts, entry.to_json(), self.retention_s],
        )
        return await self.get(number) if changed else None


class LookupThrottle:
    """Limits failed look-ups: a budget per client, an exponential delay per (client, case).

    The client is a client key (handover/ops/client_keys.py): the caller's own for a
    web page, the citizen's for the chat (relayed by the authenticated action
    server). There is deliberately no counter per case alone: failures from
    other clients never delay the owner. Counters are named by hashes, so Redis
    holds neither an address nor a case number next to the client that tried it.
    """

    def __init__(
        self,
        redis: Redis,
        max_failures: int,
        window_s: int,
        pair_delay_s: float,
        pair_max_delay_s: float,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.pair_delay_s = pair_delay_s
        self.pair_max_delay_s = pair_max_delay_s
        self._attempt = redis.register_script(_ATTEMPT_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    @staticmethod
    def keys(*, client: str, case_number: str | None) -> list[str]:
        """The client's budget counter, and its pair counter if the number is well formed."""
        prefix = keys.CASE_LOOKUPS
        counters = [f"{prefix}:client:{_name(client)}"]
        if case_number:
            counters.append(f"{prefix}:pair:{_name(f'{client} {case_number}')}")
        return counters

    async def attempt(self, keys: list[str]) -> float:
        """0 if the look-up may go ahead (it is counted as failed until `succeeded`);
        otherwise the seconds until it may be tried again."""
        wait_ms = await self._attempt(
            keys=keys,
            args=[
                self.max_failures,
                self.window_s * 1000,
                int(self.pair_delay_s * 1000),
                int(self.pair_max_delay_s * 1000),
            ],
        )
        return int(wait_ms) / 1000

    async def succeeded(self, keys: list[str]) -> None:
        """Take back the attempt's count and clear the pair; other failures still count."""
        await self._release(keys=keys, args=[])


def _name(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]
