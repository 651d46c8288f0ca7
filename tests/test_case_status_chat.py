"""Status look-ups through the chat count per client address, like the case API's own.

The real path: citizen socket → gateway → Rasa (the client key in the message
metadata) → action server → the gateway's case API, which counts the failure
under the citizen's client key. A new conversation does not reset the count, a
direct API call from the same address shares it, and Rasa's tracker holds the
keyed hash, never the address.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator

import httpx
import pytest
import redis

from handover.cases.numbers import new_case_number
from handover.settings import Settings
from tests.citizen_client import CitizenClient
from tests.services import Service, rasa_headers

pytestmark = pytest.mark.rasa

BOT_TURN_S = 60.0
LOOKUPS_PER_CONVERSATION = 3  # six messages: within a socket's burst of eight


def bot_says(pattern: str) -> object:
    return lambda f: (
        f.get("type") == "message"
        and f.get("from") == "bot"
        and re.search(pattern, f.get("text", ""))
    )


@pytest.fixture
def no_lookup_counters(store: redis.Redis) -> Iterator[None]:
    """All tests share 127.0.0.1: start from no failures and leave none behind."""

    def clear() -> None:
        for key in store.scan_iter(match="bs:case-lookups:*"):
            store.delete(key)

    clear()
    yield
    clear()


async def fail_lookup(citizen: CitizenClient, answer: str = "keine Meldung gefunden") -> None:
    await citizen.say(f"Wie ist der Stand von {new_case_number(1999)}?")
    await citizen.until(bot_says("E-Mail-Adresse oder Postleitzahl"), BOT_TURN_S)
    await citizen.say("80331")
    await citizen.until(bot_says(answer), BOT_TURN_S)


async def test_chat_lookups_count_per_address_across_conversations_and_the_api(
    ws_url: str, gateway: Service, rasa_server: Service, store: redis.Redis,
    no_lookup_counters: None,
) -> None:  # fmt: skip
    budget = Settings().case_lookup_max_failures  # the session gateway's
    failed = 0
    conversations = []
    while failed < budget:
        citizen = await CitizenClient.open(ws_url)
        conversations.append(str(citizen.session["conversation_id"]))
        for _ in range(min(LOOKUPS_PER_CONVERSATION, budget - failed)):
            await fail_lookup(citizen)
            failed += 1
        await citizen.close()
    # A fresh conversation from the same address gets no fresh budget...
    citizen = await CitizenClient.open(ws_url)
    await fail_lookup(citizen, "zu viele erfolglose Abfragen")
    await citizen.close()
    # ...and neither does the case API called directly from it.
    async with httpx.AsyncClient(timeout=10) as http:
        direct = await http.post(
            f"{gateway.url}/api/cases/lookup",
            json={"case_number": new_case_number(1999), "postal_code": "80331"},
        )
        assert direct.status_code == 429
        tracker = await http.get(
            f"{rasa_server.url}/conversations/{conversations[0]}/tracker", headers=rasa_headers()
        )

    # Rasa's tracker keeps the keyed hash the look-ups were counted under, not the address.
    secret = str(store.get("bs:secret:client-keys")).encode()
    key = hmac.new(secret, b"127.0.0.1", hashlib.sha256).hexdigest()[:32]
    assert tracker.status_code == 200, tracker.text
    assert tracker.json()["latest_message"]["metadata"]["client_key"] == key
    assert "127.0.0.1" not in tracker.text
