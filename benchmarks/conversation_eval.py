"""`make conversation-eval`: play conversations through the citizen socket and score every turn.

    python -m benchmarks.conversation_eval --conversations FILE [--source PATH] [--out FILE]

Starts the whole assistant as the benchmarks do (redis-server, action server, Rasa,
gateway) answering from `--source`, plays each conversation of FILE (the JSONL format of
../shared/eval/README.md) over a fresh citizen socket, one turn after the other, and
scores every turn. Prints a transcript summary, then one JSON object of figures as the
last stdout line; `--out` writes one JSON record per turn with the full reply.

Where a turn ends: the gateway stores and sends all bot messages of one Rasa turn
together and has no end-of-turn frame, so a turn's reply is complete when no frame has
arrived for a quiet period (`--quiet-ms`) after the first one. A turn in which the bot
says nothing (Rasa returned no message, e.g. a failing action) is recognised from Rasa's
tracker (`rasa_bot_done`: its latest message is this turn's) and ends a quiet period
later; `--turn-timeout` is the last resort. The quiet period only decides when the
next turn is sent: a frame that still comes late is given back to the turn it belongs
to by its `seq` (every durable event before the next citizen message's ack belongs to
an earlier turn).

Scoring (`score_turn`, a pure function of the turn and the frames of its reply): correct
when a link of the reply names an expected service and, if the turn has
`must_contain_any`, the reply's text contains one of them (case-insensitive; "Euro",
"EUR" and "€" alike, "20,00" like "20"); for `expected: []` correct when no link names
any service. Links name services by `/services/<id>` (DLDB) or by an article id as the
last path segment (Markdown articles), checked against the ids the source has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.exceptions import ConnectionClosed

from benchmarks.assistant import running_assistant
from benchmarks.latency import percentile
from handover.conversation.citizen_texts import citizen_text
from tests.citizen_client import CitizenClient
from tests.frame_socket import Frame
from tests.services import rasa_headers

ROOT = Path(__file__).resolve().parent.parent
MUNICH_DLDB = ROOT / ".." / "shared" / "data" / "muenchen-dldb" / "services_de.json"
KINDS = ("first", "facet", "switch", "out_of_scope")
FACETS = ("cost", "documents", "place", "online", "appointment", "duration")
# While a person has (or is about to have) the conversation, citizen turns get no bot reply.
AGENT_STATES = frozenset({"queued", "with_agent"})
HANDOVER_STATES = frozenset({"queued", "with_agent", "closed"})
# A Rasa turn's messages leave the gateway within milliseconds of each other; a handover
# after them takes a few Redis and Rasa round trips more. 0.6 s covers both on a busy
# 2-core machine, and a frame later than that is still given back to its turn by seq.
QUIET_S = 0.6
# The gateway gives up on Rasa after RASA_TIMEOUT_S (15 s) and says so (`bot_unavailable`).
TURN_TIMEOUT_S = 30.0
# A turn without a frame for this long asks Rasa whether it has finished it, then again
# every POLL_EVERY_S; nearly all turns answer sooner, so Rasa is rarely asked.
POLL_AFTER_S = 1.0
POLL_EVERY_S = 0.5
# The first turn after start loads Rasa's graphs and the action server's index.
WARM_UP_TIMEOUT_S = 180.0
WARM_UP_TEXT = "Was kostet ein Personalausweis?"
TEXT_COLUMNS = 60
REPLY_COLUMNS = 120
# Given the citizen message's seq: has the bot finished that turn?
BotDone = Callable[[int], Awaitable[bool]]


# --- the conversations ---------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    text: str
    expected: tuple[str, ...] = ()
    facet: str | None = None
    must_contain_any: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Turn:
        return cls(
            text=str(raw["text"]),
            expected=tuple(str(doc_id) for doc_id in raw.get("expected") or ()),
            facet=raw.get("facet") or None,
            must_contain_any=tuple(str(s) for s in raw.get("must_contain_any") or ()),
        )


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[Turn, ...]


def load_conversations(path: Path) -> list[Conversation]:
    """One conversation a JSONL line: `{"id", "turns": [{"text", "expected", …}]}`."""
    conversations = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        raw = json.loads(line)
        turns = tuple(Turn.from_json(turn) for turn in raw["turns"])
        conversations.append(Conversation(id=str(raw.get("id") or number), turns=turns))
    return conversations


def turn_kind(index: int, turn: Turn) -> str:
    """`out_of_scope` wherever it is; else `first`, then `facet` or `switch` (a new concern)."""
    if not turn.expected:
        return "out_of_scope"
    if index == 0:
        return "first"
    return "facet" if turn.facet else "switch"


def known_service_ids(source: Path) -> frozenset[str]:
    """The service ids of a DLDB services JSON, or the article ids of a Markdown folder."""
    if source.is_dir():
        return frozenset(p.stem for p in source.glob("*.md") if p.stem.lower() != "readme")
    catalogue = json.loads(source.read_text(encoding="utf-8"))
    services = catalogue.get("data", []) if isinstance(catalogue, dict) else catalogue
    return frozenset(str(service["id"]) for service in services if "id" in service)


# --- scoring -----------------------------------------------------------------------------

_DLDB_SERVICE = re.compile(r"/services/([^/?#]+)(?=$|[/?#])")
_CURRENCY = re.compile(r"\beuro\b|\beur\b|€")
_ZERO_CENTS = re.compile(r"(\d),00(?!\d)")
_SPACE = re.compile(r"\s+")
_NO_AGENT_PREFIXES = tuple(
    citizen_text("no_agent", language, hours="\0").split("\0")[0] for language in ("de", "en")
)


def service_ids_of(url: str, known: Iterable[str] | None = None) -> set[str]:
    """The services a link names: `/services/<id>` (DLDB) or else its last path segment.

    With `known` (the source's ids) only those count, so an office page or an external
    link never passes for a service.
    """
    ids = set(_DLDB_SERVICE.findall(url))
    if not ids:
        last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
        ids = {last.removesuffix(".html")} if last else set()
    return ids & set(known) if known is not None else ids


def normalise(text: str) -> str:
    """For `must_contain_any`: case-folded, one word for Euro/EUR/€, "20,00" read as "20"."""
    folded = unicodedata.normalize("NFC", text).casefold()
    folded = _ZERO_CENTS.sub(r"\1", folded)
    return _SPACE.sub(" ", _CURRENCY.sub(" euro ", folded)).strip()


def contains_any(text: str, needles: Iterable[str]) -> bool:
    haystack = normalise(text)
    return any(normalise(needle) in haystack for needle in needles)


def button_doc_id(payload: str) -> str | None:
    """The `knowledge_doc` of an `/ask_question{"knowledge_doc": …}` payload, else None."""
    intent, brace, entities = payload.partition("{")
    if intent.strip() != "/ask_question" or not brace:
        return None
    try:
        parsed = json.loads(brace + entities)
    except ValueError:
        return None
    doc_id = parsed.get("knowledge_doc") if isinstance(parsed, dict) else None
    return str(doc_id) if doc_id else None


def bot_messages(frames: Sequence[Frame]) -> list[Frame]:
    return [f for f in frames if f.get("type") == "message" and f.get("from") == "bot"]


def handover_of(frames: Sequence[Frame]) -> str | None:
    """`queued`/`with_agent`/`closed` from a state frame, `ticket` for the no-agent offer."""
    for frame in frames:
        if frame.get("type") == "state" and frame.get("state") in HANDOVER_STATES:
            return str(frame["state"])
        if frame.get("type") == "message" and str(frame.get("text", "")).startswith(
            _NO_AGENT_PREFIXES
        ):
            return "ticket"
    return None


@dataclass
class TurnRecord:
    """One scored turn; `reply` is the whole text the bot sent for it."""

    conversation: str
    index: int
    kind: str
    text: str
    facet: str | None
    expected: list[str]
    must_contain_any: list[str]
    correct: bool
    offered: bool
    wrong_service: bool
    answered_with_service: bool
    text_ok: bool | None
    service_ids: list[str]
    offered_ids: list[str]
    links: list[str]
    handover: str | None
    error: str | None
    reply: str
    latency_ms: float | None = None
    reply_span_ms: float | None = None
    timed_out: bool = False
    late_frames: int = 0


def score_turn(
    turn: Turn,
    frames: Sequence[Frame],
    *,
    kind: str = "first",
    known: Iterable[str] | None = None,
    conversation: str = "",
    index: int = 0,
) -> TurnRecord:
    """Score the reply `frames` (everything the gateway sent after the turn's ack)."""
    known_ids = set(known) if known is not None else None
    messages = bot_messages(frames)
    reply = "\n".join(str(m.get("text") or "") for m in messages if m.get("text"))
    links = [str(link.get("url", "")) for m in messages for link in m.get("links") or []]
    named: list[str] = []
    for url in links:
        named += sorted(service_ids_of(url, known_ids) - set(named))
    # A button for a service the reply links is a quick reply of that answer, no offer.
    offered_ids: list[str] = []
    for button in (b for m in messages for b in m.get("buttons") or []):
        doc_id = button_doc_id(str(button.get("payload", "")))
        if doc_id and doc_id not in named and doc_id not in offered_ids:
            offered_ids.append(doc_id)
    expected = set(turn.expected)
    hit = bool(expected & set(named))
    text_ok = contains_any(reply, turn.must_contain_any) if turn.must_contain_any else None
    correct = (hit and text_ok is not False) if expected else not named
    errors = [str(f.get("code")) for f in frames if f.get("type") == "error"]
    return TurnRecord(
        conversation=conversation,
        index=index,
        kind=kind,
        text=turn.text,
        facet=turn.facet,
        expected=list(turn.expected),
        must_contain_any=list(turn.must_contain_any),
        correct=correct,
        offered=bool(expected & set(offered_ids)),
        wrong_service=bool(expected) and bool(named) and not hit,
        answered_with_service=bool(named),
        text_ok=text_ok,
        service_ids=named,
        offered_ids=offered_ids,
        links=links,
        handover=handover_of(frames),
        error=errors[0] if errors else None,
        reply=reply,
    )


# --- playing a conversation -----------------------------------------------------------


@dataclass
class Exchange:
    """What one citizen turn got back, until the bot had finished it."""

    frames: list[Frame] = field(default_factory=list)
    ack_seq: int | None = None
    latency_ms: float | None = None
    timed_out: bool = False
    late_frames: int = 0
    # From the first frame of the reply to its last (how long a quiet period must be).
    span_ms: float | None = None


async def exchange(
    client: CitizenClient,
    text: str,
    *,
    expect_reply: bool = True,
    quiet_s: float = QUIET_S,
    timeout_s: float = TURN_TIMEOUT_S,
    bot_done: BotDone | None = None,
) -> tuple[Exchange, list[Frame]]:
    """Send `text`; return its reply and the frames that came late for earlier turns.

    The reply is every frame after the message's ack, until `quiet_s` passes without a
    frame once the first one came. A turn that brings no frame ends `quiet_s` after
    `bot_done(ack seq)` says the bot has finished it (or at once, when no bot reply is
    expected); without `bot_done` it times out after `timeout_s`.
    """
    result = Exchange()
    late: list[Frame] = []
    started = time.perf_counter()
    client_id = await client.say(text)
    quiet_from: float | None = None
    first_at: float | None = None
    next_poll = float("inf")
    while True:
        deadline = quiet_from + quiet_s if quiet_from is not None else started + timeout_s
        try:
            frame = await client.receive(
                timeout=max(min(deadline, next_poll) - time.perf_counter(), 0.001)
            )
        except TimeoutError:
            if quiet_from is not None or time.perf_counter() >= deadline:
                result.timed_out = quiet_from is None
                return result, late
            next_poll = time.perf_counter() + POLL_EVERY_S
            if bot_done is not None and result.ack_seq is not None:
                if await bot_done(result.ack_seq):
                    # Finished, perhaps without a message; any frames are on their way.
                    quiet_from, next_poll = time.perf_counter(), float("inf")
            continue
        kind, seq = frame.get("type"), frame.get("seq")
        if kind == "ack" and frame.get("client_id") == client_id:
            result.ack_seq = int(frame["seq"])
            if not expect_reply:
                quiet_from = time.perf_counter()
            elif bot_done is not None:
                next_poll = time.perf_counter() + POLL_AFTER_S
        elif kind == "error":
            result.frames.append(frame)  # refused (rate, size, closed) or bot unavailable
            return result, late
        elif result.ack_seq is None or (seq is not None and seq < result.ack_seq):
            if seq is not None and frame.get("from") != "citizen":
                late.append(frame)  # durable, and from before this turn: an earlier turn's
        elif kind in ("message", "state", "csat_request") and frame.get("from") != "citizen":
            result.frames.append(frame)
            now = time.perf_counter()
            if result.latency_ms is None and kind == "message":
                result.latency_ms = (now - started) * 1000
            first_at = first_at if first_at is not None else now
            result.span_ms = (now - first_at) * 1000
            quiet_from, next_poll = now, float("inf")


def rasa_bot_done(http: httpx.AsyncClient, rasa_url: str, conversation_id: str) -> BotDone:
    """Whether Rasa has finished the citizen message `seq` of `conversation_id`.

    The gateway sends each message to Rasa with `message_id` "<conversation id>:<seq>",
    and Rasa saves a tracker only once it has handled the whole message, so a tracker
    whose latest message has that id belongs to a finished turn; the gateway stores and
    sends the turn's messages right after. That ends turns the bot said nothing in (e.g.
    a failing action) without waiting for the timeout.
    """
    url = f"{rasa_url.rstrip('/')}/conversations/{conversation_id}/tracker"

    async def done(seq: int) -> bool:
        try:
            response = await http.get(
                url, params={"include_events": "NONE"}, headers=rasa_headers()
            )
            latest = response.json().get("latest_message") or {}
        except (httpx.HTTPError, ValueError, AttributeError):
            return False
        return bool(latest.get("message_id") == f"{conversation_id}:{seq}")

    return done


def state_after(frames: Iterable[Frame], state: str) -> str:
    for frame in frames:
        if frame.get("type") == "state":
            state = str(frame.get("state", state))
    return state


async def play_conversation(
    ws_url: str,
    conversation: Conversation,
    known: Iterable[str] | None = None,
    *,
    quiet_s: float = QUIET_S,
    timeout_s: float = TURN_TIMEOUT_S,
    rasa_url: str | None = None,
) -> list[TurnRecord]:
    """Every turn over one fresh citizen socket, scored; a handover does not stop the play.

    With `rasa_url` (the Rasa server behind the gateway) a turn the bot says nothing in
    ends as soon as Rasa has finished it, instead of after `timeout_s`.
    """
    async with httpx.AsyncClient(timeout=5.0) as http:
        client = await CitizenClient.open(ws_url)
        try:
            exchanges = await _play_turns(client, conversation, http, quiet_s, timeout_s, rasa_url)
        finally:
            await client.close()
    return [
        replace(
            score_turn(
                turn,
                done.frames,
                kind=turn_kind(i, turn),
                known=known,
                conversation=conversation.id,
                index=i,
            ),
            latency_ms=None if done.latency_ms is None else round(done.latency_ms, 1),
            reply_span_ms=None if done.span_ms is None else round(done.span_ms, 1),
            timed_out=done.timed_out,
            late_frames=done.late_frames,
        )
        for i, (turn, done) in enumerate(zip(conversation.turns, exchanges, strict=True))
    ]


async def _play_turns(
    client: CitizenClient,
    conversation: Conversation,
    http: httpx.AsyncClient,
    quiet_s: float,
    timeout_s: float,
    rasa_url: str | None,
) -> list[Exchange]:
    conversation_id = str(client.session.get("conversation_id", ""))
    bot_done = rasa_bot_done(http, rasa_url, conversation_id) if rasa_url else None
    state = str(client.session.get("state", "bot"))
    exchanges: list[Exchange] = []
    for turn in conversation.turns:
        try:
            done, late = await exchange(
                client,
                turn.text,
                expect_reply=state not in AGENT_STATES,
                quiet_s=quiet_s,
                timeout_s=timeout_s,
                bot_done=bot_done,
            )
        except ConnectionClosed:
            done, late = Exchange(frames=[{"type": "error", "code": "socket_closed"}]), []
        if exchanges:
            exchanges[-1].frames += late
            exchanges[-1].late_frames += len(late)
        exchanges.append(done)
        state = state_after([*late, *done.frames], state)
    return exchanges


async def play_all(
    ws_url: str,
    conversations: Sequence[Conversation],
    known: Iterable[str] | None = None,
    *,
    concurrency: int = 1,
    quiet_s: float = QUIET_S,
    timeout_s: float = TURN_TIMEOUT_S,
    rasa_url: str | None = None,
) -> list[list[TurnRecord]]:
    """Play the conversations, at most `concurrency` at a time; results in input order."""
    known_ids = frozenset(known) if known is not None else None
    slots = asyncio.Semaphore(max(1, concurrency))

    async def one(conversation: Conversation) -> list[TurnRecord]:
        async with slots:
            return await play_conversation(
                ws_url,
                conversation,
                known_ids,
                quiet_s=quiet_s,
                timeout_s=timeout_s,
                rasa_url=rasa_url,
            )

    return list(await asyncio.gather(*(one(c) for c in conversations)))


async def warm_up(ws_url: str, rasa_url: str | None = None) -> None:
    """One throw-away turn, so the first scored one does not pay for loading."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        client = await CitizenClient.open(ws_url)
        try:
            conversation_id = str(client.session.get("conversation_id", ""))
            bot_done = rasa_bot_done(http, rasa_url, conversation_id) if rasa_url else None
            await exchange(client, WARM_UP_TEXT, timeout_s=WARM_UP_TIMEOUT_S, bot_done=bot_done)
        finally:
            await client.close()


# --- figures and the transcript -----------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _tally(records: Sequence[TurnRecord]) -> dict[str, Any]:
    correct = sum(r.correct for r in records)
    return {"n": len(records), "correct": correct, "rate": _rate(correct, len(records))}


def figures(records: Sequence[TurnRecord]) -> dict[str, Any]:
    """The figures of the last stdout line (docs/knowledge.md, "Conversation eval")."""
    result: dict[str, Any] = {
        "n_conversations": len({r.conversation for r in records}),
        "n_turns": len(records),
    }
    for kind in KINDS:
        result[kind] = _tally([r for r in records if r.kind == kind])
    first = [r for r in records if r.kind == "first"]
    either = sum(r.correct or r.offered for r in first)
    result["first"]["correct_or_offered"] = either
    result["first"]["correct_or_offered_rate"] = _rate(either, len(first))
    follow_ups = [r for r in records if r.kind == "facet"]
    result["facets"] = {f: _tally([r for r in follow_ups if r.facet == f]) for f in FACETS}
    answerable = [r for r in records if r.expected]
    result["wrong_service_rate"] = _rate(sum(r.wrong_service for r in answerable), len(answerable))
    out_of_scope = [r for r in records if not r.expected]
    result["out_of_scope_answered_rate"] = _rate(
        sum(r.answered_with_service for r in out_of_scope), len(out_of_scope)
    )
    result["overall"] = _rate(sum(r.correct for r in records), len(records))
    result["handovers"] = len({r.conversation for r in records if r.handover})
    result["timeouts"] = sum(r.timed_out for r in records)
    latencies = [r.latency_ms for r in records if r.latency_ms is not None]
    result["latency_p50_ms"] = round(statistics.median(latencies), 1) if latencies else None
    result["latency_p95_ms"] = round(percentile(latencies, 95), 1) if latencies else None
    return result


def _short(text: str, limit: int) -> str:
    flat = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def transcript(conversation: Sequence[TurnRecord]) -> str:
    """A few lines a developer reads to see which turn went wrong, and how."""
    handovers = [r.handover for r in conversation if r.handover]
    head = conversation[0].conversation if conversation else "?"
    lines = [f"{head}" + (f"  (handed over: {handovers[0]})" if handovers else "")]
    for r in conversation:
        label = f"{r.kind}:{r.facet}" if r.kind == "facet" else r.kind
        notes = []
        if not r.correct:
            notes.append(f"want {r.expected or 'no service'}")
            if r.text_ok is False:
                notes.append(f"missing {' | '.join(r.must_contain_any)}")
        if r.offered:
            notes.append("offered")
        if r.error or r.timed_out:
            notes.append(r.error or "timed out")
        ids = ",".join(r.service_ids) or "-"
        lines.append(
            f"  {r.index + 1} {label:<18} {'✔' if r.correct else '✘'} [{ids}] "
            f"{_short(r.text, TEXT_COLUMNS)}" + (f"  ({'; '.join(notes)})" if notes else "")
        )
        lines.append(f"      → {_short(r.reply, REPLY_COLUMNS) or '(no reply)'}")
    return "\n".join(lines)


def write_records(path: Path, records: Iterable[TurnRecord]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")


# --- the command ---------------------------------------------------------------------------


def default_source() -> Path:
    return MUNICH_DLDB.resolve() if MUNICH_DLDB.exists() else ROOT / "data" / "knowledge"


def index_missing(source: Path) -> str | None:
    """Why the assistant could not answer from `source` (no index built), or None."""
    from handover.settings import get_settings
    from knowledge_index.store import CURRENT, index_root

    if (index_root(get_settings().knowledge_dir, source) / CURRENT).exists():
        return None
    return (
        f"No knowledge index for {source}; build it first: "
        f".venv/bin/python -m knowledge_index build --source {source}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.conversation_eval",
        description="Play conversations through the citizen socket and score every turn.",
    )
    parser.add_argument("--conversations", type=Path, required=True, help="JSONL conversations")
    parser.add_argument(
        "--source",
        type=Path,
        default=default_source(),
        help="DLDB services JSON or folder of articles the bot answers from "
        "(default: the Munich catalogue beside the project, else data/knowledge)",
    )
    parser.add_argument("--out", type=Path, help="write one JSON record per turn here (JSONL)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="conversations played at once (default 1: realistic latency)",
    )
    parser.add_argument(
        "--quiet-ms",
        type=float,
        default=QUIET_S * 1000,
        help="a turn's reply is complete after this long without a frame",
    )
    parser.add_argument(
        "--turn-timeout",
        type=float,
        default=TURN_TIMEOUT_S,
        help="seconds to wait for the first frame of a reply",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    source = args.source.resolve()
    conversations = load_conversations(args.conversations)
    if (problem := index_missing(source)) is not None:
        print(problem, file=sys.stderr)
        return 2
    known = known_service_ids(source)
    n_turns = sum(len(c.turns) for c in conversations)
    print(f"Starting the assistant on {source} …", file=sys.stderr, flush=True)
    with running_assistant("conversation-eval-", env={"KNOWLEDGE_SOURCE": str(source)}) as stack:
        assert stack.gateway is not None
        ws_url = f"ws://127.0.0.1:{stack.gateway.port}/ws/chat"
        asyncio.run(warm_up(ws_url, stack.rasa.url))
        print(
            f"Playing {len(conversations)} conversations ({n_turns} turns) …",
            file=sys.stderr,
            flush=True,
        )
        started = time.perf_counter()
        played = asyncio.run(
            play_all(
                ws_url,
                conversations,
                known,
                concurrency=args.concurrency,
                quiet_s=args.quiet_ms / 1000,
                timeout_s=args.turn_timeout,
                rasa_url=stack.rasa.url,
            )
        )
        seconds = time.perf_counter() - started
    for conversation in played:
        print(transcript(conversation))
    records = [record for conversation in played for record in conversation]
    if args.out:
        write_records(args.out, records)
    result = figures(records) | {"seconds": round(seconds, 1)}
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
