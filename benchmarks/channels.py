"""Messenger channels: webhook ingress under load, and an outbox draining after an outage.

One gateway process with the Telegram channel on; Telegram's Bot API answered by the
local server of the tests (tests/telegram_api.py). Figures:

- **ingress**: Telegram updates POSTed at `BENCH_CHANNEL_RATE` (200) per second for
  `BENCH_CHANNEL_SECONDS` (15 s), open loop (each at its planned time, whether or not
  the earlier ones were answered), from 300 chats, one in ten sent twice as Telegram
  retries: p50/p95/p99 of secret check + de-duplication + store + 200. No Rasa runs
  (its port is closed), so the figure is the gateway's ingress, not the bot's capacity
  (`make bench BENCH=capacity`). Afterwards: each update is stored exactly once.
- **outage**: Telegram answers 503 for 30 s while 1,000 replies to 100 chats are stored
  (as the bot and agents store them); then it recovers. Figures: seconds from recovery
  until every reply was taken, and the check that each was sent exactly once and, per
  chat, in the order stored.

Target (issue 13): ingress p95 at 200 requests/s, stated here; no loss or duplicate.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from benchmarks.latency import percentile
from handover.conversation.log import ConversationLog
from handover.conversation.protocol import message_event
from handover.ops.redis_connection import connect as connect_redis
from handover.settings import Settings
from tests.provider_apis import TelegramApi
from tests.services import free_port, start_gateway, start_redis

TOKEN = "999:bench-token"
SECRET = "bench-secret"
CHATS = 300
OUTAGE_S = 30.0
REPLIES = 1000
REPLY_CHATS = 100


def update(update_id: int, chat: int) -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 0, "text": f"Frage {update_id}",
        "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": False, "first_name": "B", "language_code": "de"},
    }}).encode()  # fmt: skip


async def ingress(url: str, rate: float, seconds: float) -> tuple[list[float], int, int]:
    """Latencies of every POST, how many failed, and how many distinct updates were sent."""
    total = int(rate * seconds)
    plan = [(i / rate, 10_000 + i, 7_000_000 + i % CHATS) for i in range(total)]
    rng = random.Random(13)
    plan += [(at + 0.2, uid, chat) for at, uid, chat in rng.sample(plan, total // 10)]
    plan.sort()
    latencies: list[float] = []
    failed = 0
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=200)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        start = time.perf_counter()

        async def one(at: float, uid: int, chat: int) -> None:
            nonlocal failed
            await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
            sent = time.perf_counter()
            response = await client.post(
                f"{url}/channels/telegram", content=update(uid, chat),
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET,
                         "Content-Type": "application/json"},
            )  # fmt: skip
            latencies.append((time.perf_counter() - sent) * 1000)
            failed += response.status_code != 200

        await asyncio.gather(*(one(*item) for item in plan))
    return latencies, failed, total


async def stored_citizen_messages(redis_url: str) -> tuple[int, int]:
    """(citizen messages stored in Telegram conversations, conversations)."""
    redis = connect_redis(Settings(redis_url=redis_url))
    log = ConversationLog(redis, 3600)
    messages = conversations = 0
    async for key in redis.scan_iter(match="bs:conv:{*}", count=1000):
        if key.count(":") != 2 or (await redis.hget(key, "channel")) != "telegram":
            continue
        conversations += 1
        events = await log.events_after(key[len("bs:conv:{") : -1], 0)
        messages += sum(1 for e in events if e.get("from") == "citizen")
    await redis.aclose()
    return messages, conversations


async def outage(redis_url: str, telegram: TelegramApi) -> dict[str, Any]:
    redis = connect_redis(Settings(redis_url=redis_url))
    log = ConversationLog(redis, 3600)
    telegram.down_for(OUTAGE_S)
    down_until = time.monotonic() + OUTAGE_S
    expected: dict[int, list[str]] = {}
    with ExitStack() as held:
        conversations = []
        for n in range(REPLY_CHATS):
            chat = 8_000_000 + n
            conversation = await log.start(channel="telegram", language="de")
            held.enter_context(log.hold(conversation, recipient=str(chat)))
            await log.append(conversation.id, message_event("citizen", "Hallo"), client_id="c")
            conversations.append((chat, conversation.id))
        for i in range(REPLIES):
            chat, conversation_id = conversations[i % REPLY_CHATS]
            text = f"Antwort {i}"
            await log.append(conversation_id, message_event("bot", text))
            expected.setdefault(chat, []).append(text)
    stored_by = time.monotonic()
    before = len(telegram.all_sent())
    await asyncio.sleep(max(0.0, down_until - time.monotonic()))
    recovered = time.monotonic()
    deadline = recovered + 300
    while time.monotonic() < deadline:
        got = [c for c in telegram.all_sent() if int(c.recipient) in expected]
        if len(got) >= REPLIES:
            break
        await asyncio.sleep(0.05)
    drained_s = time.monotonic() - recovered
    await asyncio.sleep(2.0)  # anything sent twice would show now
    got = [c for c in telegram.all_sent() if int(c.recipient) in expected]
    by_chat: dict[int, list[str]] = {}
    for call in got:
        by_chat.setdefault(int(call.recipient), []).append(call.text)
    await redis.aclose()
    return {
        "replies": REPLIES,
        "sent_during_outage": before,
        "stored_in_s": round(stored_by - (down_until - OUTAGE_S), 2),
        "refused_during_outage": len(telegram.refused),
        "drained_after_recovery_s": round(drained_s, 2),
        "sent": len(got),
        "lost": REPLIES - len({(c.recipient, c.text) for c in got}),
        "duplicates": len(got) - len({(c.recipient, c.text) for c in got}),
        "in_order": all(by_chat.get(chat) == texts for chat, texts in expected.items()),
    }


def run() -> dict[str, float]:
    rate = float(os.environ.get("BENCH_CHANNEL_RATE", "200"))
    seconds = float(os.environ.get("BENCH_CHANNEL_SECONDS", "15"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        redis_server = start_redis(tmp_path)
        telegram = TelegramApi(TOKEN).start()
        redis_url = f"redis://127.0.0.1:{redis_server.port}/0"
        gateway = start_gateway(tmp_path, "bench-channels", redis_url, free_port(), env={
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_URL": telegram.url, "OUTBOX_LEASE_S": "5", "LOG_LEVEL": "warning",
            "CITIZEN_MESSAGE_LIMITS": "1000/second",
        })  # fmt: skip
        try:
            latencies, failed, distinct = asyncio.run(ingress(gateway.url, rate, seconds))
            stored, conversations = asyncio.run(stored_citizen_messages(redis_url))
            drained = asyncio.run(outage(redis_url, telegram))
        finally:
            gateway.stop()
            telegram.stop()
            redis_server.stop()
    figures: dict[str, float] = {
        "ingress_rate_per_s": rate,
        "ingress_requests": len(latencies),
        "ingress_p50_ms": round(percentile(latencies, 50), 2),
        "ingress_p95_ms": round(percentile(latencies, 95), 2),
        "ingress_p99_ms": round(percentile(latencies, 99), 2),
        "ingress_failed": failed,
        "ingress_distinct_updates": distinct,
        "ingress_stored_once": stored,
        "ingress_conversations": conversations,
        **{f"outage_{name}": float(value) for name, value in drained.items()},
    }
    for name, value in figures.items():
        print(f"  {name}: {value}")
    return figures


if __name__ == "__main__":
    print(json.dumps(run()))
