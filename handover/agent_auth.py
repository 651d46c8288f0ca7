"""Agent login: signed short-lived tokens and a growing delay after failed passwords.

Tokens are signed (itsdangerous) rather than stored: any gateway replica can
check one without a Redis round trip. The signing key is a setting, or a
random key that the first replica stores in Redis for all of them.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis.asyncio import Redis

from handover.agents import Agent, AgentDirectory
from handover.settings import Settings

SECRET_KEY = "bs:secret:agent-tokens"
# Doubling per failure beyond the free ones, capped: slows guessing to a crawl
# without locking a real agent out for long.
MAX_DELAY_S = 30.0
FAILURE_WINDOW_S = 15 * 60


def _ended_key(session: str) -> str:
    return f"bs:agent-session-ended:{session}"


def _void_before_key(username: str) -> str:
    return f"bs:agent-tokens-void-before:{username}"


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header; '' for anything else."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class AgentAuth:
    def __init__(self, redis: Redis, directory: AgentDirectory, settings: Settings) -> None:
        self._redis: Any = redis
        self._directory = directory
        self._settings = settings
        self._serializer: URLSafeTimedSerializer | None = None

    async def _signer(self) -> URLSafeTimedSerializer:
        if self._serializer is None:
            secret = self._settings.agent_token_secret
            if not secret:
                await self._redis.set(SECRET_KEY, secrets.token_urlsafe(32), nx=True)
                secret = await self._redis.get(SECRET_KEY)
            self._serializer = URLSafeTimedSerializer(secret, salt="agent-token")
        return self._serializer

    def failure_delay(self, failures: int) -> float:
        over = failures - self._settings.login_free_failures
        return 0.0 if over < 0 else min(MAX_DELAY_S, 0.5 * 2**over)

    async def login(self, username: str, password: str) -> tuple[str, Agent] | None:
        """A token for the agent, or None after the (possibly delayed) failure."""
        failures_key = f"bs:login-failures:{username.lower()[:64]}"
        failures = int(await self._redis.get(failures_key) or 0)
        agent = await self._directory.verify(username, password)
        if agent is None:
            failures = await self._redis.incr(failures_key)
            await self._redis.expire(failures_key, FAILURE_WINDOW_S)
            await asyncio.sleep(self.failure_delay(failures))
            return None
        if failures:
            await self._redis.delete(failures_key)
        return await self.issue(agent), agent

    async def issue(self, agent: Agent, session: str | None = None) -> str:
        """A token for the agent, in a session that can be ended on its own.

        `session` is the identity provider's session id for an OIDC sign-in (so its
        back-channel logout can end it); a password login gets a session of its own.
        """
        sid = f"idp:{session}" if session else secrets.token_urlsafe(12)
        return str((await self._signer()).dumps({"sub": agent.username, "sid": sid}))

    async def _claims(self, token: str) -> dict[str, Any] | None:
        try:
            data, issued = (await self._signer()).loads(
                token, max_age=self._settings.agent_token_ttl_s, return_timestamp=True
            )
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sub"), str):
            return None
        sid = data.get("sid")
        ended, void_before = await self._redis.mget(
            _ended_key(sid if isinstance(sid, str) else "-"), _void_before_key(data["sub"])
        )
        if ended or (void_before and issued.timestamp() <= float(void_before)):
            return None
        return data

    async def session_of(self, token: str) -> str | None:
        """The session id of a genuine, live token."""
        data = await self._claims(token) if token else None
        sid = data.get("sid") if data else None
        return sid if isinstance(sid, str) else None

    async def end_session(self, session: str) -> int:
        """Void every token of a session from now on (logout, back-channel logout)."""
        await self._redis.set(_ended_key(session), 1, ex=self._settings.agent_token_ttl_s)
        return 1

    async def end_agent_tokens(self, username: str) -> int:
        """Void every token the agent holds now (a logout that names the person only)."""
        await self._redis.set(
            _void_before_key(username), time.time(), ex=self._settings.agent_token_ttl_s
        )
        return 1

    async def agent_for(self, token: str) -> Agent | None:
        """The agent a token was issued to, if it is genuine, fresh and the account exists."""
        data = await self._claims(token)
        return await self._directory.get(data["sub"]) if data else None
