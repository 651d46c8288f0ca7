"""Co-browsing sessions: stepped consent, who may watch, and the end (docs/protocol.md).

A session belongs to one conversation and its assigned agent. Each step (`view`: the
agent sees the page; `pointer`: the agent may point at and highlight elements) needs its
own request from the agent and a fresh yes from the citizen that names that request; a
yes to anything else (forged, replayed, for a request since replaced) is refused. Each
request, answer, page and the end is a durable `cobrowse` event in the conversation,
shown to both sides; what the page shows is relayed live (relay.py) and never stored.

The session hash (`bs:conv:{id}:cobrowse`) lives with the conversation's keys (erased
with them) and expires on its own when nobody renews it: a replica killed mid-session
leaves nothing that lets anyone watch later.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from handover import keys
from handover.agents.directory import Agent
from handover.conversation.protocol import utc_now
from handover.conversation.states import ACCEPT, POSITION, State, Transition
from handover.conversation.timeline import Timeline
from handover.errors import GatewayError

log = structlog.get_logger(__name__)

Step = Literal["view", "pointer"]
Side = Literal["citizen", "agent"]
# A session nobody renews (a socket's beat, a request) is gone after this.
SESSION_TTL_S = 120
# Every state but with_agent: a co-browse event is only stored while an agent holds it.
NOT_WITH_AGENT = frozenset(State) - {State.WITH_AGENT}
# Transitions that leave the assigned agent in place; every other one ends a session.
KEEPING = frozenset({ACCEPT, POSITION})

# Answer the pending request if `ARGV[1]` names it. KEYS: session. ARGV: request id, "1"
# for yes, TTL s. The step answered, or false.
_ANSWER = """
if redis.call('HGET', KEYS[1], 'pending') ~= ARGV[1] then return false end
local step = redis.call('HGET', KEYS[1], 'pending_step')
redis.call('HDEL', KEYS[1], 'pending', 'pending_step')
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], step, '1') end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return step
"""
# Renew a session that exists. KEYS: session. ARGV: field, now ms, TTL s. 1 or 0.
_BEAT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
# End the session if there is one. KEYS: session. The agent's name, or false.
_END = """
local name = redis.call('HGET', KEYS[1], 'agent_name')
if not name then return false end
redis.call('DEL', KEYS[1])
return name
"""


class CobrowseRefused(GatewayError):
    """A co-browse step the caller may not take (now)."""

    code = "cobrowse_refused"
    http_status = 403


@dataclass(frozen=True, slots=True)
class Session:
    agent: str
    agent_name: str
    view: bool
    pointer: bool
    path: str

    @classmethod
    def of(cls, fields: dict[str, str]) -> Session | None:
        if not fields.get("agent"):
            return None
        return cls(fields["agent"], fields.get("agent_name", ""), fields.get("view") == "1",
                   fields.get("pointer") == "1", fields.get("path", ""))  # fmt: skip


def _event(state: str, **fields: Any) -> dict[str, Any]:
    return {"type": "cobrowse", "state": state, "ts": utc_now(), **fields}


class CobrowseSessions:
    def __init__(self, redis: Redis, timeline: Timeline) -> None:
        self._redis: Any = redis
        self.timeline = timeline
        self._answer = redis.register_script(_ANSWER)
        self._end = redis.register_script(_END)
        self._beat = redis.register_script(_BEAT)

    async def session(self, conversation_id: str) -> Session | None:
        return Session.of(await self._redis.hgetall(keys.conversation_cobrowse(conversation_id)))

    async def request(self, agent: Agent, conversation_id: str, step: Step) -> str:
        """The assigned agent asks for `step`; the request's id, which the yes must name."""
        meta = await self.timeline.log.meta(conversation_id)
        if State.of_meta(meta) is not State.WITH_AGENT or meta.get("agent") != agent.username:
            raise CobrowseRefused("Dieses Gespräch ist Ihnen nicht zugewiesen.")
        if meta.get("channel", "web") != "web":
            raise CobrowseRefused("Bildschirm ansehen geht nur im Web-Chat des Portals.")
        current = await self.session(conversation_id)
        if current is not None and current.agent != agent.username:
            raise CobrowseRefused("Eine andere Person sieht diese Seite schon.")
        if step == "pointer" and not (current and current.view):
            raise CobrowseRefused("Zeigen setzt voraus, dass Sie die Seite sehen dürfen.")
        if current is not None and getattr(current, step):
            raise CobrowseRefused("Dieser Schritt ist schon erlaubt.")
        request_id = secrets.token_hex(12)
        key = keys.conversation_cobrowse(conversation_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"agent": agent.username, "agent_name": agent.name,
                                    "pending": request_id, "pending_step": step})  # fmt: skip
            pipe.expire(key, SESSION_TTL_S)
            await pipe.execute()
        appended = await self.timeline.record(
            conversation_id,
            _event("requested", step=step, request_id=request_id, agent={"name": agent.name}),
            refuse_in=NOT_WITH_AGENT,
        )
        if appended.refused:
            await self._redis.delete(key)
            raise CobrowseRefused("Dieses Gespräch ist Ihnen nicht mehr zugewiesen.")
        return request_id

    async def answer(self, conversation_id: str, request_id: str, accept: bool) -> Step:
        """The citizen's yes or no to the pending request it names; refused for any other."""
        step = await self._answer(
            keys=[keys.conversation_cobrowse(conversation_id)],
            args=[request_id, "1" if accept else "0", SESSION_TTL_S],
        )
        if not step:
            raise CobrowseRefused(
                "Diese Anfrage gilt nicht mehr. Die Mitarbeiterin oder der Mitarbeiter kann "
                "erneut fragen."
            )
        session = await self.session(conversation_id)
        if not accept and session is not None and not session.view:
            await self._redis.delete(keys.conversation_cobrowse(conversation_id))
        await self.timeline.record(
            conversation_id,
            _event("accepted" if accept else "declined", step=step, request_id=request_id),
            refuse_in=NOT_WITH_AGENT,
        )
        return step  # type: ignore[no-any-return]

    async def link(self, agent: Agent, conversation_id: str, path: str) -> None:
        """Offer the citizen a page of the portal; her widget opens it once she confirms."""
        await self._watching(agent, conversation_id)
        await self.timeline.record(
            conversation_id, _event("link", path=path, agent={"name": agent.name}),
            refuse_in=NOT_WITH_AGENT,
        )  # fmt: skip

    async def stop(self, agent: Agent, conversation_id: str) -> None:
        """The agent ends the session."""
        await self._watching(agent, conversation_id)
        await self.end(conversation_id, by="agent", reason="agent_ended")

    async def _watching(self, agent: Agent, conversation_id: str) -> Session:
        session = await self.session(conversation_id)
        if session is None or session.agent != agent.username or not session.view:
            raise CobrowseRefused("Sie sehen die Seite dieses Gesprächs nicht.")
        return session

    async def after_change(self, conversation_id: str, transition: Transition) -> None:
        """Whatever takes the conversation from its agent ends the session (a transfer, a
        hand-back, the close, the agent lost)."""
        if transition in KEEPING:
            return
        try:
            await self.end(conversation_id, by="system", reason=transition.name)
        except RedisError as exc:  # the transition happened; the session expires on its own
            log.warning("cobrowse_end_failed", conversation_id=conversation_id, error=repr(exc))

    async def saw_page(self, conversation_id: str, session: Session, path: str) -> None:
        """Record who saw which page when (the transcript's only trace of what was shown)."""
        if path == session.path:
            return
        await self._redis.hset(keys.conversation_cobrowse(conversation_id), "path", path)
        await self.timeline.record(
            conversation_id, _event("page", path=path, agent={"name": session.agent_name}),
            refuse_in=NOT_WITH_AGENT,
        )  # fmt: skip

    async def beat(self, conversation_id: str, side: Side) -> bool:
        """A side's socket is alive: renew the session; False if it has ended."""
        return bool(await self._beat(
            keys=[keys.conversation_cobrowse(conversation_id)],
            args=[f"{side}_seen", int(time.time() * 1000), SESSION_TTL_S],
        ))  # fmt: skip

    async def gone_since(self, conversation_id: str, side: Side) -> float | None:
        """Seconds since a side's socket last beat; None if the session ended."""
        seen = await self._redis.hget(keys.conversation_cobrowse(conversation_id), f"{side}_seen")
        if seen is None:
            return None if not await self.session(conversation_id) else float("inf")
        return time.time() - int(seen) / 1000

    async def end(self, conversation_id: str, by: str, reason: str) -> bool:
        """End the session, tell both sockets, record it; False if there was none."""
        name = await self._end(keys=[keys.conversation_cobrowse(conversation_id)])
        if not name:
            return False
        # Recorded first: whoever sees a socket close finds the end in the transcript.
        await self.timeline.record(
            conversation_id, _event("ended", by=by, reason=reason, agent={"name": name})
        )
        for channel in (keys.cobrowse_to_agent(conversation_id),
                        keys.cobrowse_to_citizen(conversation_id)):  # fmt: skip
            await self._redis.publish(channel, '{"type":"end"}')
        return True
