"""The conversation log in Redis: the transcript of record.

One stream per conversation. A durable event's `seq` is its stream entry id
``0-<seq>``, so "everything after seq N" is one XRANGE and ids can never go
backwards. Appending is one Lua script that de-duplicates by the client's id,
allocates the next seq, writes the entry and refreshes the retention TTL
atomically; two gateway replicas appending to one conversation therefore
always agree on the order.

A conversation is stored only with its first durable event: `start` stores
nothing (the signed token carries what the first append needs), and the append
script creates the conversation when this process holds it as not yet stored
(`hold`). A socket that never speaks leaves no key behind.

Keys share the hash tag ``{<conversation id>}`` so a Redis Cluster keeps one
conversation on one shard.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import orjson
import structlog
from redis.asyncio import Redis

from handover import keys
from handover.conversation.protocol import ConversationState, utc_now
from handover.conversation.states import State
from handover.conversation.token import ConversationTokens, TokenClaims
from handover.ops import metrics

log = structlog.get_logger(__name__)
# How long an append's own WAIT lasts; a replica that is connected but slower than this
# (a busy machine) is then waited for up to WAIT_CONFIRM_MS more.
WAIT_MS = 200
WAIT_CONFIRM_MS = 2000
# How long appends stop waiting for replicas after the primary was found without them.
WAIT_PAUSE_S = 10.0

# KEYS: meta hash, log stream, client-id hash, replica set (conversation/bus.py).
# ARGV: client id ('' for none), event JSON, TTL seconds, the states in which to
# refuse the event ('|closed|queued|', '' for none; `leaving_message` is state
# `bot` with mode `ticket`, states.py), the host id of the appending process, '1'
# if the event is for the citizen to receive ('' if not), the number n of items
# that follow to create the conversation with if it does not exist (0: refuse
# instead), those n items (field/value pairs of the meta hash: channel, language,
# created_at), then field/value pairs to set on the meta hash in the same step (a
# state change).
# An event for the citizen of a conversation on a channel other than the web
# socket is also added to that channel's outbox stream ("<conversation id>|<seq>"),
# in the same step: a reply stored is a reply that will be sent (channels/outbox.py).
# Publishes "<seq>|<conversation id>|<event JSON>" to every other replica that
# holds a socket of the conversation; a conversation created here is announced
# as "<host id>|<conversation id>" on BORN_CHANNEL, so other replicas holding
# it unstored start listening (conversation/bus.py).
# Returns {status, seq, state before, mode, created}: status 1 stored, 0
# duplicate client id (seq is the earlier event's), -1 refused because of the
# state or because the conversation does not exist (never did, or expired) and
# was not to be created.
_APPEND_SCRIPT = keys.in_script(
    """
local state = redis.call('HGET', KEYS[1], 'state') or ''
local mode = redis.call('HGET', KEYS[1], 'mode') or ''
if ARGV[1] ~= '' then
  local existing = redis.call('HGET', KEYS[3], ARGV[1])
  if existing then return {0, tonumber(existing), state, mode, 0} end
end
local ncreate = tonumber(ARGV[7])
local created = 0
if state == '' and ncreate > 0 then
  redis.call('HSET', KEYS[1], 'state', 'bot', 'seq', 0, unpack(ARGV, 8, 7 + ncreate))
  state = 'bot'
  created = 1
end
local current = state
if state == 'bot' and mode == 'ticket' then current = 'leaving_message' end
if state == '' or (ARGV[4] ~= '' and string.find(ARGV[4], '|' .. current .. '|', 1, true)) then
  return {-1, 0, state, mode, 0}
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], '0-' .. seq, 'e', ARGV[2])
if #ARGV > 7 + ncreate then redis.call('HSET', KEYS[1], unpack(ARGV, 8 + ncreate)) end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[1], seq)
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local id = string.match(KEYS[1], '{(.-)}')
if ARGV[6] == '1' then
  -- 'web' is WebChannel.name: its socket delivers the event itself (the bus)
  local channel = redis.call('HGET', KEYS[1], 'channel') or 'web'
  if channel ~= 'web' then
    redis.call('XADD', $OUTBOX .. channel, '*', 'e', id .. '|' .. seq)
    redis.call('EXPIRE', $OUTBOX .. channel, ARGV[3])
  end
