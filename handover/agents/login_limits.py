"""Login limits, checked in Redis before any password is hashed.

One Lua script decides atomically, so parallel requests and gateway replicas
share one count:

1. per client address: at most LOGIN_PER_ADDRESS_PER_MINUTE attempts a minute;
2. globally: at most LOGIN_GLOBAL_PER_MINUTE attempts a minute (what the
   replicas' password pools may spend on logins);
3. per username: after LOGIN_FREE_FAILURES attempts each further attempt must
   wait 0.5 s, doubling up to LOGIN_MAX_DELAY_S. The attempt is counted when it
   is *admitted*, before its hash, so a burst of parallel guesses gets the free
   attempts and no more; the rest are refused without hashing. A successful
   login resets the count.

An attacker who guesses a username must not be able to keep its owner out:
an address the account logged in from successfully in the last
KNOWN_ADDRESS_S has a delay of its own for that username (the pair's gate) and
is exempt from the global limit, so guesses from elsewhere never delay the
owner's usual workplace. A successful login gives its address and global
attempt back, so the limits count failures (and attempts in flight): a city
office behind one NAT address where everyone logs in at eight is not refused.
Refusals carry the seconds to wait (HTTP 429 with Retry-After).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from handover import keys
from handover.errors import RateLimited
from handover.settings import Settings

GLOBAL_KEY = keys.LOGIN_GLOBAL
WINDOW_MS = 60_000
# A username's failures are forgotten this long after its last attempt.
FAILURE_WINDOW_MS = 15 * 60 * 1000
# First delay after the free attempts; doubles with each further attempt.
BASE_DELAY_MS = 500
# How long an address that logged in successfully counts as the account's own.
KNOWN_ADDRESS_S = 30 * 86_400

# KEYS: address counter, global counter, username gate, (username, address) gate,
#       the username's known addresses.
# ARGV: now ms, address, per-address limit, global limit, window ms,
#       free attempts, base delay ms, max delay ms, failure window ms.
# Returns {verdict, wait ms (for 'ok': the delay set for the next attempt), gate used,
# 1 if the global counter was counted}; verdict 'ok', 'address', 'global' or 'delay'.
_ADMIT = """
local now = tonumber(ARGV[1])
local function over_limit(key, limit)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[5]) end
  if n <= tonumber(limit) then return 0 end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, ARGV[5]); ttl = tonumber(ARGV[5]) end
  return math.max(ttl, 1)
end
local wait = over_limit(KEYS[1], ARGV[3])
if wait > 0 then return {'address', wait, '', 0} end
local known = redis.call('SISMEMBER', KEYS[5], ARGV[2]) == 1
if not known then
  wait = over_limit(KEYS[2], ARGV[4])
  if wait > 0 then return {'global', wait, '', 1} end
end
local gate = known and KEYS[4] or KEYS[3]
local next_at = tonumber(redis.call('HGET', gate, 'next_at') or '0')
if now < next_at then return {'delay', next_at - now, gate, 0} end
local attempts = redis.call('HINCRBY', gate, 'attempts', 1)
local over = attempts - tonumber(ARGV[6])
local delay = 0
if over >= 0 then
  delay = math.min(tonumber(ARGV[8]), tonumber(ARGV[7]) * 2 ^ over)
  redis.call('HSET', gate, 'next_at', now + delay)
end
redis.call('PEXPIRE', gate, ARGV[9])
return {'ok', delay, gate, known and 0 or 1}
"""

# KEYS: the gate. ARGV: now ms, the attempt's delay ms. A failed attempt's delay
# runs from its answer, not its admission (a slow hash must not use up the wait).
_FAILED = """
if redis.call('EXISTS', KEYS[1]) == 0 or tonumber(ARGV[2]) == 0 then return end
local next_at = tonumber(ARGV[1]) + tonumber(ARGV[2])
if next_at > tonumber(redis.call('HGET', KEYS[1], 'next_at') or '0') then
  redis.call('HSET', KEYS[1], 'next_at', next_at)
end
"""

# KEYS: the counters an admitted attempt counted in. Gives one attempt back to
# each that still exists (a window that has rolled over is left alone).
_REFUND = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end
end
"""


class LoginRefused(RateLimited):
    """A login refused before its password was checked; retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int, scope: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.scope = scope  # 'address', 'global' or 'delay', for logs and metrics


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted attempt; `gate` is the delay it counted against (reset on success)."""

    username: str
    address: str
    gate: str
    counters: tuple[str, ...]
    delay_ms: int


_MESSAGES = {
    "address": "Zu viele Anmeldeversuche von Ihrer Adresse. Bitte warten Sie kurz.",
    "global": "Zu viele Anmeldeversuche. Bitte versuchen Sie es gleich noch einmal.",
    "delay": "Zu viele fehlgeschlagene Anmeldungen für diesen Namen. Bitte warten Sie kurz.",
}


def _username_key(username: str) -> str:
    return username.lower()[:64]


class LoginLimits:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis: Any = redis
        self._settings = settings
        self._admit = redis.register_script(_ADMIT)
        self._refund = redis.register_script(_REFUND)
        self._failed = redis.register_script(_FAILED)

    async def admit(self, username: str, address: str) -> Admission:
        """Count one attempt, or raise `LoginRefused` (then nothing may be hashed)."""
        user, settings = _username_key(username), self._settings
        address_key = keys.login_address(address)
        verdict, wait_ms, gate, counted_global = await self._admit(
            keys=[
                address_key,
                GLOBAL_KEY,
                keys.login_user(user),
                keys.login_pair(user, address),
                keys.login_known(user),
            ],
            args=[
                int(time.time() * 1000), address,
                settings.login_per_address_per_minute, settings.login_global_per_minute,
                WINDOW_MS, settings.login_free_failures, BASE_DELAY_MS,
                int(settings.login_max_delay_s * 1000), FAILURE_WINDOW_MS,
            ],
        )  # fmt: skip
        if verdict != "ok":
            raise LoginRefused(_MESSAGES[verdict], max(1, math.ceil(int(wait_ms) / 1000)), verdict)
        counters = (address_key, GLOBAL_KEY) if counted_global else (address_key,)
        return Admission(user, address, gate, counters, int(wait_ms))

    async def failed(self, admission: Admission) -> None:
        """The password was wrong: the next attempt's wait starts now."""
        now_ms = int(time.time() * 1000)
        await self._failed(keys=[admission.gate], args=[now_ms, admission.delay_ms])

    async def succeeded(self, admission: Admission) -> None:
        """The password was right: reset its gate, give its attempt back, know the address."""
        known = keys.login_known(admission.username)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(admission.gate)
            pipe.sadd(known, admission.address)
            pipe.expire(known, KNOWN_ADDRESS_S)
            await pipe.execute()
        await self._refund(keys=list(admission.counters))
