"""The assistant's dialogue end to end: real gateway, Redis, Rasa model and action server.

Advisor, damage report with a case from the gateway's case API, status look-up,
the fallback chain and the handover decisions (reason and queue reach the gateway).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from handover.settings import Settings
from tests.agent_client import AgentClient
from tests.citizen_client import CitizenClient
from tests.frame_socket import Frame
from tests.services import Service
from tests.test_handover import PASSWORD, add_agent

pytestmark = pytest.mark.rasa

BOT_TURN_S = 60.0


def bot_says(pattern: str) -> object:
    """A predicate: a bot message whose text matches `pattern` (a regex)."""
    return lambda f: (
        f.get("type") == "message"
        and f.get("from") == "bot"
        and re.search(pattern, f.get("text", ""))
    )


def queued(frame: Frame) -> bool:
    return frame.get("type") == "state" and frame.get("state") == "queued"


async def leave(citizen: CitizenClient) -> None:
    """End the conversation, so it waits in no queue the other modules count positions in."""
    await citizen.send({"type": "end"})
    await citizen.until(lambda f: f.get("type") == "state" and f.get("state") == "closed")
    await citizen.close()


@pytest.fixture(scope="module")
def advisors(redis_url: str) -> None:
    done = add_agent(redis_url, "bea", "Bea Hofmann", "--skills", "bauamt,general",
                     "--capacity", "20")  # fmt: skip
    assert done.returncode == 0 or "exists" in done.stderr, done.stderr


@pytest.fixture
async def bea(gateway: Service, advisors: None) -> AsyncIterator[AgentClient]:
    """An agent of the building authority online, so handovers are queued, not tickets."""
    agent = await AgentClient.open(gateway.url, "bea", PASSWORD)
    yield agent
    await agent.close()


async def test_lena_gets_the_answer_names_her_listed_building_and_is_handed_to_the_bauamt(
    ws_url: str, bea: AgentClient
) -> None:
    lena = await CitizenClient.open(ws_url)
    await lena.say("Brauche ich eine Genehmigung für die Solarmodule auf meinem Dach?")
    answer = await lena.until(lambda f: bool(f.get("links")), BOT_TURN_S)
    assert "Photovoltaik" in answer["links"][0]["title"]
    assert "verfahrensfrei" in answer["text"]
    # The roof was in her question; the advisor asks what it does not know yet.
    await lena.until(bot_says("Gebäude"), BOT_TURN_S)

    await lena.say("Es ist ein altes Bauernhaus und steht unter Denkmalschutz")
    advice = await lena.until(bot_says("Weil Ihr Gebäude ein Baudenkmal ist"), BOT_TURN_S)
    assert advice["links"][0]["url"].endswith("/denkmalrechtliche-erlaubnis")
    offer = await lena.until(bot_says("verbinde"), BOT_TURN_S)
    assert [b["payload"] for b in offer["buttons"]] == ["/affirm", "/deny"]

    await lena.say("Ja, gerne")
    why = await lena.until(bot_says("Bauamt|Bauberatung"), BOT_TURN_S)
    assert "Chatverlauf wird übergeben" in why["text"]
    state = await lena.until(queued, BOT_TURN_S)
    assert state["reason"] == "listed_building"
    item = await bea.queue_with(lena.session["conversation_id"])
    assert item["queue"] == "bauamt"
    assert item["reason"] == "listed_building"
    await leave(lena)


async def test_a_damage_report_gets_a_case_number_and_its_status_can_be_looked_up(
    ws_url: str,
) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Ich möchte ein Schlagloch melden")
    await citizen.until(bot_says("Wo genau"), BOT_TURN_S)
    await citizen.say("Goethestraße 12, vor der Bäckerei")
    await citizen.until(bot_says("Beschreiben"), BOT_TURN_S)
    await citizen.say("Ein tiefes Loch, etwa 30 cm breit, Radfahrer müssen ausweichen")
    await citizen.until(bot_says("E-Mail"), BOT_TURN_S)
    await citizen.say("lena.meyer at example")
    await citizen.until(bot_says("nicht wie eine E-Mail"), BOT_TURN_S)
    await citizen.say("lena.meyer@example.org")
    done = await citizen.until(bot_says("Vorgangsnummer"), BOT_TURN_S)
    number = re.search(r"MM-\d{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", done["text"])
    assert number is not None, done["text"]
    assert "Schlagloch" in done["text"] and "Goethestraße 12" in done["text"], done["text"]
    await citizen.close()

    # Days later, in a new conversation (and within the socket's burst of 8 messages).
    citizen = await CitizenClient.open(ws_url)
    await citizen.say(f"Wie ist der Stand meiner Meldung {number.group(0)}?")
    await citizen.until(bot_says("E-Mail-Adresse oder Postleitzahl"), BOT_TURN_S)
    await citizen.say("lena.meyer@example.org")
    status = await citizen.until(bot_says("ist eingegangen"), BOT_TURN_S)
    assert number.group(0) in status["text"] and "Verlauf" in status["text"]

    # A wrong pair reveals nothing about the number.
    await citizen.say(f"Status von {number.group(0)}")
    await citizen.until(bot_says("E-Mail-Adresse oder Postleitzahl"), BOT_TURN_S)
    await citizen.say("jemand.anders@example.org")
    await citizen.until(bot_says("keine Meldung gefunden"), BOT_TURN_S)
    await citizen.close()


async def test_an_invalid_case_number_gets_a_clear_re_prompt(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Ich möchte den Status meiner Meldung abfragen")
    await citizen.until(bot_says("Vorgangsnummer"), BOT_TURN_S)
    await citizen.say("MM-12")
    hint = await citizen.until(bot_says(r"Format MM-2026-7K3Q-9XHG \("), BOT_TURN_S)
    assert "zweimal vier Zeichen" in hint["text"]
    # A new concern in a sentence leaves the form instead of being taken for a number.
    await citizen.say("Was kostet eigentlich ein neuer Reisepass?")
    answer = await citizen.until(lambda f: bool(f.get("links")), BOT_TURN_S)
    assert "Reisepass" in answer["links"][0]["title"]
    await citizen.close()


async def test_a_question_about_another_matter_or_a_no_is_no_place_of_a_damage_report(
    ws_url: str,
) -> None:
    # Any text answers "Wo genau ist das?"; a question about something else does not.
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Ich möchte ein Schlagloch melden")
    await citizen.until(bot_says("Wo genau"), BOT_TURN_S)
    await citizen.say("Was kostet eigentlich ein neuer Reisepass?")
    answer = await citizen.until(lambda f: bool(f.get("links")), BOT_TURN_S)
    assert "Reisepass" in answer["links"][0]["title"]
    # The report starts again at its place: the question was not kept as one.
    await citizen.say("Ich möchte ein Schlagloch melden")
    asked = await citizen.until(bot_says("Wo genau|Beschreiben"), BOT_TURN_S)
    assert "Wo genau" in asked["text"], asked["text"]
    # "Nein" is no place either: the report stops, as it does at any other question.
    await citizen.say("Nein")
    await citizen.until(bot_says("abgebrochen"), BOT_TURN_S)
    await citizen.say("Ich möchte ein Schlagloch melden")
    asked = await citizen.until(bot_says("Wo genau|Beschreiben"), BOT_TURN_S)
    assert "Wo genau" in asked["text"], asked["text"]
    await citizen.close()


async def test_two_misses_in_a_row_offer_a_person_who_gets_the_reason(
    ws_url: str, bea: AgentClient
) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("xkcd qwrtz plomb")
    await citizen.until(bot_says("anders formulieren"), BOT_TURN_S)
    await citizen.say("blorf snark wubbel")
    offer = await citizen.until(bot_says("zweimal nicht beantworten"), BOT_TURN_S)
    assert [b["payload"] for b in offer["buttons"]] == ["/affirm", "/deny"]
    assert not any(queued(f) for f in citizen.frames)  # only when she wants it
    await citizen.say("Ja, bitte")
    why = await citizen.until(bot_says("verbinde"), BOT_TURN_S)
    assert "Chatverlauf wird übergeben" in why["text"]
    state = await citizen.until(queued, BOT_TURN_S)
    assert state["reason"] == "not_understood"
    await leave(citizen)


async def test_out_of_scope_requests_are_declined_and_never_count_as_misses(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    for text in ("Kannst du mir einen Witz erzählen?", "Wie backe ich einen Marmorkuchen?"):
        await citizen.say(text)
        await citizen.until(bot_says("nicht helfen"), BOT_TURN_S)
    await citizen.say("Was kostet ein Personalausweis?")
    answer = await citizen.until(bot_says("Personalausweis"), BOT_TURN_S)
    assert answer["links"]
    assert not any(queued(f) for f in citizen.frames)
    await citizen.close()


async def test_a_person_can_be_asked_for_in_the_middle_of_a_form(
    ws_url: str, bea: AgentClient
) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Die Straßenlaterne ist kaputt")
    await citizen.until(bot_says("Wo genau"), BOT_TURN_S)
    await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
    state = await citizen.until(queued, BOT_TURN_S)
    assert state["reason"] == "citizen_request"
    await leave(citizen)


async def test_a_complaint_gets_an_apology_and_an_offer_that_can_be_declined(
    ws_url: str,
) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Das hilft mir überhaupt nicht weiter")
    offer = await citizen.until(bot_says("tut mir leid"), BOT_TURN_S)
    assert [b["payload"] for b in offer["buttons"]] == ["/affirm", "/deny"]
    await citizen.send({"type": "message", "client_id": "no-1", "payload": "/deny"})
    await citizen.until(bot_says("In Ordnung"), BOT_TURN_S)
    await citizen.close()


@pytest.mark.parametrize(
    "text",
    ["🙂🙂🙂", "asdf jklö", "Hello, ich need einen neuen Reisepass please", "?" * 3],
)
async def test_odd_input_gets_an_answer_never_silence(ws_url: str, text: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say(text)
    reply = await citizen.bot_reply(timeout=BOT_TURN_S)
    assert reply["text"].strip()
    await citizen.close()


async def test_a_message_over_the_limit_is_refused_clearly(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    limit = Settings().max_text_chars
    await citizen.say("Reisepass " * (4000 // 10))
    error = await citizen.until(lambda f: f["type"] == "error")
    assert error["code"] == "too_large" and "kürzen" in error["message"]
    assert limit < 4000
    await citizen.close()
