"""Password hashing off the event loop: argon2id in a small, bounded, low-priority pool.

One argon2 verify costs ~0.1–0.2 s of CPU. On the event loop it stalls every
socket of the replica for that long; in a thread it does not, because
argon2-cffi releases the GIL while it hashes. The pool's threads run in
Linux's idle scheduling class (else niced), so on a busy machine the loop's
citizen turns win the CPU over a login storm. The pool is bounded twice: at most
`workers` hashes run at once, and at most `workers * QUEUED_PER_WORKER`
wait; beyond that a login is refused (`PasswordPoolBusy`) instead of queueing
for seconds. The login limits (login_limits.py) refuse most floods before
they get here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Hashes allowed to wait per worker: a short burst of logins queues for well
# under a second; a flood is refused with "try again" instead.
QUEUED_PER_WORKER = 8
# Added to the hashing threads' nice value (Linux: per thread). Citizen turns on
# the loop thread keep their priority.
HASHING_NICENESS = 10

T = TypeVar("T")

# RFC 9106's second recommendation (64 MiB, 3 passes) in one lane instead of
# argon2-cffi's four: with four, libargon2 runs a hash on four threads, so
# one login took both cores of a 2-core machine from the citizens' turns
# (docs/benchmarks.md, "Agent logins"). The memory and passes, which set
# what a guess costs an attacker, stay; OWASP's argon2id settings use one
# lane too. Hashes with four lanes are re-hashed at their next login.
_hasher = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=1)
# Unknown users cost a verify too, so timing does not reveal who exists.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class PasswordPoolBusy(RuntimeError):
    """More logins are waiting for a hash than the pool accepts; try again shortly."""


def _lower_priority() -> None:
    """SCHED_IDLE where Linux allows it (any user may choose it), else a higher nice value.

    A niced thread still takes a core's share and its caches from the
    citizens' turns; an idle-class thread runs only when nothing else wants
    the core. Under full load logins then wait, and the pool's bound turns
    the excess away as `PasswordPoolBusy`.
    """
    tid = threading.get_native_id()
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not permitted
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        return
    with contextlib.suppress(OSError, AttributeError):
        niceness = os.getpriority(os.PRIO_PROCESS, tid) + HASHING_NICENESS
        os.setpriority(os.PRIO_PROCESS, tid, niceness)


def _verify(stored: str | None, password: str) -> tuple[bool, str | None]:
    """(right?, a new hash when the stored one has outdated parameters)."""
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    return True, _hasher.hash(password) if _hasher.check_needs_rehash(stored) else None


class PasswordPool:
    """argon2id hash and verify in worker threads; never on the caller's event loop."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a password pool needs at least one worker")
        self.workers = workers
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="argon2", initializer=_lower_priority
        )
        self._admitted = 0
        self._max_admitted = workers * (1 + QUEUED_PER_WORKER)

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        if self._admitted >= self._max_admitted:
            raise PasswordPoolBusy("too many logins at once")
        self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, function, *args)
        finally:
            self._admitted -= 1

    async def hash(self, password: str) -> str:
        return await self._run(_hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> tuple[bool, str | None]:
        """Whether `password` matches `stored` (None: unknown user, same cost, never right).

        Also returns a fresh hash when the stored one should be upgraded.
        """
        return await self._run(_verify, stored, password)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