end
if created == 1 and ARGV[5] ~= '' then
  redis.call('SADD', KEYS[4], ARGV[5])
  redis.call('EXPIRE', KEYS[4], ARGV[3])
  redis.call('PUBLISH', $BORN, ARGV[5] .. '|' .. id)
end
local replicas = redis.call('SMEMBERS', KEYS[4])
if #replicas > 0 then
  local payload = seq .. '|' .. id .. '|' .. ARGV[2]
  for _, host in ipairs(replicas) do
    if host ~= ARGV[5] then redis.call('PUBLISH', $REPLICA .. host, payload) end
  end
end
return {1, seq, state, mode, created}
""",
    BORN=keys.CONVERSATIONS_BORN,
    REPLICA=keys.REPLICA_CHANNEL_PREFIX,
    OUTBOX=keys.OUTBOX_PREFIX,
)

# Sets the satisfaction rating only on a conversation that exists (a rating
# must not store a conversation that has no events), in a hash of its own that
# expires with CSAT_RETENTION_DAYS. KEYS: meta, csat. ARGV: TTL, field/value pairs.
_RATE_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], 'state') == 0 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""

# Where the append script announces a conversation it created (conversation/bus.py).
BORN_CHANNEL = keys.CONVERSATIONS_BORN

# KEYS: meta hash, NLU hash. ARGV: citizen seq, parse JSON, TTL seconds.
# Writes nothing for a conversation that does not exist (expired or erased).
_UNDERSTOOD_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

# KEYS: meta hash. ARGV: field/value pairs. Sets them only on a conversation that exists,
# so a late write never leaves a meta hash without its expiry behind (an erased one).
_FACTS_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# An append waiting for the next pipeline: conversation id, event, client id,
# state to refuse in, meta fields.
_AppendCall = tuple[
    str, Mapping[str, Any], str | None, State | frozenset[State] | None, Mapping[str, str] | None
]

# A replay page; a reconnecting client with a long history gets it in pages.
REPLAY_PAGE = 500


def for_citizen(event: Mapping[str, Any]) -> bool:
    """Whether the citizen receives the event: the bot's and agents' words, states, CSAT."""
    kind = event.get("type")
    if kind == "message":
        return event.get("from") in ("bot", "agent")
    return kind in ("state", "csat_request")


def _refused(states: State | frozenset[State] | None) -> str:
    """The append script's form of a set of states: '|a|b|' ('' for none)."""
    if states is None:
        return ""
    names = [State(states).value] if isinstance(states, str) else sorted(s.value for s in states)
    return "|" + "|".join(names) + "|"


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    token: str
    state: ConversationState
    seq: int
    channel: str
    language: str
    stored: bool = True  # False: no event yet, nothing of it in Redis


@dataclass(frozen=True, slots=True)
class Appended:
    seq: int  # for a duplicate, the seq of the event stored first; 0 when refused
    stored: bool  # False: a duplicate client id or a refused event; nothing was written
    state_before: ConversationState | None  # None: the conversation does not exist (any more)
    refused: bool = False
    mode: str = ""  # "ticket" while the gateway takes a message (states.LEAVING_MESSAGE)
    created: bool = False  # this event stored the conversation (its first event)

    @property
    def was(self) -> State | None:
        """The state the conversation was in when the event came (None: it did not exist)."""
        return State.of(self.state_before, self.mode)


@dataclass(slots=True)
class _Unstored:
    channel: str
    language: str
    recipient: str = ""  # the channel's address of the citizen (chat id, …); web: none
    facts: tuple[tuple[str, str], ...] = ()  # what else a channel keeps for its replies
    holders: int = 0
    stored: bool = False  # an append found or created it


