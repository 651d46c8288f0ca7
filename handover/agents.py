"""Agent accounts: who may take over conversations, with which skills and capacity.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106's
recommendation). Accounts live in Redis, so every gateway replica and the
admin command see the same directory.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis

from handover.protocol import utc_now

Role = Literal["agent", "supervisor"]
ROLES: tuple[Role, ...] = ("agent", "supervisor")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
SKILL = re.compile(r"^[a-z0-9_-]{1,32}$")

_hasher = PasswordHasher()


class AgentInputError(ValueError):
    """An account field that cannot be stored; the message names the field."""


@dataclass(frozen=True, slots=True)
class Agent:
    username: str
    name: str
    role: Role
    skills: tuple[str, ...]
    capacity: int

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
    return f"bs:agent:{username}"


def _agent(username: str, data: dict[str, str]) -> Agent:
    return Agent(
        username=username,
        name=data["name"],
        role=cast(Role, data.get("role", "agent")),
        skills=tuple(s for s in data.get("skills", "").split(",") if s),
        capacity=int(data.get("capacity", 3)),
    )


class AgentDirectory:
    def __init__(self, redis: Redis) -> None:
        self._redis: Any = redis

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
        """Create or replace an account."""
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
        await self._redis.hset(
            _key(username),
            mapping={
                "name": name.strip(),
                "role": role,
                "skills": ",".join(skills),
                "capacity": capacity,
                "password": _hasher.hash(password),
                "updated_at": utc_now(),
            },
        )
        await self._redis.sadd("bs:agents", username)
        return Agent(username, name.strip(), role, tuple(skills), capacity)

    async def save_external(
        self, *, username: str, name: str, role: Role, skills: tuple[str, ...], subject: str
    ) -> Agent:
        """Write an account the identity provider vouches for (no password here).

        An existing local account of the same name is taken over only if it came from the
        same provider subject; otherwise a provider user could sign in as a local agent.
        """
        key = _key(username)
        known = await self._redis.hget(key, "subject")
        if await self._redis.hexists(key, "password") or (known and known != subject):
            raise AgentInputError("username: taken by another account")
        capacity = int(await self._redis.hget(key, "capacity") or 3)
        await self._redis.hset(
            key,
            mapping={
                "name": name,
                "role": role,
                "skills": ",".join(skills),
                "capacity": capacity,
                "subject": subject,
                "updated_at": utc_now(),
            },
        )
        await self._redis.sadd("bs:agents", username)
        return Agent(username, name, role, skills, capacity)

    async def get(self, username: str) -> Agent | None:
        data = await self._redis.hgetall(_key(username))
        return _agent(username, data) if data else None

    async def verify(self, username: str, password: str) -> Agent | None:
        """The agent if the password is right; None otherwise (also for unknown users)."""
        data = await self._redis.hgetall(_key(username)) if USERNAME.match(username) else {}
        stored = data.get("password") if data else None
        try:
            # Unknown users cost a hash too, so timing does not reveal who exists.
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if stored is None:
            return None
        if _hasher.check_needs_rehash(stored):
            await self._redis.hset(_key(username), "password", _hasher.hash(password))
        return _agent(username, data)

    async def remove(self, username: str) -> bool:
        removed = await self._redis.delete(_key(username))
        await self._redis.srem("bs:agents", username)
        return bool(removed)

    async def all(self) -> list[Agent]:
        usernames = sorted(await self._redis.smembers("bs:agents"))
        agents = [await self.get(username) for username in usernames]
        return [agent for agent in agents if agent is not None]


_DUMMY_HASH = _hasher.hash("not a password of anyone")


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
