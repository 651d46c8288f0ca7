"""The bot's custom `gateway` input channel, called directly on the Rasa server."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.services import Service, rasa_headers

pytestmark = pytest.mark.rasa


def webhook(rasa: Service) -> str:
    return f"{rasa.url}/webhooks/gateway/webhook"


def test_one_round_trip_returns_messages_and_parse_data(rasa_server: Service) -> None:
    sender = uuid.uuid4().hex
    response = httpx.post(
        webhook(rasa_server), headers=rasa_headers(),
        json={"sender": sender, "message": "Guten Morgen", "message_id": f"{sender}:1",
              "metadata": {"channel": "web", "language": "de"}},
        timeout=30,
    )  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert body["messages"][0]["text"].startswith("Guten Tag!")
    assert body["messages"][0]["recipient_id"] == sender
    assert body["parse"]["intent"]["name"] == "greet"
    assert 0.5 < body["parse"]["intent"]["confidence"] <= 1.0
    assert len(body["parse"]["intent_ranking"]) <= 5


def test_the_parse_data_belongs_to_the_message_id(rasa_server: Service) -> None:
    sender = uuid.uuid4().hex
    for seq, text in enumerate(["Hallo", "Danke schön"], start=1):
        body = httpx.post(
            webhook(rasa_server),
            headers=rasa_headers(),
            json={"sender": sender, "message": text, "message_id": f"{sender}:{seq}"},
            timeout=30,
        ).json()
    assert body["parse"]["intent"]["name"] == "thank"


def test_gibberish_falls_back_and_asks_to_rephrase(rasa_server: Service) -> None:
    sender = uuid.uuid4().hex
    body = httpx.post(
        webhook(rasa_server),
        headers=rasa_headers(),
        json={"sender": sender, "message": "qwxz plmk vbnt"},
        timeout=30,
    ).json()
    assert body["parse"]["intent"]["name"] == "nlu_fallback"
    assert "anders formulieren" in body["messages"][0]["text"]


@pytest.mark.parametrize(
    "body",
    [
        {"message": "Hallo"},
        {"sender": "s", "message": 42},
        {"sender": "s", "message": "x", "metadata": []},
    ],
)
def test_malformed_requests_get_400(rasa_server: Service, body: dict[str, object]) -> None:
    response = httpx.post(webhook(rasa_server), headers=rasa_headers(), json=body, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
