"""The one way a messenger's citizen message enters the gateway.

Every webhook channel hands its verified, parsed messages here. A channel user (chat
id, phone number, …) has one open conversation until it is closed; the key that finds
it is named by a keyed hash of the user, never the identifier itself, and expires with
the conversation's retention. The provider's message id becomes the log's client id,
so a webhook the provider retries is stored once and answered once. After a conversation
closed, the citizen's rating (a CSAT choice, or a digit after the question) is kept for
it; anything else starts a new conversation.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import structlog

from handover import keys
from handover.channels.rendering import CSAT_PAYLOAD, choice_for, render
from handover.conversation.citizen_texts import citizen_text, language_of
from handover.conversation.log import Conversation, ConversationLog
from handover.conversation.protocol import MessageFrame, message_event
from handover.conversation.routing import Gateway
from handover.conversation.states import State
from handover.errors import ConversationClosed
from handover.ops import metrics
from handover.ops.rate_limit import Budgets
from handover.privacy.pseudonyms import Pseudonyms

log = structlog.get_logger(__name__)

_CSAT = re.compile(CSAT_PAYLOAD.replace("{score}", r"([1-5])"))
CLIENT_ID_CHARS = 64
# How far back a numbered answer looks for the choices it names.
RECENT_EVENTS = 10

# Point a channel user's key at a new conversation, unless another request did first.
# KEYS: the user's key. ARGV: the conversation it pointed at ('' for none), the new one,
# TTL. Returns the conversation the key now names.
_CLAIM = """
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return current end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return ARGV[2]
"""


@dataclass(frozen=True, slots=True)
class Inbound:
    """A citizen's message as a channel received it."""

    channel: str
    user: str  # the channel's address of the citizen: chat id, phone number, …
    message_id: str  # the provider's id of this message (retries repeat it)
    text: str = ""
    # A choice the citizen took: the start of the conversation id, the seq of the event
    # that offered it and the choice's index (channels/rendering.py).
    answers: tuple[str, int, int] | None = None
    language: str | None = None
    unsupported: bool = False  # a sticker, voice message, location, …
    # The channel shows choices as a numbered list: "2" (or a title) answers the latest.
    numbered_choices: bool = False
    # Meta fields the channel keeps for its replies (an e-mail thread and subject).
    facts: tuple[tuple[str, str], ...] = ()


