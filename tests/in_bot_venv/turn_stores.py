"""Run with the bot's Python (Rasa 3.6) and a Redis URL: the stores a turn awaits behave as
Rasa's own do, and the action endpoint's connections are reused.

tests/test_rasa_fast_paths.py runs this against the tests' Redis; it exits non-zero with
the first difference and prints "ok" last.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
import uuid

from aiohttp import web
from rasa.core.lock_store import LockError
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot import rasa_fast_paths
from bot.lock_store import RedisUrlLockStore
from bot.tracker_store import RedisUrlTrackerStore


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(what)


async def locks(url: str) -> None:
    store = RedisUrlLockStore(EndpointConfig(url=url, key_prefix="check:lock:"))
    conversation = uuid.uuid4().hex
    order: list[str] = []

    async def turn(name: str, hold_s: float) -> None:
        async with store.lock(conversation, wait_time_in_seconds=0.05):
            order.append(f"{name} in")
            # Rasa's synchronous reader sees the tickets in its own format meanwhile.
            lock = store.get_lock(conversation)
            check(lock is not None and lock.now_serving is not None, "lock unreadable by Rasa")
            await asyncio.sleep(hold_s)
            order.append(f"{name} out")

    first = asyncio.create_task(turn("a", 0.3))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(turn("b", 0.0))
    await asyncio.sleep(0.1)
    waiting = store.get_lock(conversation)
    check(waiting is not None and [t.number for t in waiting.tickets] == [0, 1],
          f"tickets while one waits: {waiting and waiting.dumps()}")  # fmt: skip
    await asyncio.gather(first, second)
    check(order == ["a in", "a out", "b in", "b out"], f"turns overlapped: {order}")
    check(store.get_lock(conversation) is None, "the lock outlived its last ticket")

    # An expired ticket (a Rasa killed mid-turn) does not hold the next turn up.
    async with store.lock(conversation, lock_lifetime=0.1):
        pass
    stale = RedisUrlLockStore(EndpointConfig(url=url, key_prefix="check:lock:"))
    stale.save_lock(stale.create_lock(conversation))
    lock = stale.get_or_create_lock(conversation)
    lock.issue_ticket(0.05)
    stale.save_lock(lock)
    await asyncio.sleep(0.1)
    started = time.monotonic()
    async with store.lock(conversation, wait_time_in_seconds=5):
        pass
    check(time.monotonic() - started < 1, "an expired ticket held the turn up")
    check(store.get_lock(conversation) is None, "the expired ticket was left behind")

    closed = RedisUrlLockStore(EndpointConfig(url=f"redis://127.0.0.1:{free_port()}/0"))
    try:
        async with closed.lock("x"):
            sys.exit("a lock without Redis")
    except LockError:
        pass


async def trackers(url: str) -> None:
    domain = Domain.empty()
    store = RedisUrlTrackerStore(domain, url=url, key_prefix="check:tracker:", record_exp=60)
    sender = uuid.uuid4().hex
    tracker = DialogueStateTracker.from_events(sender, [
        ActionExecuted("action_session_start"), SessionStarted(),
        ActionExecuted("action_listen"), UserUttered("erste Sitzung"),
        ActionExecuted("action_session_start"), SessionStarted(),
        ActionExecuted("action_listen"), UserUttered("zweite Sitzung"),
    ])  # fmt: skip
    await store.save(tracker)
    last = await store.retrieve(sender)
    full = await store.retrieve_full_tracker(sender)
    check(last is not None and last.latest_message.text == "zweite Sitzung", "last session")
    check(last is not None and full is not None and len(full.events) > len(last.events),
          "the full tracker has both sessions")  # fmt: skip
    check(await store.retrieve("nobody") is None, "an unknown sender has no tracker")
    check(store.key_prefix + sender in list(await store.keys()), "keys")


async def sessions() -> None:
    peers: set[int] = set()

    async def answer(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername")[1])
        return web.json_response({"events": [], "responses": []})

    app = web.Application()
    app.router.add_post("/webhook", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    endpoint = EndpointConfig(url=f"http://127.0.0.1:{port}/webhook", headers={"X-A": "1"})
    for _ in range(5):
        await endpoint.request(json={"next_action": "x"}, method="post")
    await runner.cleanup()
    check(len(peers) == 1, f"{len(peers)} connections for 5 calls")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def main(url: str) -> None:
    await locks(url)
    await trackers(url)
    await sessions()


if __name__ == "__main__":
    rasa_fast_paths.install()
    asyncio.run(main(sys.argv[1]))
    print("ok")
