"""With Rasa down, the citizen is told so in German and their message is kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.citizen_client import CitizenClient
from tests.services import Service, free_port, start_gateway


@pytest.fixture(scope="module")
def gateway_without_rasa(service_dir: Path, redis_url: str) -> Iterator[Service]:
    # Nothing listens on this port: every bot turn fails to connect.
    service = start_gateway(service_dir, "gateway-no-rasa", redis_url, free_port())
    yield service
    service.stop()


async def test_citizen_is_told_and_the_message_is_stored(gateway_without_rasa: Service) -> None:
    ws_url = f"ws://127.0.0.1:{gateway_without_rasa.port}/ws/chat"
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Hallo, ist da jemand?")
    ack = await citizen.until(lambda f: f["type"] == "ack")
    error = await citizen.until(lambda f: f["type"] == "error")
    assert error["code"] == "bot_unavailable"
    assert error["message"].startswith("Der digitale Assistent ist gerade nicht erreichbar")

    await citizen.close()
    again = await CitizenClient.open(ws_url, token=citizen.token)
    stored = await again.receive()
    assert (stored["seq"], stored["from"], stored["text"]) == (
        ack["seq"],
        "citizen",
        "Hallo, ist da jemand?",
    )
    await again.close()


def test_health_reports_the_bot_as_unavailable(gateway_without_rasa: Service) -> None:
    response = httpx.get(f"{gateway_without_rasa.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "redis": "ok", "rasa": "unavailable"}


async def test_english_speakers_are_told_in_english(gateway_without_rasa: Service) -> None:
    ws_url = f"ws://127.0.0.1:{gateway_without_rasa.port}/ws/chat"
    citizen = await CitizenClient.open(ws_url, lang="en")
    await citizen.say("Hello")
    error = await citizen.until(lambda f: f["type"] == "error")
    assert error["message"].startswith("The digital assistant is not available")
    await citizen.close()
