"""The conversation log in Redis: the transcript of record.

One stream per conversation. A durable event's `seq` is its stream entry id
``0-<seq>``, so "everything after seq N" is one XRANGE and ids can never go
backwards. Appending is one Lua script that de-duplicates by the client's id,
allocates the next seq, writes the entry and refreshes the retention TTL
atomically; two gateway replicas appending to one conversation therefore
always agree on the order.

Keys share the hash tag ``{<conversation id>}`` so a Redis Cluster keeps one
conversation on one shard.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from handover.protocol import ConversationState, utc_now

# KEYS: meta hash, log stream, client-id hash, replica set (event_bus.py).
# ARGV: client id ('' for none), event JSON, TTL seconds, a state in which to
# refuse the event ('' for none), the host id of the appending process, then
# field/value pairs to set on the meta hash in the same step (a state change).
# Publishes "<seq>|<conversation id>|<event JSON>" to every other replica that
# holds a socket of the conversation.
# Returns {status, seq, state before, mode}: status 1 stored, 0 duplicate client
# id (seq is the earlier event's), -1 refused because of the state or because the
# conversation does not exist (never did, or expired).
_APPEND_SCRIPT = """
local state = redis.call('HGET', KEYS[1], 'state') or ''
local mode = redis.call('HGET', KEYS[1], 'mode') or ''
if ARGV[1] ~= '' then
  local existing = redis.call('HGET', KEYS[3], ARGV[1])
  if existing then return {0, tonumber(existing), state, mode} end
end
if state == '' or (ARGV[4] ~= '' and state == ARGV[4]) then return {-1, 0, state, mode} end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], '0-' .. seq, 'e', ARGV[2])
if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[1], seq)
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local replicas = redis.call('SMEMBERS', KEYS[4])
if #replicas > 0 then
  local payload = seq .. '|' .. string.match(KEYS[1], '{(.-)}') .. '|' .. ARGV[2]
  for _, host in ipairs(replicas) do
    if host ~= ARGV[5] then redis.call('PUBLISH', 'bs:replica:' .. host, payload) end
  end
