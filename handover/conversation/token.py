"""Citizens' conversation tokens: signed, so nothing is stored to issue one.

A token carries what a conversation needs before its first event is stored
(its id, channel and language) under an HMAC signature (itsdangerous). A
socket that connects and never speaks therefore leaves nothing in Redis, yet
its token resumes the conversation after a reconnect, and once the first event
is stored the same token finds it. A forged or altered token fails the
signature check and starts a new conversation; it never names another one.

The signing key is a setting, or a random key that the first replica stores
in Redis for all of them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from redis.asyncio import Redis

from handover import keys

SECRET_KEY = keys.CONVERSATION_TOKEN_SECRET
_SALT = "conversation-token"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    conversation_id: str
    channel: str
    language: str


class ConversationTokens:
    def __init__(self, redis: Redis, secret: str | None = None) -> None:
        self._redis: Any = redis
        self._secret = secret
        self._serializer: URLSafeSerializer | None = None

    async def _signer(self) -> URLSafeSerializer:
        if self._serializer is None:
            secret = self._secret
            if not secret:
                await self._redis.set(SECRET_KEY, secrets.token_urlsafe(32), nx=True)
                secret = await self._redis.get(SECRET_KEY)
            self._serializer = URLSafeSerializer(secret, salt=_SALT)
        return self._serializer

    async def issue(self, claims: TokenClaims) -> str:
        signer = await self._signer()
        return str(signer.dumps([claims.conversation_id, claims.channel, claims.language]))

    async def read(self, token: str) -> TokenClaims | None:
        """The claims of a genuine token; None for anything forged, altered or malformed."""
        try:
            data = (await self._signer()).loads(token)
        except BadSignature:
            return None
        match data:
            case [str(conversation_id), str(channel), str(language)] if conversation_id:
                return TokenClaims(conversation_id, channel, language)
        return None
