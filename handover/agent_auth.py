"""Agent login: signed short-lived tokens, checked limits before any password hash.

Tokens are signed (itsdangerous) rather than stored: any gateway replica can
check one with one Redis read (the account). A token names the account's
`generation` (agents.py): changing or removing the account invalidates it. The
signing key is a setting, or a random key that the first replica stores in
Redis for all of them.

A login is first admitted by the limits (login_limits.py, one Redis script);
only then is its password verified, in the password pool (passwords.py).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis.asyncio import Redis

from handover.agents import Agent, AgentDirectory
from handover.login_limits import LoginLimits
from handover.settings import Settings

SECRET_KEY = "bs:secret:agent-tokens"


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header; '' for anything else."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@dataclass(frozen=True, slots=True)
class AgentSession:
    """Who a token belongs to, and until when (epoch seconds) it is valid."""

    agent: Agent
    expires_at: float


class AgentAuth:
    def __init__(self, redis: Redis, directory: AgentDirectory, settings: Settings) -> None:
        self._redis: Any = redis
        self._directory = directory
        self._settings = settings
        self._serializer: URLSafeTimedSerializer | None = None
        self.limits = LoginLimits(redis, settings)

    async def _signer(self) -> URLSafeTimedSerializer:
        if self._serializer is None:
            secret = self._settings.agent_token_secret
            if not secret:
                await self._redis.set(SECRET_KEY, secrets.token_urlsafe(32), nx=True)
                secret = await self._redis.get(SECRET_KEY)
            self._serializer = URLSafeTimedSerializer(secret, salt="agent-token")
        return self._serializer

    async def login(self, username: str, password: str, address: str) -> tuple[str, Agent] | None:
        """A token for the agent, or None for wrong credentials.

        Raises `LoginRefused` (before any hashing) when a limit applies, and
        `PasswordPoolBusy` when too many hashes already wait.
        """
        admission = await self.limits.admit(username, address)
        agent = await self._directory.verify(username, password)
        if agent is None:
            await self.limits.failed(admission)
            return None
        await self.limits.succeeded(admission)
        token = (await self._signer()).dumps({"sub": agent.username, "gen": agent.generation})
        return token, agent

    async def session_for(self, token: str) -> AgentSession | None:
        """The session of a genuine, fresh token whose account is unchanged since it was issued."""
        ttl = self._settings.agent_token_ttl_s
        try:
            data, issued = (await self._signer()).loads(token, max_age=ttl, return_timestamp=True)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sub"), str):
            return None
        agent = await self._directory.get(data["sub"])
        if agent is None or data.get("gen") != agent.generation:
            return None
        expires_at = issued.timestamp() + ttl
        return AgentSession(agent, expires_at) if expires_at > time.time() else None

    async def agent_for(self, token: str) -> Agent | None:
        """The agent a token was issued to, if it is genuine, fresh and the account unchanged."""
        session = await self.session_for(token)
        return session.agent if session is not None else None
