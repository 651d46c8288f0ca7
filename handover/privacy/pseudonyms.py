"""Keyed hashes that stand for personal identifiers where only "the same person" matters.

Deletion records and the audit log of an erased conversation name the e-mail
address, phone number or conversation id by an HMAC, never in clear: whoever
holds the key (the city) can check whether a given address was erased; a copy
of Redis without the key cannot reverse it. The key is PSEUDONYM_SECRET, or a
random one the first process stores in Redis for all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from redis.asyncio import Redis

from handover import keys

SECRET_KEY = keys.PSEUDONYM_SECRET


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def normalise_phone(raw: str) -> str:
    """Digits only, German national form: '+49 30 1234-56' and '030 123456' are one number."""
    raw = raw.strip()
    digits = ("00" if raw.startswith("+") else "") + re.sub(r"\D", "", raw)
    if digits.startswith("0049"):
        digits = "0" + digits[4:]
    return digits


class Pseudonyms:
    def __init__(self, redis: Redis, secret: str | None) -> None:
        self._redis: Any = redis
        self._secret = secret.encode() if secret else None

    async def _key(self) -> bytes:
        if self._secret is None:
            await self._redis.set(SECRET_KEY, secrets.token_urlsafe(32), nx=True)
            self._secret = str(await self._redis.get(SECRET_KEY)).encode()
        return self._secret

    async def of(self, kind: str, value: str) -> str:
        """`kind:<hex>`, e.g. ``email:3f1c…`` (128 bits of an HMAC-SHA256)."""
        digest = hmac.new(await self._key(), f"{kind}:{value}".encode(), hashlib.sha256)
        return f"{kind}:{digest.hexdigest()[:32]}"
