"""Agent login: signed short-lived tokens, checked limits before any password hash.

Tokens are signed (itsdangerous) rather than stored: any gateway replica can
check one with one Redis read (the account). A token names the account's
`generation` (agents/directory.py): changing or removing the account invalidates it. The
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

from handover import keys
from handover.agents.directory import REVOKED_CHANNEL, Agent, AgentDirectory
from handover.agents.login_limits import LoginLimits
from handover.settings import Settings

SECRET_KEY = keys.AGENT_TOKEN_SECRET


def _ended_key(session: str) -> str:
    return keys.agent_session_ended(session)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header; '' for anything else."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@dataclass(frozen=True, slots=True)
class AgentSession:
    """Who a token belongs to, and until when (epoch seconds) it is valid."""

    agent: Agent
    expires_at: float
    # One login: a password login's own id, or `idp:<sid>` for the identity provider's
    # session of an OIDC sign-in. Logout ends it alone (the agent's other consoles stay).
    session: str = ""


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
        return await self.issue(agent), agent

    async def issue(self, agent: Agent, provider_session: str | None = None) -> str:
        """A token for the agent's current account generation, in a session of its own.

        `provider_session` is the identity provider's `sid` of an OIDC sign-in, so that
        the provider's back-channel logout can end exactly this session.
        """
        sid = f"idp:{provider_session}" if provider_session else secrets.token_urlsafe(12)
        claims = {"sub": agent.username, "gen": agent.generation, "sid": sid}
        return str((await self._signer()).dumps(claims))

    async def end_session(self, session: AgentSession) -> None:
        """Logout: the session's tokens stop working, its open sockets close on every replica."""
        await self.end_sessions(session.session, session.agent.username)

    async def end_sessions(self, sid: str, username: str) -> None:
        """End session `sid` (of `username`, if known: their sockets re-check at once)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(_ended_key(sid), 1, ex=self._settings.agent_token_ttl_s)
            if username:
                pipe.publish(REVOKED_CHANNEL, username)
            await pipe.execute()

    async def session_for(self, token: str) -> AgentSession | None:
        """The session of a genuine, fresh token whose account is unchanged since it was issued."""
        ttl = self._settings.agent_token_ttl_s
        try:
            data, issued = (await self._signer()).loads(token, max_age=ttl, return_timestamp=True)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sub"), str):
            return None
        sid = data.get("sid")
        sid = sid if isinstance(sid, str) else ""
        agent = await self._directory.get(data["sub"])
        if agent is None or data.get("gen") != agent.generation:
            return None
        if sid and await self._redis.exists(_ended_key(sid)):
            return None
        expires_at = issued.timestamp() + ttl
        return AgentSession(agent, expires_at, sid) if expires_at > time.time() else None

    async def agent_for(self, token: str) -> Agent | None:
        """The agent a token was issued to, if it is genuine, fresh and the account unchanged."""
        session = await self.session_for(token)
        return session.agent if session is not None else None
