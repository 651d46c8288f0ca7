"""E-mail: the gateway's SMTP listener in, a real SMTP server (aiosmtpd) as the relay out."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from handover.channels.mail import MailChannel, html_text, is_automatic, read_mail, reply_text
from handover.conversation.log import ConversationLog
from handover.settings import Settings
from tests.agent_client import AgentClient
from tests.channel_conversations import conversation_of, report_damage_and_ask_its_status
from tests.provider_apis import SmtpRelay
from tests.services import Service, free_port, start_gateway
from tests.test_handover import PASSWORD

ADDRESS = "chat@musterstadt.example"


# --- reading a mail --------------------------------------------------------------------------


def test_a_reply_keeps_only_what_the_citizen_wrote() -> None:
    german = ("Was kostet das?\n\nViele Grüße\nLena\n\nAm 04.12.2026 um 10:15 schrieb "
              "Bürgerservice <chat@musterstadt.example>:\n> Ein Personalausweis …")  # fmt: skip
    assert reply_text(german) == "Was kostet das?\n\nViele Grüße\nLena"
    english = "And for children?\n-- \nLena Berg\nOn Thu, 4 Dec 2026 at 10:15, X wrote:\n> old"
    assert reply_text(english) == "And for children?"
    assert reply_text("> nur Zitat\n>> mehr Zitat\nDanke!") == "Danke!"
    outlook = "Passt.\n\n-----Ursprüngliche Nachricht-----\nVon: chat@musterstadt.example"
    assert reply_text(outlook) == "Passt."


def test_html_mail_becomes_text_without_quotes_or_scripts() -> None:
    html = (
        "<html><head><style>p{}</style></head><body><p>Wo ist das <b>Bürgerbüro</b>?</p>"
        "<script>alert(1)</script><blockquote>alte Mail</blockquote></body></html>"
    )
    assert html_text(html) == "Wo ist das Bürgerbüro?"


def mail(text: str, sender: str = "lena@example.org", **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Lena Berg <{sender}>"
    message["To"] = ADDRESS
    message["Subject"] = headers.pop("Subject", "Personalausweis")
    message["Message-ID"] = headers.pop("Message_ID", make_msgid(domain="example.org"))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


def test_automatic_mail_is_recognised_and_dropped() -> None:
    assert is_automatic(mail("Ich bin im Urlaub", Auto_Submitted="auto-replied"))
    assert is_automatic(mail("Newsletter", Precedence="bulk"))
    assert not is_automatic(mail("Hallo"))
    assert read_mail(bytes(mail("Abwesend", Auto_Submitted="auto-generated")), ADDRESS) is None
    inbound = read_mail(bytes(mail("Wo ist das Bürgerbüro?")), ADDRESS)
    assert inbound is not None and inbound.user == "lena@example.org"
    assert inbound.text == "Wo ist das Bürgerbüro?" and inbound.numbered_choices
    with pytest.raises(ValueError):
        read_mail(b"Subject: no sender\r\n\r\nhallo", ADDRESS)


def test_only_the_trusted_relays_may_deliver() -> None:
    channel = MailChannel(Settings(email_address=ADDRESS, email_trusted_relays="10.1.0.0/16"))
    assert channel.trusted(("10.1.2.3", 25)) and not channel.trusted(("127.0.0.1", 25))
    assert not channel.trusted("nonsense")


# --- end to end --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def relay() -> Iterator[SmtpRelay]:
    server = SmtpRelay().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_gateway(
    service_dir: Path, redis_url: str, rasa_server: Service, relay: SmtpRelay,
    alina_account: None,
) -> Iterator[Service]:  # fmt: skip
    listen = free_port()
    service = start_gateway(service_dir, "gateway-mail", redis_url, rasa_server.port, env={
        "EMAIL_ADDRESS": ADDRESS, "EMAIL_LISTEN_PORT": str(listen),
        "EMAIL_SMTP_HOST": "127.0.0.1", "EMAIL_SMTP_PORT": str(relay.port),
        "EMAIL_MAX_BYTES": "20000",
    })  # fmt: skip
    service.smtp_port = listen  # type: ignore[attr-defined]
    yield service
    service.stop()


def deliver(gateway: Service, message: EmailMessage, to: str = ADDRESS) -> Any:
    """Hand a mail to the gateway's listener as the city's relay does; the refusal, if any."""
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as smtp:  # type: ignore[attr-defined]
        try:
            return smtp.send_message(message, to_addrs=[to])
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError,
                smtplib.SMTPSenderRefused) as refused:  # fmt: skip
            return refused


async def test_a_mail_gets_one_answer_threaded_to_it_and_a_number_chooses(
    mail_gateway: Service, relay: SmtpRelay
) -> None:
    citizen = "lena.pa@example.org"
    question = mail("Ich brauche einen neuen Personalausweis\n\n-- \nLena", sender=citizen)
    for _ in range(2):  # the city's relay delivers it again: one answer
        assert await asyncio.to_thread(deliver, mail_gateway, question) == {}
    answer = await relay.wait_for(citizen, lambda m: "Personalausweis" in m.get_content())
    assert answer["In-Reply-To"] == question["Message-ID"]
    assert answer["Auto-Submitted"] == "auto-replied"
    assert answer["Subject"] == "Re: Personalausweis"
    assert str(answer["From"]).endswith(f"<{ADDRESS}>")
    body = answer.get_content()
    assert "1. Kosten" in body and "Antworten Sie mit der Nummer" in body
    assert "https://" in body  # the article's link, written out
    await asyncio.sleep(2.0)
    assert len(relay.to(citizen)) == 1  # a bot turn is one mail, and the retry got none

    number = next(line.split(".")[0] for line in body.splitlines() if line.endswith("Kosten"))
    reply = mail(f"{number}\n\nAm 04.12.2026 schrieb Bürgerservice <{ADDRESS}>:\n> {body}",
                 sender=citizen, Subject="Re: Personalausweis",
                 In_Reply_To=str(answer["Message-ID"]))  # fmt: skip
    assert await asyncio.to_thread(deliver, mail_gateway, reply) == {}
    cost = await relay.wait_for(
        citizen, lambda m: m["Message-ID"] != answer["Message-ID"] and "€" in m.get_content()
    )
    assert cost["In-Reply-To"] == reply["Message-ID"]


async def test_a_damage_report_and_its_status_work_by_mail(
    mail_gateway: Service, relay: SmtpRelay, gateway: Service
) -> None:
    """The forms run as on the web, one mail per step (the case is filed with the
    session's gateway)."""
    citizen = "lena.form@example.org"
    answered: set[str] = set()

    async def say(text: str) -> None:
        assert await asyncio.to_thread(deliver, mail_gateway, mail(text, sender=citizen)) == {}

    async def heard(words: str) -> str:
        answer = await relay.wait_for(citizen, lambda m: m["Message-ID"] not in answered
                                      and words in m.get_content(), 60)  # fmt: skip
        answered.add(answer["Message-ID"])
        return str(answer.get_content())

    await report_damage_and_ask_its_status(say, heard)


async def test_mail_that_is_not_for_us_too_big_or_automatic_is_not_answered(
    mail_gateway: Service, relay: SmtpRelay
) -> None:
    citizen = "ben.mail@example.org"
    elsewhere = await asyncio.to_thread(deliver, mail_gateway, mail("Hallo", sender=citizen),
                                        "someone@musterstadt.example")  # fmt: skip
    assert isinstance(elsewhere, smtplib.SMTPRecipientsRefused)
    huge = await asyncio.to_thread(deliver, mail_gateway, mail("x" * 30_000, sender=citizen))
    assert isinstance(huge, smtplib.SMTPDataError | smtplib.SMTPSenderRefused)
    away = mail("Ich bin bis Montag nicht im Büro.", sender=citizen, Auto_Submitted="auto-replied")
    assert await asyncio.to_thread(deliver, mail_gateway, away) == {}
    await asyncio.sleep(2.0)
    assert relay.to(citizen) == []


async def test_a_relay_that_says_try_later_gets_the_answer_again(
    mail_gateway: Service, relay: SmtpRelay
) -> None:
    citizen = "cem.retry@example.org"
    relay.fail_next(2, 451)
    assert await asyncio.to_thread(deliver, mail_gateway, mail("Wo ist das Bürgerbüro?",
                                                              sender=citizen)) == {}  # fmt: skip
    await relay.wait_for(citizen, lambda m: "Bürgerbüro" in m.get_content())
    await asyncio.sleep(1.5)
    assert len(relay.to(citizen)) == 1


async def test_a_person_answers_by_mail_and_the_rating_comes_back_as_a_number(
    mail_gateway: Service, relay: SmtpRelay, redis: Redis
) -> None:
    citizen = "dora.person@example.org"
    agent = await AgentClient.open(mail_gateway.url, "alina", PASSWORD)
    try:
        ask = mail("Ich möchte mit einem Mitarbeiter sprechen", sender=citizen, Subject="Frage")
        assert await asyncio.to_thread(deliver, mail_gateway, ask) == {}
        await relay.wait_for(citizen, lambda m: "Warteschlange" in m.get_content())
        conversation_id = await conversation_of(redis, citizen)
        item = await agent.queue_with(conversation_id)
        assert item["channel"] == "email"
        await agent.accept(conversation_id)
        await agent.say(conversation_id, "Guten Tag, hier ist Alina.")
        await relay.wait_for(citizen, lambda m: "Alina Berger: Guten Tag" in m.get_content())
        await agent.send({"type": "close", "conversation_id": conversation_id})
        question = await relay.wait_for(citizen, lambda m: "zufrieden" in m.get_content())
        assert "beendet" in question.get_content()  # the end and the question: one mail
        rating = mail("5", sender=citizen, Subject="Re: Frage",
                      In_Reply_To=str(question["Message-ID"]))  # fmt: skip
        assert await asyncio.to_thread(deliver, mail_gateway, rating) == {}
        await relay.wait_for(citizen, lambda m: "Bewertung" in m.get_content())
        assert (await ConversationLog(redis, 3600).csat(conversation_id))["csat_score"] == "5"
    finally:
        await agent.close()
