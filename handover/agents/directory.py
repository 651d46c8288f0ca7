"""Agent accounts: who may take over conversations, with which skills and capacity.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106's
recommendation) in a worker pool (passwords.py), never on the event loop.
Accounts live in Redis, so every gateway replica and the admin command see the
same directory.

Each save gives the account a new random `generation`; tokens name the
generation they were issued for (agents/auth.py), so changing or removing an
account invalidates its tokens, and the change is announced on
`REVOKED_CHANNEL` so open agent sockets on every replica close (agents/sessions.py).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from redis.asyncio import Redis

from handover import keys
from handover.agents.passwords import PasswordPool
from handover.conversation.protocol import utc_now

Role = Literal["agent", "supervisor"]
ROLES: tuple[Role, ...] = ("agent", "supervisor")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
SKILL = re.compile(r"^[a-z0-9_-]{1,32}$")
# Published with a username whenever that account is changed or removed.
REVOKED_CHANNEL = keys.AGENTS_REVOKED


class AgentInputError(ValueError):
    """An account field that cannot be stored; the message names the field."""


@dataclass(frozen=True, slots=True)
class Agent:
    username: str
    name: str
    role: Role
    skills: tuple[str, ...]
    capacity: int
    # Changes with every save of the account; a token names the one it was issued for.
    generation: str = ""

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    def can_serve(self, queue: str) -> bool:
        return self.is_supervisor or queue in self.skills

    def public(self) -> dict[str, Any]:
        """The agent as the login response and the console show it."""
        return {
            "id": self.username,
            "name": self.name,
            "role": self.role,
            "skills": list(self.skills),
        }


def _key(username: str) -> str:
    return keys.agent(username)


def _agent(username: str, data: dict[str, str]) -> Agent:
    return Agent(
        username=username,
        name=data["name"],
        role=cast(Role, data.get("role", "agent")),
        skills=tuple(s for s in data.get("skills", "").split(",") if s),
        capacity=int(data.get("capacity", 3)),
        generation=data.get("generation", ""),
    )


class AgentDirectory:
    def __init__(self, redis: Redis, passwords: PasswordPool | None = None) -> None:
        self._redis: Any = redis
        self.passwords = passwords or PasswordPool(1)

    async def save(
        self,
        *,
        username: str,
        password: str,
        name: str,
        role: Role = "agent",
        skills: list[str] | tuple[str, ...] = (),
        capacity: int = 3,
    ) -> Agent:
        """Create or replace an account; its earlier tokens and open sockets stop working."""
        if not USERNAME.match(username):
            raise AgentInputError(
                "username: 2–64 characters, lower-case letters, digits, '.', '_' or '-'"
            )
        if len(password) < 10:
            raise AgentInputError("password: at least 10 characters")
        if not name.strip():
            raise AgentInputError("name: must not be empty")
        if role not in ROLES:
            raise AgentInputError(f"role: one of {', '.join(ROLES)}")
        bad = [s for s in skills if not SKILL.match(s)]
        if bad:
            raise AgentInputError(f"skills: invalid queue names {bad}")
        if not 1 <= capacity <= 20:
            raise AgentInputError("capacity: between 1 and 20 concurrent chats")
        generation = secrets.token_hex(8)
        hashed = await self.passwords.hash(password)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                _key(username),
                mapping={
                    "name": name.strip(),
                    "role": role,
                    "skills": ",".join(skills),
                    "capacity": capacity,
                    "password": hashed,
                    "generation": generation,
                    "updated_at": utc_now(),
                },
            )
            pipe.sadd(keys.AGENTS, username)
            pipe.publish(REVOKED_CHANNEL, username)
            await pipe.execute()
        return Agent(username, name.strip(), role, tuple(skills), capacity, generation)

    async def save_external(
        self, *, username: str, name: str, role: Role, skills: tuple[str, ...], subject: str
    ) -> Agent:
        """Write an account the identity provider vouches for (no password here).

        A local account of the same name is never taken over, nor one that came from another
        provider subject: otherwise a provider user could sign in as somebody else. The
        generation changes only when role, skills or name do, so signing in on a second
        machine does not end the first one's session, but a role taken away does.
        """
        key = _key(username)
        data = await self._redis.hgetall(key)
        if "password" in data or (data.get("subject") and data["subject"] != subject):
            raise AgentInputError("username: taken by another account")
        unchanged = data and (data.get("name"), data.get("role"), data.get("skills")) == (
            name, role, ",".join(skills)
        )  # fmt: skip
        generation = data["generation"] if unchanged and data.get("generation") else None
        capacity = int(data.get("capacity", 3))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "name": name, "role": role, "skills": ",".join(skills), "capacity": capacity,
                "subject": subject, "generation": generation or secrets.token_hex(8),
                "updated_at": utc_now(),
            })  # fmt: skip
            pipe.sadd(keys.AGENTS, username)
            if generation is None and data:
                pipe.publish(REVOKED_CHANNEL, username)
            await pipe.execute()
        return await self.get(username) or Agent(username, name, role, skills, capacity)

    async def revoke_tokens(self, username: str) -> bool:
        """Sign out everywhere: every token of the account stops working, its sockets close."""
        if not await self._redis.exists(_key(username)):
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(_key(username), "generation", secrets.token_hex(8))
            pipe.publish(REVOKED_CHANNEL, username)
            await pipe.execute()
        return True

    async def get(self, username: str) -> Agent | None:
        data = await self._redis.hgetall(_key(username))
        return _agent(username, data) if data else None

    async def verify(self, username: str, password: str) -> Agent | None:
        """The agent if the password is right; None otherwise (also for unknown users)."""
        data = await self._redis.hgetall(_key(username)) if USERNAME.match(username) else {}
        stored = data.get("password") if data else None
        # Unknown users cost a hash too (the pool verifies a dummy), so timing
        # does not reveal who exists.
        right, rehashed = await self.passwords.verify(stored, password)
        if not right:
            return None
        if rehashed is not None:
            await self._redis.hset(_key(username), "password", rehashed)
        return _agent(username, data)

    async def remove(self, username: str) -> bool:
        """Delete the account; its tokens and open sockets stop working on every replica."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(_key(username))
            pipe.srem(keys.AGENTS, username)
            pipe.publish(REVOKED_CHANNEL, username)
            removed, _, _ = await pipe.execute()
        return bool(removed)

    async def all(self) -> list[Agent]:
        usernames = sorted(await self._redis.smembers(keys.AGENTS))
        agents = [await self.get(username) for username in usernames]
        return [agent for agent in agents if agent is not None]


def _demo_password(data_dir: Path) -> str:
    secret_file = data_dir / "demo-agent-password"
    if secret_file.exists():
        return secret_file.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    secret_file.write_text(password + "\n")
    secret_file.chmod(0o600)
    return password


async def ensure_demo_agent(directory: AgentDirectory, username: str, data_dir: Path) -> str:
    """The demo account of `make run`, created once; returns its password.

    The password is random per installation and kept beside the embedded Redis,
    so a demo never ships a well-known login.
    """
    password = _demo_password(data_dir)
    if await directory.verify(username, password) is None:
        await directory.save(
            username=username, password=password, name="Alina Berger", role="supervisor",
            skills=("general", "buergerbuero", "bauamt", "kfz"), capacity=5,
        )  # fmt: skip
    return password
