"""Agent login: signed short-lived tokens and a growing delay after failed passwords.

Tokens are signed (itsdangerous) rather than stored: any gateway replica can
check one without a Redis round trip. The signing key is a setting, or a
random key that the first replica stores in Redis for all of them.
"""

from __future__ import annotations

import asyncio
import secrets
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
        token = (await self._signer()).dumps({"sub": agent.username})
        return token, agent

    async def agent_for(self, token: str) -> Agent | None:
        """The agent a token was issued to, if it is genuine, fresh and the account exists."""
        try:
            data = (await self._signer()).loads(token, max_age=self._settings.agent_token_ttl_s)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sub"), str):
            return None
        return await self._directory.get(data["sub"])
