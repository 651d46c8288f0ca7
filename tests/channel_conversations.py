"""What every messenger channel's tests do alike: find a user's conversation as an agent
would (by the address it is sent to), and play the forms through the channel."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from handover import keys

CASE_NUMBER = re.compile(r"MM-\d{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")


async def conversation_of(redis: Redis, recipient: int | str) -> str:
    """The newest conversation whose replies go to `recipient` (chat id, phone, address)."""
    found = []
    async for key in redis.scan_iter(match=keys.conversation("*"), count=1000):
        if key.count(":") != 2:
            continue  # the conversation's log, clients, … share the prefix
        meta = await redis.hgetall(key)
        if meta.get("recipient") == str(recipient):
            found.append((meta.get("created_at", ""), key[len("bs:conv:{") : -1]))
    if not found:
        raise AssertionError(f"no conversation for {recipient}")
    return max(found)[1]


async def report_damage_and_ask_its_status(
    say: Callable[[str], Awaitable[object]], heard: Callable[[str], Awaitable[str]]
) -> str:
    """The damage report form, then the status look-up of its case, through one channel.

    `say` sends the citizen's text; `heard(words)` waits for the bot's reply that
    contains `words` and returns it. The case number, read from the channel.
    """
    steps = [
        ("Ich möchte ein Schlagloch melden", "Wo genau"),
        ("Goethestraße 12, vor der Bäckerei", "Beschreiben"),
        ("Ein tiefes Loch, etwa 30 cm breit, Radfahrer müssen ausweichen", "E-Mail"),
        ("lena.meyer@example.org", "Vorgangsnummer"),
    ]
    reply = ""
    for text, expected in steps:
        await say(text)
        reply = await heard(expected)
    number = CASE_NUMBER.search(reply)
    assert number is not None, reply
    await say(f"Wie ist der Stand meiner Meldung {number.group(0)}?")
    await heard("Postleitzahl")
    await say("lena.meyer@example.org")
    await heard("ist eingegangen")
    return number.group(0)
