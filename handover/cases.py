"""Damage reports (Mängelmeldungen): numbered cases with a status history, in Redis.

A case number ``MM-<year>-<counter>`` comes from one INCR per year on a counter
that never expires, so no number is ever given out twice, not even after its
case has expired. A case is a hash plus a list of status changes; both expire
CASE_RETENTION_DAYS after the last change. The e-mail address and postal code
are stored only when the citizen gave them, as given, and serve one purpose:
letting the citizen look the case up again.

A look-up proves ownership with the e-mail or postal code given with the
report. Every failure looks the same to the caller (unknown number, wrong
pair, no verifier), and the comparison runs against a dummy value when the
number is unknown, so neither the answer nor its timing says whether a number
exists. `LookupThrottle` counts failures so the pair cannot be guessed.

Keys of one case share the hash tag ``{<case number>}`` (one Redis Cluster
shard per case); the throttle's counters share ``{throttle}``, so its
scripts, which touch several counters at once, work there too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from handover.protocol import utc_now

Category = Literal[
    "schlagloch", "strassenbeleuchtung", "muell", "graffiti", "spielplatz", "sonstiges"
]
CATEGORIES: tuple[Category, ...] = get_args(Category)
CaseStatus = Literal["eingegangen", "in_bearbeitung", "erledigt", "abgelehnt"]
STATUSES: tuple[CaseStatus, ...] = get_args(CaseStatus)

CASE_NUMBER = re.compile(r"MM-(\d{4})-(\d{6,9})")
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

# KEYS: failure counters of one look-up. ARGV: limit, window in milliseconds.
# If any counter is at the limit: returns the milliseconds until the longest such
# window ends, counting nothing. Otherwise counts this attempt on every counter
# (a window starts with its first failure) and returns 0. Counting before the
# look-up, in one atomic step, means parallel requests cannot slip past the limit;
# a successful look-up takes its count back (`_RELEASE_SCRIPT`).
_ATTEMPT_SCRIPT = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local wait = 0
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= limit then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('PEXPIRE', key, window)
      ttl = window
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, window) end
end
return 0
"""

_RELEASE_SCRIPT = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""


def normalise_case_number(raw: str) -> str | None:
    """The canonical form of a case number as a citizen may type it, or None if malformed."""
    number = raw.strip().upper()
    return number if CASE_NUMBER.fullmatch(number) else None


def _case_key(number: str) -> str:
    return f"bs:case:{{{number}}}"


def _history_key(number: str) -> str:
    return f"bs:case:{{{number}}}:history"


def _counter_key(year: int) -> str:
    return f"bs:case-counter:{year}"


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
        year = datetime.now(CITY_TZ).year
        # A number whose write below fails is skipped, never handed out again.
        counter = await self._redis.incr(_counter_key(year))
        number = f"MM-{year}-{counter:06d}"
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
        data, history = await self._fetch(number or "MM-0000-000000")
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
    """Counts failed look-ups per client, conversation and case number; refuses beyond a limit.

    Counters are named by a hash of what they count, so Redis holds no client
    address or conversation id in clear.
    """

    def __init__(self, redis: Redis, max_failures: int, window_s: int) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._attempt = redis.register_script(_ATTEMPT_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    @staticmethod
    def keys(
        *, case_number: str | None, conversation_id: str | None, client: str | None
    ) -> list[str]:
        """The counters one look-up counts on; each identity given gets one."""
        identities = {"case": case_number, "conversation": conversation_id, "client": client}
        return [
            f"bs:case-lookups:{{throttle}}:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"
            for kind, value in identities.items()
            if value
        ]

    async def attempt(self, keys: list[str]) -> float:
        """0 if the look-up may go ahead (it is counted as failed until `succeeded`);
        otherwise the seconds until it may be tried again."""
        wait_ms = await self._attempt(keys=keys, args=[self.max_failures, self.window_s * 1000])
        return int(wait_ms) / 1000

    async def succeeded(self, keys: list[str]) -> None:
        """Take back the count of an attempt that succeeded; other failures still count."""
        await self._release(keys=keys, args=[])
