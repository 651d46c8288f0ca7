"""Telegram, end to end: a real gateway, Redis, Rasa and action server; Telegram's Bot API
answered by a local server of the same shape (tests/telegram_api.py), since Telegram's
cloud cannot be reached from here."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect
from redis.asyncio import Redis

from handover import keys
from handover.agents.queues import Queues
from handover.channels.rendering import render
from handover.conversation.log import ConversationLog, for_citizen
from tests.agent_client import AgentClient, login
from tests.channel_conversations import conversation_of, report_damage_and_ask_its_status
from tests.provider_apis import Call, TelegramApi
from tests.services import ROOT, Service, start_gateway
from tests.test_accessibility_browser import serious_violations
from tests.test_agent_console_browser import sign_in
from tests.test_handover import PASSWORD, add_agent, citizen_asking_for_a_person
from tests.test_widget_browser import browser  # noqa: F401

pytestmark = pytest.mark.rasa

TOKEN = "123456:test-token-aaaa"
SECRET = "telegram-hook-secret_1"
HEADER = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
_updates = itertools.count(50_000)
_chats = itertools.count(7_000_001)


@pytest.fixture(scope="module")
def telegram() -> Iterator[TelegramApi]:
    api = TelegramApi(TOKEN).start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def telegram_gateway(
    service_dir: Path,
    redis_url: str,
    rasa_server: Service,
    telegram: TelegramApi,
    alina_account: None,
) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-telegram", redis_url, rasa_server.port, env={
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_URL": telegram.url, "OUTBOX_LEASE_S": "3",
    })  # fmt: skip
    yield service
    service.stop()


def text_update(chat: int, text: str, **message: Any) -> dict[str, Any]:
    return {"update_id": next(_updates), "message": {
        "message_id": next(_updates), "date": 0, "text": text,
        "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": False, "first_name": "Lena", "language_code": "de"},
        **message,
    }}  # fmt: skip


def button_update(chat: int, call: Call, title: str) -> dict[str, Any]:
    """Lena presses the inline button called `title` of a message the bot sent."""
    rows = call.body["reply_markup"]["inline_keyboard"]
    button = next(b for row in rows for b in row if b["text"] == title)
    return {"update_id": next(_updates), "callback_query": {
        "id": f"cb{next(_updates)}", "data": button["callback_data"], "chat_instance": "x",
        "from": {"id": chat, "is_bot": False, "first_name": "Lena", "language_code": "de"},
    }}  # fmt: skip


def costs(call: Call) -> bool:
    return "€" in call.body["text"] or "Euro" in call.body["text"]


async def post(service: Service, update: dict[str, Any], headers: dict[str, str] = HEADER,
               content: bytes | None = None) -> httpx.Response:  # fmt: skip
    async with httpx.AsyncClient() as client:
        return await client.post(f"{service.url}/channels/telegram", headers=headers,
                                 content=content if content is not None else json.dumps(update),
                                 timeout=30)  # fmt: skip


async def test_a_forged_or_missing_secret_is_refused_and_nothing_is_stored(
    telegram_gateway: Service, telegram: TelegramApi, redis: Redis
) -> None:
    chat = next(_chats)
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                    {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}):  # fmt: skip
        refused = await post(telegram_gateway, text_update(chat, "Hallo"), headers=headers)
        assert refused.status_code == 401
    await asyncio.sleep(1.0)
    assert telegram.sent(chat) == []
    with pytest.raises(AssertionError):
        await conversation_of(redis, chat)


async def test_malformed_and_oversized_updates_get_a_clear_error(
    telegram_gateway: Service,
) -> None:
    assert (await post(telegram_gateway, {}, content=b"{not json")).status_code == 400
    assert (await post(telegram_gateway, {"update_id": "x"})).status_code == 400
    bad_callback = {
        "update_id": next(_updates),
        "callback_query": {
            "id": "1",
            "data": "nonsense",
            "from": {"id": 1, "is_bot": False, "first_name": "x"},
        },
    }
    assert (await post(telegram_gateway, bad_callback)).status_code == 400
    huge = text_update(next(_chats), "x" * 40_000)
    assert (await post(telegram_gateway, huge)).status_code == 413
    # A kind of update the bot does not take (an edited message) is acknowledged, ignored.
    edited = {"update_id": next(_updates), "edited_message": {"message_id": 1}}
    assert (await post(telegram_gateway, edited)).status_code == 200


async def test_a_question_gets_the_knowledge_answer_and_a_retry_is_answered_once(
    telegram_gateway: Service, telegram: TelegramApi
) -> None:
    chat = next(_chats)
    update = text_update(chat, "Ich brauche einen neuen Personalausweis")
    first = await post(telegram_gateway, update)
    assert first.status_code == 200
    answer = await telegram.wait_for(chat, lambda c: "Personalausweis" in c.body["text"])
    rows = answer.body["reply_markup"]["inline_keyboard"]
    assert any("url" in b and b["url"].startswith("https://") for row in rows for b in row)
    # The facet quick replies (Kosten, Unterlagen, …) follow as buttons that call back.
    facets = await telegram.wait_for(
        chat,
        lambda c: (
            "reply_markup" in c.body
            and any(
                "callback_data" in b
                for row in c.body["reply_markup"]["inline_keyboard"]
                for b in row
            )
        ),
    )
    assert any(b["text"] == "Kosten" for row in facets.body["reply_markup"]["inline_keyboard"]
               for b in row)  # fmt: skip
    # Telegram retries the same update: stored once, answered once.
    for _ in range(3):
        assert (await post(telegram_gateway, update)).status_code == 200
    await asyncio.sleep(2.0)
    assert len(telegram.sent(chat, lambda c: "Personalausweis" in c.body["text"])) == 1


async def test_a_quick_reply_button_asks_its_facet(
    telegram_gateway: Service, telegram: TelegramApi
) -> None:
    chat = next(_chats)
    await post(telegram_gateway, text_update(chat, "Ich brauche einen neuen Personalausweis"))
    answer = await telegram.wait_for(chat, lambda c: "Kosten" in json.dumps(c.body))
    await post(telegram_gateway, button_update(chat, answer, "Kosten"))
    cost = await telegram.wait_for(chat, costs)
    assert "Personalausweis" in cost.body["text"]


async def test_a_sticker_gets_told_what_the_bot_reads(
    telegram_gateway: Service, telegram: TelegramApi
) -> None:
    chat = next(_chats)
    sticker = text_update(chat, "", sticker={"file_id": "abc", "emoji": "👍"})
    del sticker["message"]["text"]
    assert (await post(telegram_gateway, sticker)).status_code == 200
    await telegram.wait_for(chat, lambda c: "Textnachrichten" in c.body["text"])


async def test_handover_agent_reply_close_and_rating_over_telegram(
    telegram_gateway: Service, telegram: TelegramApi, redis: Redis
) -> None:
    chat = next(_chats)
    # Alina is online (with nobody there, the bot would offer to take a message instead).
    agent = await AgentClient.open(telegram_gateway.url, "alina", PASSWORD)
    try:
        await post(telegram_gateway, text_update(chat, "Hallo"))
        await telegram.wait_for(chat, lambda c: bool(c.body["text"]))
        await post(telegram_gateway, text_update(chat, "Ich möchte mit einem Mitarbeiter sprechen"))
        await telegram.wait_for(chat, lambda c: "Warteschlange" in c.body["text"])
        conversation_id = await conversation_of(redis, chat)
        item = await agent.queue_with(conversation_id)
        assert item["channel"] == "telegram"
        assigned = await agent.accept(conversation_id)
        assert assigned["context"]["channel"] == "telegram"
        texts = [e.get("text") for e in assigned["transcript"] if e["type"] == "message"]
        assert "Hallo" in texts and "Ich möchte mit einem Mitarbeiter sprechen" in texts
        await telegram.wait_for(chat, lambda c: "Alina Berger" in c.body["text"]
                                and "für Sie da" in c.body["text"])  # fmt: skip
        await agent.say(conversation_id, "Guten Tag, ich helfe Ihnen gern weiter.")
        await telegram.wait_for(
            chat,
            lambda c: c.body["text"] == "Alina Berger: Guten Tag, ich helfe Ihnen gern weiter.",
        )
        # Lena answers on Telegram; Alina gets it on her socket.
        await post(telegram_gateway, text_update(chat, "Danke, ich ziehe nächsten Monat um."))
        await agent.until(lambda f: f["type"] == "message" and f.get("from") == "citizen"
                          and "ziehe" in f.get("text", ""))  # fmt: skip
        await agent.send({"type": "close", "conversation_id": conversation_id})
    finally:
        await agent.close()
    await telegram.wait_for(chat, lambda c: "beendet" in c.body["text"])
    question = await telegram.wait_for(chat, lambda c: "zufrieden" in c.body["text"])
    await post(telegram_gateway, button_update(chat, question, "5"))
    await telegram.wait_for(chat, lambda c: "Bewertung" in c.body["text"])
    conversations = ConversationLog(redis, 3600)
    assert (await conversations.csat(conversation_id))["csat_score"] == "5"
    # The replies came in the order they were stored.
    texts = [c.body["text"] for c in telegram.sent(chat)]
    assert texts.index(question.body["text"]) > max(
        i for i, text in enumerate(texts) if "beendet" in text
    )
    # After the close, a new message opens a new conversation.
    await post(telegram_gateway, text_update(chat, "Wo ist das Bürgerbüro?"))
    await telegram.wait_for(chat, lambda c: "Bürgerbüro" in c.body["text"]
                            and "zufrieden" not in c.body["text"])  # fmt: skip
    assert await conversation_of(redis, chat) != conversation_id


async def test_a_provider_outage_loses_no_reply_and_sends_none_twice(
    telegram_gateway: Service, telegram: TelegramApi, redis: Redis
) -> None:
    chat = next(_chats)
    telegram.fail_next(3, 502, "Bad Gateway")
    telegram.fail_next(1, 429, "Too Many Requests: retry after 1", parameters={"retry_after": 1})
    questions = ["Ich brauche einen neuen Personalausweis", "Was kostet das?"]
    for question in questions:
        assert (await post(telegram_gateway, text_update(chat, question))).status_code == 200
        await asyncio.sleep(0.5)
    await telegram.wait_for(chat, costs)
    await asyncio.sleep(1.0)
    # Every reply once, in the order the conversation log holds them.
    events = await ConversationLog(redis, 3600).events_after(await conversation_of(redis, chat), 0)
    stored = [render(e, "de").text for e in events if for_citizen(e)]
    assert [c.body["text"] for c in telegram.sent(chat)] == [text for text in stored if text]
    assert len(telegram.refused) >= 4


async def test_a_user_who_blocked_the_bot_is_recorded_and_others_still_get_answers(
    telegram_gateway: Service, telegram: TelegramApi, redis: Redis, redis_url: str
) -> None:
    blocked, other = next(_chats), next(_chats)
    telegram.fail_next(1, 403, "Forbidden: bot was blocked by the user")
    await post(telegram_gateway, text_update(blocked, "Hallo"))
    await asyncio.sleep(1.5)
    await post(telegram_gateway, text_update(other, "Hallo"))
    await telegram.wait_for(other, lambda c: bool(c.body["text"]))
    failed = [
        json.loads(item) for item in await redis.lrange(keys.outbox_failed("telegram"), 0, -1)
    ]
    assert any("blocked" in item["reason"] for item in failed)
    assert all("Hallo" not in json.dumps(item) for item in failed)  # no message text kept
    # Supervisors see them; nobody else does.
    done = await asyncio.to_thread(add_agent, redis_url, "sabine", "Sabine Roth", "--role",
                                   "supervisor")  # fmt: skip
    assert done.returncode == 0, done.stderr
    url = f"{telegram_gateway.url}/api/admin/channel-failures"
    async with httpx.AsyncClient() as client:
        anonymous = await client.get(url)
        alina = (await login(telegram_gateway.url, "alina", PASSWORD)).json()["token"]
        agent = await client.get(url, headers={"Authorization": f"Bearer {alina}"})
        sabine = (await login(telegram_gateway.url, "sabine", PASSWORD)).json()["token"]
        seen = await client.get(url, headers={"Authorization": f"Bearer {sabine}"})
    assert (anonymous.status_code, agent.status_code, seen.status_code) == (401, 403, 200)
    assert any("blocked" in item["reason"] for item in seen.json()["telegram"])


async def test_erasing_a_telegram_conversation_leaves_nothing_that_names_the_chat(
    telegram_gateway: Service, telegram: TelegramApi, redis: Redis, redis_url: str
) -> None:
    chat = next(_chats)
    await post(telegram_gateway, text_update(chat, "Wo ist das Bürgerbüro?"))
    await telegram.wait_for(chat, lambda c: "Bürgerbüro" in c.body["text"])
    conversation_id = await conversation_of(redis, chat)
    erased = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "handover.admin", "erase-person", "--conversation-id",
         conversation_id, "--yes"],
        cwd=ROOT, env={**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert erased.returncode == 0, erased.stderr
    async for key in redis.scan_iter(match="bs:*", count=1000):
        assert conversation_id not in key and str(chat) not in key
        if await redis.type(key) == "hash":
            values = " ".join(await redis.hvals(key))
            assert conversation_id not in values and str(chat) not in values, key
    # The chat's next message starts afresh.
    await post(telegram_gateway, text_update(chat, "Hallo"))
    await asyncio.sleep(1.0)
    assert await conversation_of(redis, chat) != conversation_id


@pytest.mark.browser
async def test_the_console_shows_the_channel_and_filters_the_queue_by_it(
    browser: Browser,  # noqa: F811
    telegram_gateway: Service,
    telegram: TelegramApi,
    redis: Redis,
) -> None:
    context = await browser.new_context(locale="de-DE", bypass_csp=True)
    console = await context.new_page()
    try:
        await console.goto(telegram_gateway.url + "/agent")
        await sign_in(console, "alina", PASSWORD)
        chat = next(_chats)
        await post(telegram_gateway, text_update(chat, "Ich möchte mit einem Mitarbeiter sprechen"))
        await telegram.wait_for(chat, lambda c: "Warteschlange" in c.body["text"])
        from_telegram = await conversation_of(redis, chat)
        web = await citizen_asking_for_a_person(
            telegram_gateway.url.replace("http://", "ws://") + "/ws/chat"
        )
        from_web = web.session["conversation_id"]
        items = console.get_by_test_id("queue-item")
        telegram_item = items.and_(console.locator(f'[data-conversation-id="{from_telegram}"]'))
        web_item = items.and_(console.locator(f'[data-conversation-id="{from_web}"]'))
        await expect(telegram_item).to_contain_text("Telegram", timeout=20_000)
        await expect(web_item).to_contain_text("Web-Chat")
        await console.get_by_label("Kanal").select_option(label="Telegram")
        await expect(telegram_item).to_be_visible()
        await expect(web_item).to_have_count(0)
        assert await serious_violations(console) == []
        await console.get_by_label("Kanal").select_option(label="Alle Kanäle")
        await expect(web_item).to_be_visible()
        # Leave no one waiting for other modules' queue positions.
        await web.send({"type": "end"})
        await web.until(lambda f: f["type"] == "state" and f["state"] == "closed")
        await web.close()
        await Queues(redis).remove("general", from_telegram)
    finally:
        await context.close()


async def test_a_damage_report_and_its_status_work_over_telegram(
    telegram_gateway: Service, telegram: TelegramApi, gateway: Service
) -> None:
    """The forms run as on the web (the action server files the case with the gateway's
    case API, which the session's gateway serves from the same Redis)."""
    chat = next(_chats)

    async def heard(words: str) -> str:
        reply = await telegram.wait_for(chat, lambda c: words in c.body["text"], 60)
        return str(reply.body["text"])

    await report_damage_and_ask_its_status(
        lambda text: post(telegram_gateway, text_update(chat, text)), heard
    )


def test_the_gateway_log_holds_no_token_secret_or_message_text(telegram_gateway: Service) -> None:
    """Runs last in this module: after every kind of update above went through."""
    log = telegram_gateway.log()
    assert "channel_message" in log  # the log was written, at info
    for secret in (TOKEN, TOKEN.split(":")[1], SECRET):
        assert secret not in log
    for text in ("Personalausweis", "Mitarbeiter sprechen", "Guten Tag, ich helfe"):
        assert text not in log