class ChannelInbox:
    def __init__(
        self,
        gateway: Gateway,
        pseudonyms: Pseudonyms,
        budgets: Budgets,
        retention_s: int,
        max_text_chars: int,
    ) -> None:
        self.gateway = gateway
        self.log: ConversationLog = gateway.conversations
        self.pseudonyms = pseudonyms
        self.budgets = budgets
        self.retention_s = retention_s
        self.max_text_chars = max_text_chars
        self._claim = self.log.redis.register_script(_CLAIM)

    async def receive(self, inbound: Inbound) -> str:
        """Store the message and start what it asks for; what happened, for the log line."""
        user_key = keys.channel_user(
            inbound.channel, await self.pseudonyms.of(inbound.channel, inbound.user)
        )
        conversation_id = await self.log.redis.get(user_key)
        meta = await self.log.meta(conversation_id) if conversation_id else {}
        state = State.of_meta(meta)
        payload, text = await self._read(inbound, conversation_id)
        if not (payload or text.strip() or inbound.unsupported):
            return "ignored"  # a button of an earlier conversation's message
        if state is State.CLOSED and conversation_id:
            rated = await self._rating(conversation_id, meta, inbound, payload or text)
            if rated:
                return rated
        if state is None or state is State.CLOSED:
            conversation = await self._open(user_key, conversation_id or "", inbound)
        else:
            conversation = Conversation(conversation_id, "", state.wire, 0, inbound.channel,
                                        meta.get("language", "de"), stored=True)  # fmt: skip
        # When the citizen last wrote: some channels take free text only for a while after.
        facts = {**dict(inbound.facts), "citizen_at": str(int(time.time() * 1000))}
        if conversation.stored:
            await self.log.set_facts(conversation.id, facts)
        if inbound.numbered_choices and conversation.stored and not payload:
            payload, text = await self._numbered(conversation.id, text)
        with self.log.hold(conversation, recipient=inbound.user, facts=facts):
            outcome = await self._store(conversation, inbound, payload, text)
        await self.log.redis.set(user_key, conversation.id, ex=self.retention_s)
        return outcome

    async def receive_all(self, inbound: list[Inbound]) -> None:
        """Every message of one webhook delivery, in order (providers batch them)."""
        for message in inbound:
            metrics.CHANNEL_MESSAGES.labels(channel=message.channel, direction="in").inc()
            outcome = await self.receive(message)
            log.info("channel_message", channel=message.channel, outcome=outcome)

    async def _open(self, user_key: str, previous: str, inbound: Inbound) -> Conversation:
        """A new conversation for the user; or, if a request of theirs that came at the same
        time (on any replica) opened one first, that one (held here too, so whichever
        message is appended first stores it)."""
        language = language_of(inbound.language)
        conversation = await self.log.start(channel=inbound.channel, language=language)
        claim = [previous, conversation.id, self.retention_s]
        winner = str(await self._claim(keys=[user_key], args=claim))
        if winner == conversation.id:
            return conversation
        return Conversation(winner, "", "bot", 0, inbound.channel, language, stored=False)

    async def _read(self, inbound: Inbound, conversation_id: str | None) -> tuple[str, str]:
        """(payload, text): a choice taken becomes its payload, with its title as text."""
        if inbound.answers is None or not conversation_id:
            return "", inbound.text
        tag, seq, index = inbound.answers
        if not conversation_id.startswith(tag):
            return "", ""
        event = await self.log.event_at(conversation_id, seq)
        choices = render(event, "de").choices if event else []
        chosen = next((c for c in choices if c.index == index), None)
        return (chosen.payload, chosen.title) if chosen else ("", inbound.text)

    async def _numbered(self, conversation_id: str, text: str) -> tuple[str, str]:
        """A reply naming a choice of the bot's latest message with choices, if it does."""
        if len(text) > 40:
            return "", text  # a sentence, not a choice
        for event in await self.log.latest_events(conversation_id, RECENT_EVENTS):
            if event.get("from") == "citizen":
                continue
            choices = render(event, "de").choices
            if choices:
                chosen = choice_for(text, choices)
                return (chosen.payload, chosen.title) if chosen else ("", text)
            if event.get("type") == "message" and event.get("from") in ("bot", "agent"):
                return "", text
        return "", text

    async def _store(
        self, conversation: Conversation, inbound: Inbound, payload: str, text: str
    ) -> str:
        client_id = f"{inbound.channel}:{inbound.message_id}"[:CLIENT_ID_CHARS]
        if inbound.unsupported:
            # Told what the bot understands; a retry of the same update is told once.
            reply = message_event("bot", citizen_text("unsupported_message", conversation.language))
            appended = await self.gateway.timeline.record(
                conversation.id, reply, client_id=client_id
            )
            return "unsupported" if appended.stored else "duplicate"
        if len(text) > self.max_text_chars:
            too_long = message_event("bot", citizen_text("too_large", conversation.language))
            appended = await self.gateway.timeline.record(
                conversation.id, too_long, client_id=client_id
            )
            return "too_large" if appended.stored else "duplicate"
        if not await self.budgets.take("message", conversation.id):
            log.warning("channel_rate_limited", channel=inbound.channel,
                        conversation_id=conversation.id)  # fmt: skip
            return "rate_limited"
        frame = MessageFrame(
            type="message", client_id=client_id, text=text or None, payload=payload or None
        )
        try:
            appended = await self.gateway.accept_citizen_message(conversation, frame, _no_ack)
        except ConversationClosed:
            return "closed"  # closed between the look-up and the append: the next message opens
        return "stored" if appended.stored else "duplicate"

    async def _rating(
        self, conversation_id: str, meta: dict[str, str], inbound: Inbound, answer: str
    ) -> str | None:
        """A rating of the closed conversation, if that is what the message is."""
        matched = _CSAT.fullmatch(answer.strip())
        if matched:
            score = int(matched.group(1))
        else:
            last = await self.log.last_event(conversation_id)
            if last is None or last.get("type") != "csat_request":
                return None
            chosen = choice_for(answer, render(last, "de").choices)
            if chosen is None:
                return None
            score = chosen.index + 1
        client_id = f"{inbound.channel}:{inbound.message_id}"[:CLIENT_ID_CHARS]
        rating = message_event("citizen", str(score), client_id=client_id)
        appended = await self.gateway.timeline.record(conversation_id, rating, client_id=client_id)
        if not appended.stored:
            return "duplicate"
        await self.log.record_csat(conversation_id, score, None)
        thanks = message_event("bot", citizen_text("csat_thanks", meta.get("language", "de")))
        await self.gateway.timeline.record(conversation_id, thanks)
        return "rated"


def _no_ack(_seq: int) -> None:
    """Messengers have no acknowledgement frame: the provider got its 200 already."""