end
return {1, seq, state, mode}
"""

# KEYS: meta hash, NLU hash. ARGV: citizen seq, parse JSON, TTL seconds.
# Writes nothing for a conversation that does not exist (expired or erased).
_UNDERSTOOD_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

# An append waiting for the next pipeline: conversation id, event, client id,
# state to refuse in, meta fields.
_AppendCall = tuple[
    str, Mapping[str, Any], str | None, ConversationState | None, Mapping[str, str] | None
]

# A replay page; a reconnecting client with a long history gets it in pages.
REPLAY_PAGE = 500


def _meta_key(conversation_id: str) -> str:
    return f"bs:conv:{{{conversation_id}}}"


def _log_key(conversation_id: str) -> str:
    return f"bs:conv:{{{conversation_id}}}:log"


def _clients_key(conversation_id: str) -> str:
    return f"bs:conv:{{{conversation_id}}}:clients"


def _nlu_key(conversation_id: str) -> str:
    return f"bs:conv:{{{conversation_id}}}:nlu"


def _csat_key(conversation_id: str) -> str:
    return f"bs:conv:{{{conversation_id}}}:csat"


def _token_key(token: str) -> str:
    # Only a hash of the token is stored: a copy of Redis does not hand out sessions.
    return "bs:token:" + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    token: str
    state: ConversationState
    seq: int
    channel: str
    language: str


@dataclass(frozen=True, slots=True)
class Appended:
    seq: int  # for a duplicate, the seq of the event stored first; 0 when refused
    stored: bool  # False: a duplicate client id or a refused event; nothing was written
    state_before: ConversationState | None  # None: the conversation does not exist (any more)
    refused: bool = False
    mode: str = ""  # a sub-state within `state_before`, e.g. "ticket" while taking a message


class ConversationLog:
    """Conversations, their state and their durable events, in Redis."""

    def __init__(
        self,
        redis: Redis,
        retention_s: int,
        host_id: str = "",
        *,
        nlu_retention_s: int | None = None,
        csat_retention_s: int | None = None,
    ) -> None:
        # Typed loosely: redis-py's stubs cannot know the client decodes to str.
        self._redis: Any = redis
        self.retention_s = retention_s
        # NLU data and ratings have retentions of their own (docs/data-protection.md),
        # never longer than the conversation's.
        self.nlu_retention_s = min(nlu_retention_s or retention_s, retention_s)
        self.csat_retention_s = min(csat_retention_s or retention_s, retention_s)
        self.host_id = host_id
        self._append = redis.register_script(_APPEND_SCRIPT)
        self._understood = redis.register_script(_UNDERSTOOD_SCRIPT)
        self._pending: list[tuple[_AppendCall, asyncio.Future[list[Any]]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    @property
    def redis(self) -> Any:
        """The client, for data kept beside the log (Rasa's tracker, erasure.py)."""
        return self._redis

    async def start(self, *, channel: str, language: str) -> Conversation:
        conversation_id = uuid.uuid4().hex
        token = secrets.token_urlsafe(24)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                _meta_key(conversation_id),
                mapping={
                    "state": "bot",
                    "seq": 0,
                    "channel": channel,
                    "language": language,
                    "created_at": utc_now(),
                },
            )
            pipe.expire(_meta_key(conversation_id), self.retention_s)
            pipe.set(_token_key(token), conversation_id, ex=self.retention_s)
            await pipe.execute()
        return Conversation(conversation_id, token, "bot", 0, channel, language)

    async def resume(self, token: str) -> Conversation | None:
        """The conversation a token belongs to, or None for unknown/expired tokens."""
        conversation_id = await self._redis.get(_token_key(token))
        if conversation_id is None:
            return None
        meta = await self._redis.hgetall(_meta_key(conversation_id))
        if not meta:
            return None
        await self._redis.expire(_token_key(token), self.retention_s)
        return Conversation(
            id=conversation_id,
            token=token,
            state=cast(ConversationState, meta.get("state", "bot")),
            seq=int(meta.get("seq", 0)),
            channel=meta.get("channel", "web"),
            language=meta.get("language", "de"),
        )

    def _append_call(
        self,
        conversation_id: str,
        event: Mapping[str, Any],
        client_id: str | None,
        refuse_in: ConversationState | None,
        meta: Mapping[str, str] | None,
        client: Any = None,
    ) -> Any:
        flat_meta = [item for pair in (meta or {}).items() for item in pair]
        return self._append(
            keys=[
                _meta_key(conversation_id),
                _log_key(conversation_id),
                _clients_key(conversation_id),
                f"bs:conv:{{{conversation_id}}}:replicas",
            ],
            args=[
                client_id or "",
                orjson.dumps(event).decode(),
                self.retention_s,
                refuse_in or "",
                self.host_id,
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
        )

    async def append(
        self,
        conversation_id: str,
        event: Mapping[str, Any],
        *,
        client_id: str | None = None,
        refuse_in: ConversationState | None = None,
        meta: Mapping[str, str] | None = None,
    ) -> Appended:
        """Store a durable event; with `client_id`, at most once per client id.

        With `refuse_in`, nothing is stored while the conversation is in that
        state; the check and the write are one atomic step.
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
            if len(batch) == 1:
                replies: list[Any] = [await self._append_call(*batch[0][0])]
            else:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for (cid, event, client_id, refuse_in, meta), _ in batch:
                        # Awaiting a script call on a pipeline only queues it.
                        await self._append_call(cid, event, client_id, refuse_in, meta, pipe)
                    replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the whole round trip failed (Redis gone)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
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
                keys=[_meta_key(conversation_id), _nlu_key(conversation_id)],
                args=[str(citizen_seq), json.dumps(parse, ensure_ascii=False),
                      self.nlu_retention_s],
                client=pipe,
            )  # fmt: skip
            for event in events:
                # Awaiting a script call on a pipeline only queues it.
                await self._append_call(conversation_id, event, None, None, None, client=pipe)
            replies = await pipe.execute()
        return [self._appended(reply) for reply in replies[1:]]

    async def events_after(self, conversation_id: str, after: int) -> list[dict[str, Any]]:
        """Every durable event with seq > `after`, in order, each with its `seq`."""
        events: list[dict[str, Any]] = []
        start = after + 1
        while True:
            page = await self._redis.xrange(
                _log_key(conversation_id), min=f"0-{start}", max="+", count=REPLAY_PAGE
            )
            for entry_id, fields in page:
                seq = int(entry_id.split("-", 1)[1])
                events.append({**orjson.loads(fields["e"]), "seq": seq})
                start = seq + 1
            if len(page) < REPLAY_PAGE:
                return events

    async def meta(self, conversation_id: str) -> dict[str, str]:
        """State, queue, agent and other facts about the conversation ({} if unknown)."""
        return cast(dict[str, str], await self._redis.hgetall(_meta_key(conversation_id)))

    async def last_citizen_text(self, conversation_id: str, lookback: int = 20) -> str:
        entries = await self._redis.xrevrange(_log_key(conversation_id), count=lookback)
        for _, fields in entries:
            event = orjson.loads(fields["e"])
            if event.get("type") == "message" and event.get("from") == "citizen":
                return str(event.get("text", ""))
        return ""

    async def state(self, conversation_id: str) -> ConversationState | None:
        state = await self._redis.hget(_meta_key(conversation_id), "state")
        return cast(ConversationState | None, state)

    async def understanding(self, conversation_id: str) -> dict[int, dict[str, Any]]:
        raw = await self._redis.hgetall(_nlu_key(conversation_id))
        return {int(seq): json.loads(data) for seq, data in raw.items()}

    async def record_csat(self, conversation_id: str, score: int, comment: str | None) -> None:
        """The citizen's satisfaction rating; a later rating replaces an earlier one.

        Kept in a hash of its own so it expires with CSAT_RETENTION_DAYS.
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                _csat_key(conversation_id),
                mapping={"csat_score": score, "csat_comment": comment or "", "csat_at": utc_now()},
            )
            pipe.expire(_csat_key(conversation_id), self.csat_retention_s)
            await pipe.execute()

    async def csat(self, conversation_id: str) -> dict[str, str]:
        """The rating the citizen gave ({} if none, or expired)."""
        return cast(dict[str, str], await self._redis.hgetall(_csat_key(conversation_id)))