class ConversationLog:
    """Conversations, their state and their durable events, in Redis."""

    def __init__(
        self,
        redis: Redis,
        retention_s: int,
        host_id: str = "",
        token_secret: str | None = None,
        *,
        nlu_retention_s: int | None = None,
        csat_retention_s: int | None = None,
        wait_replicas: int = 0,
    ) -> None:
        # Typed loosely: redis-py's stubs cannot know the client decodes to str.
        self._redis: Any = redis
        self.retention_s = retention_s
        # NLU data and ratings have retentions of their own (docs/data-protection.md),
        # never longer than the conversation's.
        self.nlu_retention_s = min(nlu_retention_s or retention_s, retention_s)
        self.csat_retention_s = min(csat_retention_s or retention_s, retention_s)
        self.host_id = host_id
        self.wait_replicas = wait_replicas
        self._wait_paused_until = 0.0
        self.tokens = ConversationTokens(redis, token_secret)
        self._append = redis.register_script(_APPEND_SCRIPT)
        self._rate = redis.register_script(_RATE_SCRIPT)
        self._understood = redis.register_script(_UNDERSTOOD_SCRIPT)
        self._facts = redis.register_script(_FACTS_SCRIPT)
        self._pending: list[tuple[_AppendCall, asyncio.Future[list[Any]]]] = []
        self._flushes: set[asyncio.Task[None]] = set()
        # Conversations this process holds open that may not be stored yet;
        # their first append creates them.
        self._unstored: dict[str, _Unstored] = {}

    @property
    def redis(self) -> Any:
        """The client, for data kept beside the log (Rasa's tracker, erasure.py)."""
        return self._redis

    async def start(self, *, channel: str, language: str) -> Conversation:
        """A new conversation; nothing is stored until its first event (`hold` it meanwhile)."""
        conversation_id = uuid.uuid4().hex
        token = await self.tokens.issue(TokenClaims(conversation_id, channel, language))
        return Conversation(conversation_id, token, "bot", 0, channel, language, stored=False)

    async def resume(self, token: str) -> Conversation | None:
        """The conversation a genuine token belongs to, stored or not; None for a forged one.

        A conversation whose events expired (or never came) is resumed as not
        yet stored, with the language the token was issued with.
        """
        claims = await self.tokens.read(token)
        if claims is None:
            return await self._resume_legacy(token)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.conversation(claims.conversation_id))
            pipe.exists(keys.erased(claims.conversation_id))
            meta, erased = await pipe.execute()
        if erased:
            return None
        if not meta.get("state"):
            return Conversation(
                claims.conversation_id, token, "bot", 0, claims.channel, claims.language,
                stored=False,
            )  # fmt: skip
        return self._conversation(claims.conversation_id, token, meta)

    async def _resume_legacy(self, token: str) -> Conversation | None:
        """Tokens issued before they were signed, until their conversations expire."""
        if "." in token:  # a signed token that failed its check
            return None
        conversation_id = await self._redis.get(keys.legacy_token(token))
        if conversation_id is None:
            return None
        meta = await self._redis.hgetall(keys.conversation(conversation_id))
        if not meta.get("state"):
            return None
        await self._redis.expire(keys.legacy_token(token), self.retention_s)
        return self._conversation(conversation_id, token, meta)

    @staticmethod
    def _conversation(conversation_id: str, token: str, meta: Mapping[str, str]) -> Conversation:
        return Conversation(
            id=conversation_id,
            token=token,
            state=cast(ConversationState, meta.get("state", "bot")),
            seq=int(meta.get("seq", 0)),
            channel=meta.get("channel", "web"),
            language=meta.get("language", "de"),
        )

    @contextmanager
    def hold(
        self,
        conversation: Conversation,
        recipient: str = "",
        facts: Mapping[str, str] | None = None,
    ) -> Iterator[None]:
        """While a socket is open on a conversation that may not be stored yet, its first
        durable event (whoever appends it in this process) creates it.

        `recipient` is where a messenger channel sends the citizen's replies (a chat id);
        it is stored with the conversation, so it expires and is erased with it, as are
        `facts` (meta fields a channel needs for its replies, e.g. an e-mail thread).
        """
        if conversation.stored:
            yield
            return
        held = self._unstored.setdefault(
            conversation.id,
            _Unstored(
                conversation.channel, conversation.language, recipient, tuple((facts or {}).items())
            ),
        )
        held.holders += 1
        try:
            yield
        finally:
            held.holders -= 1
            if held.holders == 0:
                del self._unstored[conversation.id]

    def is_unstored(self, conversation_id: str) -> bool:
        """Held here and, as far as this process knows, without any event yet."""
        held = self._unstored.get(conversation_id)
        return held is not None and not held.stored

    def _creation(self, conversation_id: str) -> list[str]:
        held = self._unstored.get(conversation_id)
        if held is None or held.stored:
            return ["0"]
        fields = ["channel", held.channel, "language", held.language, "created_at", utc_now()]
        if held.recipient:
            fields += ["recipient", held.recipient]
        fields += [item for pair in held.facts for item in pair]
        return [str(len(fields)), *fields]

    def _note_exists(self, conversation_id: str, reply: Any) -> None:
        held = self._unstored.get(conversation_id)
        if held is not None and not isinstance(reply, Exception) and reply[2]:
            held.stored = True

    def _append_call(
        self,
        conversation_id: str,
        event: Mapping[str, Any],
        client_id: str | None,
        refuse_in: State | frozenset[State] | None,
        meta: Mapping[str, str] | None,
        client: Any = None,
    ) -> Any:
        flat_meta = [item for pair in (meta or {}).items() for item in pair]
        return self._append(
            keys=[
                keys.conversation(conversation_id),
                keys.conversation_log(conversation_id),
                keys.conversation_clients(conversation_id),
                keys.conversation_replicas(conversation_id),
            ],
            args=[
                client_id or "",
                orjson.dumps(event).decode(),
                self.retention_s,
                _refused(refuse_in),
                self.host_id,
                "1" if for_citizen(event) else "",
                *self._creation(conversation_id),
                *flat_meta,
            ],
            client=client,
        )

    @staticmethod
    def _appended(reply: list[Any]) -> Appended:
        status, seq, state = int(reply[0]), int(reply[1]), reply[2] or None
        return Appended(
            seq=seq,
            stored=status == 1,
            state_before=cast(ConversationState | None, state),
            refused=status == -1,
            mode=reply[3] or "",
            created=int(reply[4]) == 1,
        )

    async def append(
        self,
        conversation_id: str,
        event: Mapping[str, Any],
        *,
        client_id: str | None = None,
        refuse_in: State | frozenset[State] | None = None,
        meta: Mapping[str, str] | None = None,
    ) -> Appended:
        """Store a durable event; with `client_id`, at most once per client id.

        With `refuse_in`, nothing is stored while the conversation is in that state
        (or one of those states); the check and the write are one atomic step. State
        changes come through `Timeline.change`, which refuses what a transition may not
        start from.
        """
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.append(((conversation_id, event, client_id, refuse_in, meta), future))
        if len(self._pending) == 1:
            # Appends made while this loop iteration runs share one pipeline.
            flush = asyncio.create_task(self._flush())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        return self._appended(await future)

    async def _flush(self) -> None:
        """Run the pending appends as one pipeline: one connection checkout, one write
        and one read for all of them. Each script call stays atomic and they run in
        the order they were made, so a conversation's events keep their order."""
        batch, self._pending = self._pending, []
        try:
            if len(batch) == 1 and not self._waits():
                replies: list[Any] = [await self._append_call(*batch[0][0])]
            else:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for (cid, event, client_id, refuse_in, meta), _ in batch:
                        # Awaiting a script call on a pipeline only queues it.
                        await self._append_call(cid, event, client_id, refuse_in, meta, pipe)
                    waited = self._wait_for_replicas(pipe)
                    replies = await pipe.execute(raise_on_error=False)
                await self._replicated(replies, waited)
        except Exception as exc:  # the whole round trip failed (Redis gone)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (call, future), reply in zip(batch, replies, strict=True):
            self._note_exists(call[0], reply)
            if future.done():  # the caller was cancelled; the event is stored anyway
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def append_bot_turn(
        self,
        conversation_id: str,
        citizen_seq: int,
        parse: Mapping[str, Any],
        events: list[dict[str, Any]],
    ) -> list[Appended]:
        """Keep what the bot understood of event `citizen_seq` and store its replies.

        One round trip for the whole turn: the bot's answer is on its way to the
        citizen a Redis round trip per message sooner.
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            # Only while the conversation exists: a turn that outlives its erasure
            # (docs/data-protection.md) must not write the NLU data back.
            await self._understood(
                keys=[keys.conversation(conversation_id), keys.conversation_nlu(conversation_id)],
                args=[str(citizen_seq), json.dumps(parse, ensure_ascii=False),
                      self.nlu_retention_s],
                client=pipe,
            )  # fmt: skip
            for event in events:
                # Awaiting a script call on a pipeline only queues it.
                await self._append_call(conversation_id, event, None, None, None, client=pipe)
            waited = self._wait_for_replicas(pipe)
            replies = await pipe.execute()
        await self._replicated(replies, waited)
        return [self._appended(reply) for reply in replies[1:]]

    def _waits(self) -> bool:
        return bool(self.wait_replicas) and time.monotonic() >= self._wait_paused_until

    def _wait_for_replicas(self, pipe: Any) -> bool:
        """With REDIS_WAIT_REPLICAS, the pipeline's last command waits until that many
        replicas have its writes (WAIT counts the writes of its own connection, which is
        the pipeline's), for at most WAIT_MS: then a failover loses no acknowledged event.

        When the replicas are missing (the old primary is gone after a failover), waiting
        is paused for WAIT_PAUSE_S, so every message does not pay WAIT_MS; the events are
        then as safe as the primary's append-only file."""
        if not self._waits():
            return False
        pipe.wait(self.wait_replicas, WAIT_MS)
        return True

    async def _replicated(self, replies: list[Any], waited: bool) -> None:
        """Take the WAIT's answer off `replies`; return only once the events are safe.

        Too few replicas within WAIT_MS has two causes. A replica that is connected but
        behind (both cores busy) is waited for: a marker write and a longer WAIT, which
        covers every earlier write because replication is one ordered stream; an
        acknowledgement before it catches up would be lost if the primary died now.
        A primary without its replicas (the old one is gone after a failover) is not
        waited for: that is counted, logged and pauses waiting for WAIT_PAUSE_S.
        """
        if not waited:
            return
        acknowledged = replies.pop()
        if not isinstance(acknowledged, int) or acknowledged >= self.wait_replicas:
            return
        if await self._replicas_online() >= self.wait_replicas and await self._caught_up():
            return
        metrics.REDIS_REPLICA_LAG.inc()
        self._wait_paused_until = time.monotonic() + WAIT_PAUSE_S
        log.warning("redis_not_replicated", replicas=acknowledged, wanted=self.wait_replicas,
                    paused_s=WAIT_PAUSE_S)  # fmt: skip

    async def _replicas_online(self) -> int:
        info = await self._redis.info("replication")
        return sum(
            1 for name, replica in info.items()
            if name.startswith("slave") and isinstance(replica, dict)
            and replica.get("state") == "online"
        )  # fmt: skip

    async def _caught_up(self) -> bool:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.REPLICATION_MARK, "1", ex=60)
            pipe.wait(self.wait_replicas, WAIT_CONFIRM_MS)
            _, acknowledged = await pipe.execute()
        return int(acknowledged) >= self.wait_replicas

    async def event_at(self, conversation_id: str, seq: int) -> dict[str, Any] | None:
        """The durable event `seq`, with its `seq` (None: gone with the conversation)."""
        entries = await self._redis.xrange(
            keys.conversation_log(conversation_id), min=f"0-{seq}", max=f"0-{seq}"
        )
        if not entries:
            return None
        return {**orjson.loads(entries[0][1]["e"]), "seq": seq}

    async def set_facts(self, conversation_id: str, facts: Mapping[str, str]) -> bool:
        """Meta fields a channel keeps for its replies; False if the conversation is gone."""
        if not facts:
            return True
        flat = [item for pair in facts.items() for item in pair]
        return bool(await self._facts(keys=[keys.conversation(conversation_id)], args=flat))

    async def last_event(self, conversation_id: str) -> dict[str, Any] | None:
        """The latest durable event, with its `seq` (None: no event, or gone)."""
        latest = await self.latest_events(conversation_id, 1)
        return latest[0] if latest else None

    async def latest_events(self, conversation_id: str, count: int) -> list[dict[str, Any]]:
        """The latest `count` durable events, newest first, each with its `seq`."""
        entries = await self._redis.xrevrange(keys.conversation_log(conversation_id), count=count)
        return [
            {**orjson.loads(fields["e"]), "seq": int(entry_id.split("-", 1)[1])}
            for entry_id, fields in entries
        ]

    async def events_after(self, conversation_id: str, after: int) -> list[dict[str, Any]]:
        """Every durable event with seq > `after`, in order, each with its `seq`."""
        events: list[dict[str, Any]] = []
        start = after + 1
        while True:
            page = await self._redis.xrange(
                keys.conversation_log(conversation_id), min=f"0-{start}", max="+", count=REPLAY_PAGE
            )
            for entry_id, fields in page:
                seq = int(entry_id.split("-", 1)[1])
                events.append({**orjson.loads(fields["e"]), "seq": seq})
                start = seq + 1
            if len(page) < REPLAY_PAGE:
                return events

    async def meta(self, conversation_id: str) -> dict[str, str]:
        """State, queue, agent and other facts about the conversation ({} if unknown)."""
        meta = await self._redis.hgetall(keys.conversation(conversation_id))
        return cast(dict[str, str], meta)

    async def last_citizen_text(self, conversation_id: str, lookback: int = 20) -> str:
        log_key = keys.conversation_log(conversation_id)
        entries = await self._redis.xrevrange(log_key, count=lookback)
        for _, fields in entries:
            event = orjson.loads(fields["e"])
            if event.get("type") == "message" and event.get("from") == "citizen":
                return str(event.get("text", ""))
        return ""

    async def state(self, conversation_id: str) -> State | None:
        state, mode = await self._redis.hmget(keys.conversation(conversation_id), "state", "mode")
        return State.of(state, mode)

    async def understanding(self, conversation_id: str) -> dict[int, dict[str, Any]]:
        raw = await self._redis.hgetall(keys.conversation_nlu(conversation_id))
        return {int(seq): json.loads(data) for seq, data in raw.items()}

    async def record_csat(self, conversation_id: str, score: int, comment: str | None) -> bool:
        """The citizen's satisfaction rating; a later rating replaces an earlier one.

        False (nothing stored) for a conversation without events. Kept in a hash of its
        own so it expires with CSAT_RETENTION_DAYS.
        """
        fields = ["csat_score", str(score), "csat_comment", comment or "", "csat_at", utc_now()]
        names = [keys.conversation(conversation_id), keys.conversation_csat(conversation_id)]
        return bool(await self._rate(keys=names, args=[self.csat_retention_s, *fields]))

    async def csat(self, conversation_id: str) -> dict[str, str]:
        """The rating the citizen gave ({} if none, or expired)."""
        rating = await self._redis.hgetall(keys.conversation_csat(conversation_id))
        return cast(dict[str, str], rating)
