"""The human side of a conversation: handover, queues, accept, agent turns, hand-back, close.

Every state change is a transition of conversation/states.py, made through
`Timeline.change`: the meta hash and a durable event in the log are written in one
atomic append that is refused unless the conversation is in a state the transition
starts from, so the transcript tells the whole story and a race (the citizen ends
while an agent accepts) leaves no conversation in a state it cannot be in. While a
person has (or waits for) the conversation the Rasa tracker is paused and citizen
messages never reach the bot.

Who sees what: an agent sees the queues of their skills and the conversations
assigned to them; a supervisor sees every queue and every agent's load, and
may transfer any waiting or assigned conversation.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any

import structlog
from redis.asyncio import Redis

from handover import keys
from handover.agents.directory import Agent, AgentDirectory
from handover.agents.presence import Presence
from handover.agents.queues import HEAD, NORMAL, Accepted, Queues
from handover.agents.service_hours import ServiceHours
from handover.conversation import states
from handover.conversation.citizen_texts import citizen_text
from handover.conversation.log import Conversation
from handover.conversation.protocol import message_event, utc_now
from handover.conversation.states import State, Transition
from handover.conversation.timeline import Timeline
from handover.errors import (
    AlreadyTaken,
    AtCapacity,
    NotAssigned,
    NoTemplate,
    OutsideWindow,
    UnknownQueue,
)
from handover.ops import metrics
from handover.privacy.audit_log import AuditLog
from handover.rasa.client import HandoverRequest, RasaBot

if TYPE_CHECKING:
    from handover.cobrowse.sessions import CobrowseSessions

log = structlog.get_logger(__name__)

PREVIEW_CHARS = 120
# Before the first real wait in a queue is known, assume this per position.
DEFAULT_WAIT_S = 120.0
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?:\+|\b0)[\d /()-]{6,}\d")

# Why a conversation left an agent without their doing (the `unassigned` frame).
TRANSFERRED = "transferred"  # a supervisor moved it to a queue
REQUEUED = "requeued"  # the agent was away longer than the grace period
CITIZEN_ENDED = "citizen_ended"


def _now_ms() -> str:
    return str(_now())


def _now() -> int:
    return int(time.time() * 1000)


class AgentDesk:
    def __init__(
        self,
        redis: Redis,
        timeline: Timeline,
        queues: Queues,
        agents: AgentDirectory,
        presence: Presence,
        bot: RasaBot,
        hours: ServiceHours,
        default_queue: str,
        auto_assign: bool = False,
        ticket_retention_s: int | None = None,
    ) -> None:
        self.timeline = timeline
        self.queues = queues
        self.agents = agents
        self.presence = presence
        self.bot = bot
        self.hours = hours
        self.default_queue = default_queue
        self.auto_assign = auto_assign
        self.ticket_retention_s = ticket_retention_s or timeline.log.retention_s
        # Set by the app: records who read which conversation (audit_log.py).
        self.audit: AuditLog | None = None
        self.cobrowse: CobrowseSessions | None = None
        # Set by the app: channels that take free text only so long after the citizen's
        # last message (seconds), and the template message agents may send after it.
        self.reply_windows: dict[str, int] = {}
        self.template_text = ""
        self._redis: Any = redis
        # One auto-assignment pass at a time per process; a trigger during a pass
        # asks for one more. Across replicas the accept script keeps it safe.
        self._assigning = asyncio.Lock()
        self._assign_again = False

    # --- bot → queued ----------------------------------------------------------

    async def agents_for(self, queue: str) -> list[Agent]:
        online = [await self.agents.get(username) for username in await self.presence.online()]
        return [agent for agent in online if agent is not None and agent.can_serve(queue)]

    async def request_handover(self, conversation: Conversation, request: HandoverRequest) -> None:
        """Queue the conversation for a person, or offer to take a message if nobody is there."""
        await self.bot.pause(conversation.id)
        queue = request.queue or self.default_queue
        language = request.language if request.language in ("de", "en") else conversation.language
        facts = {"reason": request.reason, "queue": queue, "summary": request.summary,
                 "language": language}  # fmt: skip
        if not self.hours.open_at() or not await self.agents_for(queue):
            hours = self.hours.spec if not self.hours.always else "rund um die Uhr"
            text = citizen_text("no_agent", language, hours=hours)
            offer = message_event("bot", text)
            changed = await self.timeline.change(conversation.id, states.NOBODY_THERE, offer, facts)
            if changed.refused:
                _refused(conversation.id, states.NOBODY_THERE, changed.was)
                return
            log.info("handover_offline", conversation_id=conversation.id, queue=queue)
            return
        now_ms = int(time.time() * 1000)
        facts["queued_at"] = str(now_ms)
        # The queue entry goes in before the `queued` event (`_queue` says why): what the
        # agents' queue view shows of it (reason, queue, summary, language) is there first.
        # Harmless if the transition is refused: the conversation stays with the bot.
        await self.timeline.log.set_facts(conversation.id, {**facts, "queue": queue})
        if not await self._queue(
            conversation.id, states.HANDOVER, queue, request.reason, facts, since_ms=now_ms
        ):
            return
        log.info("handover_queued", conversation_id=conversation.id, queue=queue,
                 reason=request.reason)  # fmt: skip
        await self.timeline.bus.agents_changed()
        await self.assign_waiting()

    async def _queue(
        self,
        conversation_id: str,
        transition: Transition,
        queue: str,
        reason: str,
        facts: dict[str, str],
        *,
        band: int = NORMAL,
        since_ms: int | None = None,
    ) -> bool:
        """Into `queue` through `transition`, the citizen told their place; False if refused.

        The entry goes in first so the `queued` event can say the position; a refused
        transition takes it out again (unless it is the same conversation already waiting
        there: the queue keeps its first entry, so its place in line is not lost).
        """
        await self.queues.enqueue(queue, conversation_id, band=band, since_ms=since_ms)
        metrics.QUEUE_LENGTH.labels(queue=queue).set(await self.queues.length(queue))
        position = await self.queues.position(queue, conversation_id) or 1
        event = states.queued(reason, position, await self._eta_s(queue, position))
        changed = await self.timeline.change(
            conversation_id, transition, event, {**facts, "queue": queue}
        )
        if not changed.refused:
            return True
        meta = await self.timeline.log.meta(conversation_id)
        if not (changed.was is State.QUEUED and meta.get("queue") == queue):
            await self.queues.remove(queue, conversation_id)
        _refused(conversation_id, transition, changed.was)
        return False

    async def _eta_s(self, queue: str, position: int) -> int:
        typical = await self.queues.typical_wait_s(queue) or DEFAULT_WAIT_S
        agents = max(1, len(await self.agents_for(queue)))
        return round(typical * position / agents)

    async def announce_positions(self, queue: str) -> None:
        """Tell everyone still waiting in `queue` where they are now."""
        waiting = await self.queues.waiting(queue)
        metrics.QUEUE_LENGTH.labels(queue=queue).set(len(waiting))
        for position, (conversation_id, _) in enumerate(waiting, 1):
            event = states.queued("position", position, await self._eta_s(queue, position))
            await self.timeline.change(conversation_id, states.POSITION, event)

    # --- queued → with_agent ------------------------------------------------------

    async def accept(self, agent: Agent, conversation_id: str) -> None:
        """Give the conversation to the agent, atomically: of two accepting, one wins."""
        meta = await self.timeline.log.meta(conversation_id)
        queue = meta.get("queue", "")
        if State.of_meta(meta) is not State.QUEUED or not queue:
            raise AlreadyTaken("Dieses Gespräch wartet nicht (mehr) in einer Warteschlange.")
        if not agent.can_serve(queue):
            raise NotAssigned(f"Die Warteschlange {queue} gehört nicht zu Ihren Themen.")
        accepted = await self.queues.accept(
            queue, conversation_id, agent.username, agent.name, agent.capacity
        )
        if not accepted.won:
            if accepted.reason == "at_capacity":
                raise AtCapacity(f"Sie betreuen bereits {agent.capacity} Gespräche.")
            raise AlreadyTaken(
                "Eine Kollegin oder ein Kollege hat dieses Gespräch schon übernommen."
            )
        if not await self._joined(agent, conversation_id, queue, accepted):
            raise AlreadyTaken("Dieses Gespräch wurde inzwischen beendet.")

    async def _joined(
        self, agent: Agent, conversation_id: str, queue: str, accepted: Accepted
    ) -> bool:
        """After the accept script gave the conversation to `agent`: tell everyone.

        False when the conversation left the queue's state meanwhile (the citizen ended
        it): the agent lets go of it again.
        """
        changed = await self.timeline.change(
            conversation_id, states.ACCEPT, states.with_agent(agent.name)
        )
        if changed.refused:
            await self.queues.release(agent.username, conversation_id)
            _refused(conversation_id, states.ACCEPT, changed.was)
            await self.timeline.bus.agents_changed()
            return False
        log.info("handover_accepted", conversation_id=conversation_id, agent=agent.username,
                 waited_s=round(accepted.waited_s, 1), auto=self.auto_assign)  # fmt: skip
        metrics.QUEUE_WAIT_SECONDS.labels(queue=queue).observe(accepted.waited_s)
        await self.timeline.bus.agents_changed()
        await self.announce_positions(queue)
        return True

    # --- auto-assignment (AUTO_ASSIGN) -------------------------------------------------

    async def assign_waiting(self) -> int:
        """Give waiting conversations to available agents, if auto-assignment is on.

        Called whenever a conversation is queued and whenever an agent comes
        online or frees capacity. Returns how many were assigned by this call.
        """
        if not self.auto_assign:
            return 0
        if self._assigning.locked():
            self._assign_again = True  # the running pass goes round once more
            return 0
        assigned = 0
        async with self._assigning:
            self._assign_again = True
            while self._assign_again:
                self._assign_again = False
                assigned += await self._assign_pass()
        return assigned

    async def _assign_pass(self) -> int:
        """Each queue's next conversation to the least-busy online agent with its skill.

        Ties go to the agent whose load changed longest ago (idle longest). The
        choice is made from a snapshot; the accept script decides, so a stale
        snapshot costs a retry, never a double assignment or an agent over capacity.
        """
        online = [
            agent
            for agent in [await self.agents.get(u) for u in await self.presence.online()]
            if agent is not None and agent.skills
        ]
        if not online:
            return 0
        loads = await self.queues.loads([agent.username for agent in online])
        assigned = 0
        for queue in await self.queues.names():
            while (conversation_id := await self.queues.head(queue)) is not None:
                candidates = sorted(
                    (a for a in online
                     if queue in a.skills and loads[a.username][0] < a.capacity),
                    key=lambda a: loads[a.username],
                )  # fmt: skip
                if not candidates or not await self._assign_to_one(
                    candidates, queue, conversation_id, loads
                ):
                    break
                assigned += 1
        return assigned

    async def _assign_to_one(
        self,
        candidates: list[Agent],
        queue: str,
        conversation_id: str,
        loads: dict[str, tuple[int, int]],
    ) -> bool:
        """Try the candidates in order; False if none took it (or it is gone)."""
        meta = await self.timeline.log.meta(conversation_id)
        if State.of_meta(meta) is not State.QUEUED or meta.get("queue") != queue:
            log.warning("auto_assign_skipped", conversation_id=conversation_id, queue=queue)
            return False
        for agent in candidates:
            accepted = await self.queues.accept(
                queue, conversation_id, agent.username, agent.name, agent.capacity
            )
            if accepted.won:
                if not await self._joined(agent, conversation_id, queue, accepted):
                    self._assign_again = True  # it ended meanwhile: look at the queue again
                    return False
                loads[agent.username] = (loads[agent.username][0] + 1, int(time.time() * 1000))
                return True
            if accepted.reason != "at_capacity":
                return False  # taken meanwhile (another replica): look at the head again
            loads[agent.username] = (agent.capacity, loads[agent.username][1])
        return False

    async def assignment(self, conversation_id: str) -> dict[str, Any]:
        """The `assigned` frame: every event so far and what the agent needs to know."""
        log_ = self.timeline.log
        events, understanding, meta = await asyncio.gather(
            log_.events_after(conversation_id, 0),
            log_.understanding(conversation_id),
            log_.meta(conversation_id),
        )
        articles: list[dict[str, Any]] = []
        for event in events:
            if event.get("from") == "citizen" and event["seq"] in understanding:
                event["nlu"] = understanding[event["seq"]]
            articles.extend(event.get("links", []) if event.get("from") == "bot" else [])
        queued_at = int(meta.get("queued_at") or 0)
        assigned_at = int(meta.get("assigned_at") or 0)
        context = {
            "channel": meta.get("channel", "web"),
            "language": meta.get("language", "de"),
            "reason": meta.get("reason", ""),
            "queue": meta.get("queue", ""),
            **_transfer_fields(meta),
            "summary": meta.get("summary", ""),
            "waited_s": max(0, assigned_at - queued_at) // 1000 if queued_at else None,
            # Free text until then (WhatsApp's 24-hour window); after it, only the template.
            "reply_window_closes_ms": self.window_closes_ms(meta),
            "reply_window_s": self.reply_windows.get(meta.get("channel", "web")),
            "template": self.template_text if self.window_closes_ms(meta) is not None else "",
            "articles": articles,
            "slots": await self.bot.slots(conversation_id),
        }
        return {
            "type": "assigned",
            "conversation_id": conversation_id,
            "transcript": events,
            "context": context,
        }

    # --- with_agent: the agent's turns ------------------------------------------

    async def _assigned_meta(self, agent: Agent, conversation_id: str) -> dict[str, str]:
        meta = await self.timeline.log.meta(conversation_id)
        if State.of_meta(meta) is not State.WITH_AGENT or meta.get("agent") != agent.username:
            raise NotAssigned("Dieses Gespräch ist Ihnen nicht zugewiesen.")
        return meta

    async def message(self, agent: Agent, conversation_id: str, client_id: str, text: str) -> int:
        meta = await self._assigned_meta(agent, conversation_id)
        closes_ms = self.window_closes_ms(meta)
        if closes_ms is not None and closes_ms <= _now():
            raise OutsideWindow(
                "Die letzte Nachricht liegt über 24 Stunden zurück: WhatsApp stellt jetzt nur "
                "die freigegebene Vorlage zu."
            )
        event = {**message_event("agent", text), "agent": {"name": agent.name}}
        appended = await self.timeline.record(
            conversation_id, event, client_id=f"agent:{client_id}", refuse_in=State.CLOSED
        )
        return appended.seq

    def window_closes_ms(self, meta: dict[str, str]) -> int | None:
        """When the conversation's channel stops taking free text (ms); None: it never does."""
        window_s = self.reply_windows.get(meta.get("channel", "web"))
        if window_s is None:
            return None
        return int(meta.get("citizen_at") or meta.get("queued_at") or 0) + window_s * 1000

    async def template(self, agent: Agent, conversation_id: str, client_id: str) -> int:
        """The channel's approved template, for a channel whose reply window has closed."""
        meta = await self._assigned_meta(agent, conversation_id)
        if self.window_closes_ms(meta) is None or not self.template_text:
            raise NoTemplate("Für diesen Kanal ist keine Vorlage nötig oder eingerichtet.")
        event = {**message_event("agent", self.template_text), "agent": {"name": agent.name},
                 "template": True}  # fmt: skip
        appended = await self.timeline.record(
            conversation_id, event, client_id=f"agent:{client_id}", refuse_in=State.CLOSED
        )
        return appended.seq

    async def note(self, agent: Agent, conversation_id: str, text: str) -> None:
        """An internal note: in the transcript for colleagues, never shown to the citizen."""
        await self._assigned_meta(agent, conversation_id)
        note = {"type": "note", "ts": utc_now(), "internal": True, "from": "agent",
                "agent": {"name": agent.name}, "text": text}  # fmt: skip
        await self.timeline.record(conversation_id, note)

    async def typing(self, agent: Agent, conversation_id: str, active: bool) -> None:
        await self._assigned_meta(agent, conversation_id)
        await self.timeline.ephemeral(
            conversation_id, {"type": "typing", "from": "agent", "active": active}
        )

    async def transfer(self, agent: Agent, conversation_id: str, queue: str) -> None:
        """Put the conversation into `queue`: the agent's own, or, for a supervisor, any
        that waits or is with a colleague (who is told with `unassigned`)."""
        meta = await self.timeline.log.meta(conversation_id)
        state, holder = State.of_meta(meta), meta.get("agent", "")
        mine = state is State.WITH_AGENT and holder == agent.username
        if not mine and not (agent.is_supervisor and state in states.TRANSFER.sources):
            raise NotAssigned("Dieses Gespräch ist Ihnen nicht zugewiesen.")
        served = {skill for colleague in await self.agents.all() for skill in colleague.skills}
        if queue not in served | {self.default_queue}:
            raise UnknownQueue(f"Keine Kollegin und kein Kollege bearbeitet {queue!r}.")
        from_queue = meta.get("queue") or self.default_queue
        if state is State.QUEUED:
            moved = await self.queues.remove(from_queue, conversation_id)
        else:
            moved = await self.queues.release(holder, conversation_id, "" if mine else TRANSFERRED)
        if not moved:
            raise AlreadyTaken("Das Gespräch hat sich gerade geändert; bitte prüfen Sie es erneut.")
        transferred = {
            "agent": "", "queued_at": _now_ms(), "reason": "transfer",
            "transferred_from": from_queue,
            "original_reason": meta.get("original_reason") or meta.get("reason", ""),
        }  # fmt: skip
        if not await self._queue(conversation_id, states.TRANSFER, queue, "transfer", transferred):
            raise AlreadyTaken("Das Gespräch hat sich gerade geändert; bitte prüfen Sie es erneut.")
        log.info("handover_transferred", conversation_id=conversation_id, queue=queue,
                 from_queue=from_queue, by=agent.username)  # fmt: skip
        await self.timeline.bus.agents_changed()
        if state is State.QUEUED and from_queue != queue:
            await self.announce_positions(from_queue)
        await self.assign_waiting()

    async def hand_back(self, agent: Agent, conversation_id: str) -> None:
        await self._assigned_meta(agent, conversation_id)
        await self.queues.release(agent.username, conversation_id)
        changed = await self.timeline.change(
            conversation_id, states.HAND_BACK, states.back_to_bot(), {"agent": ""}
        )
        if changed.refused:  # the citizen ended it meanwhile: nothing to hand back
            _refused(conversation_id, states.HAND_BACK, changed.was)
        else:
            await self.bot.resume(conversation_id)
        await self.timeline.bus.agents_changed()
        await self.assign_waiting()

    async def close(self, agent: Agent, conversation_id: str) -> None:
        await self._assigned_meta(agent, conversation_id)
        await self.queues.release(agent.username, conversation_id)
        await self.close_conversation(conversation_id, "agent_closed")
        await self.timeline.bus.agents_changed()
        await self.assign_waiting()

    async def close_conversation(self, conversation_id: str, reason: str) -> bool:
        """Closed, then the satisfaction survey; False if it was closed already."""
        appended = await self.timeline.change(conversation_id, states.CLOSE, states.closed(reason))
        if appended.refused:
            return False
        await self.timeline.record(conversation_id, {"type": "csat_request", "ts": utc_now()})
        return True

    async def citizen_left(self, conversation_id: str) -> None:
        """The citizen ended the conversation: take it out of queues and agents' lists."""
        meta = await self.timeline.log.meta(conversation_id)
        state = State.of_meta(meta)
        if state is State.QUEUED and meta.get("queue"):
            await self.queues.remove(meta["queue"], conversation_id)
        freed = False
        if state is State.WITH_AGENT and meta.get("agent"):
            freed = await self.queues.release(meta["agent"], conversation_id, CITIZEN_ENDED)
        if await self.close_conversation(conversation_id, "citizen_ended"):
            await self.timeline.bus.agents_changed()
        if freed:
            await self.assign_waiting()

    # --- an agent drops out -----------------------------------------------------------

    async def requeue_if_gone(self, username: str) -> int:
        """After the grace period: an agent with no live socket loses their conversations
        to the head of their queues. Returns how many went back."""
        if await self.presence.is_online(username):
            return 0
        conversation_ids = await self.queues.assigned_to(username)
        for conversation_id in conversation_ids:
            meta = await self.timeline.log.meta(conversation_id)
            still_theirs = State.of_meta(meta) is State.WITH_AGENT and meta.get("agent") == username
            await self.queues.release(username, conversation_id, REQUEUED if still_theirs else "")
            if not still_theirs:
                continue
            queue = meta.get("queue") or self.default_queue
            language = meta.get("language", "de")
            since_ms = int(meta.get("queued_at") or _now_ms())
            await self.timeline.record(
                conversation_id, message_event("bot", citizen_text("agent_lost", language))
            )
            if not await self._queue(conversation_id, states.AGENT_LOST, queue,
                                     "agent_disconnected", {"agent": ""},
                                     band=HEAD, since_ms=since_ms):  # fmt: skip
                continue
            log.warning("handover_requeued", conversation_id=conversation_id, agent=username)
        if conversation_ids:
            await self.timeline.bus.agents_changed()
            await self.assign_waiting()
        return len(conversation_ids)

    # --- what agents see ------------------------------------------------------------------

    async def queue_items(self, agent: Agent) -> list[dict[str, Any]]:
        now_ms = int(time.time() * 1000)
        items = []
        for queue in await self.queues.names():
            if not agent.can_serve(queue):
                continue
            for conversation_id, since_ms in await self.queues.waiting(queue):
                meta = await self.timeline.log.meta(conversation_id)
                items.append({
                    "conversation_id": conversation_id,
                    "queue": queue,
                    "reason": meta.get("reason", ""),
                    **_transfer_fields(meta),
                    "waiting_s": max(0, now_ms - since_ms) // 1000,
                    "language": meta.get("language", "de"),
                    "channel": meta.get("channel", "web"),
                    "preview": await self._preview(conversation_id),
                    "summary": meta.get("summary", ""),
                })  # fmt: skip
        return items

    async def agents_overview(self) -> list[dict[str, Any]]:
        """Every agent account with presence and load: the supervisor's `agents` frame."""
        agents = await self.agents.all()
        online = set(await self.presence.online())
        held = await self.queues.assigned_to_each([agent.username for agent in agents])
        return [
            {**agent.public(), "online": agent.username in online,
             "load": len(held[agent.username]), "capacity": agent.capacity,
             "conversations": held[agent.username]}
            for agent in agents
        ]  # fmt: skip

    async def _preview(self, conversation_id: str) -> str:
        text = await self.timeline.log.last_citizen_text(conversation_id)
        return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"

    # --- tickets (no agent / after hours) -----------------------------------------------

    async def take_message(self, conversation: Conversation, text: str) -> None:
        """A citizen message while the service is away becomes a ticket once it has a contact."""
        meta = await self.timeline.log.meta(conversation.id)
        if State.of_meta(meta) is not State.LEAVING_MESSAGE:
            return  # an earlier message already completed the ticket
        collected = "\n".join(part for part in (meta.get("ticket_text", ""), text) if part)
        contact = EMAIL.search(collected) or PHONE.search(collected)
        if contact is None:
            await self.timeline.record(
                conversation.id,
                message_event("bot", citizen_text("ticket_needs_contact", conversation.language)),
                meta={"ticket_text": collected},
            )
            return
        number = await self._redis.incr(keys.TICKETS_COUNTER)
        ticket_id = f"T-{time.strftime('%Y')}-{number:06d}"
        ticket = {
            "id": ticket_id,
            "conversation_id": conversation.id,
            "queue": meta.get("queue") or self.default_queue,
            "reason": meta.get("reason", ""),
            "contact": contact.group(0),
            "text": collected,
            "language": conversation.language,
            "created_at": utc_now(),
            "status": "open",
        }
        retention = self.ticket_retention_s
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.ticket(ticket_id), mapping=ticket)
            pipe.expire(keys.ticket(ticket_id), retention)
            pipe.zadd(keys.TICKETS_OPEN, {ticket_id: time.time()})
            # The open list expires with the tickets it names (TICKET_RETENTION_DAYS).
            pipe.zremrangebyscore(keys.TICKETS_OPEN, 0, time.time() - retention)
            pipe.expire(keys.TICKETS_OPEN, retention)
            await pipe.execute()
        saved = citizen_text("ticket_saved", conversation.language, ticket=ticket_id)
        await self.timeline.record(
            conversation.id,
            message_event("bot", saved),
            meta={"ticket": ticket_id, "ticket_text": ""},
        )
        await self.close_conversation(conversation.id, "offline_message")
        log.info("ticket_created", conversation_id=conversation.id, ticket=ticket_id)
        await self.timeline.bus.agents_changed()

    async def open_tickets(self, agent: Agent) -> list[dict[str, str]]:
        tickets = []
        for ticket_id in await self._redis.zrange(keys.TICKETS_OPEN, 0, -1):
            ticket = await self._redis.hgetall(keys.ticket(ticket_id))
            if not ticket:  # expired with the retention period
                await self._redis.zrem(keys.TICKETS_OPEN, ticket_id)
            elif agent.can_serve(ticket.get("queue", self.default_queue)):
                tickets.append(ticket)
        return tickets


def _refused(conversation_id: str, transition: Transition, state: State | None) -> None:
    log.info("transition_refused", conversation_id=conversation_id,
             transition=transition.name, state=state.value if state else None)  # fmt: skip


def _transfer_fields(meta: dict[str, str]) -> dict[str, str]:
    """For a transferred conversation: the queue it came from and the original reason."""
    if meta.get("reason") != "transfer":
        return {}
    return {
        "transferred_from": meta.get("transferred_from", ""),
        "original_reason": meta.get("original_reason", ""),
    }
