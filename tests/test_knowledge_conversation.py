"""A service question through the real gateway, Rasa and action server gets a knowledge answer."""

from __future__ import annotations

import pytest

from tests.citizen_client import CitizenClient

pytestmark = pytest.mark.rasa


async def test_a_fee_question_gets_the_fee_passage_with_a_link_and_feedback_buttons(
    ws_url: str,
) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Was kostet ein Personalausweis?")
    answer = await citizen.bot_reply(timeout=60)
    assert "€" in answer["text"] and "Personalausweis" in answer["text"]
    assert answer["links"] == [{
        "title": "Personalausweis beantragen",
        "url": "https://www.musterstadt.example/dienstleistungen/personalausweis-beantragen",
    }]  # fmt: skip
    feedback = await citizen.bot_reply()
    assert feedback["text"] == "Hat Ihnen das geholfen?"
    assert [b["payload"] for b in feedback["buttons"]] == ["/affirm", "/deny"]
    await citizen.send({"type": "message", "client_id": "fb1", "payload": "/affirm"})
    thanks = await citizen.bot_reply()
    assert thanks["text"].startswith("Das freut mich")
    await citizen.close()


async def test_an_off_topic_question_gets_an_honest_no_answer(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Wer gewinnt die nächste Fußball-Weltmeisterschaft im Jahr 2030?")
    reply = await citizen.bot_reply(timeout=60)
    assert "links" not in reply or not reply["links"]
    await citizen.close()
