"""WhatsApp Cloud and Facebook Messenger, end to end: a real gateway, Redis, Rasa and action
server; Meta's Graph API answered by a local server of the same shape (tests/provider_apis.py),
since Meta's cloud cannot be reached from here."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect
from redis.asyncio import Redis

from handover import keys
from tests.agent_client import AgentClient
from tests.channel_conversations import conversation_of, report_damage_and_ask_its_status
from tests.provider_apis import Call, GraphApi
from tests.services import Service, start_gateway
from tests.test_accessibility_browser import serious_violations
from tests.test_agent_console_browser import sign_in
from tests.test_handover import PASSWORD
from tests.test_widget_browser import browser  # noqa: F401

pytestmark = pytest.mark.rasa

WA_TOKEN, WA_PHONE, WA_SECRET, WA_VERIFY = "wa-token-1", "1098765", "wa-app-secret", "wa-verify"
FB_TOKEN, FB_SECRET, FB_VERIFY = "fb-page-token", "fb-app-secret", "fb-verify"
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def graph() -> Iterator[dict[str, GraphApi]]:
    apis = {"whatsapp": GraphApi(WA_TOKEN, WA_PHONE).start(),
            "messenger": GraphApi(FB_TOKEN).start()}  # fmt: skip
    yield apis  # type: ignore[misc]
    for api in apis.values():
        api.stop()


@pytest.fixture(scope="module")
def meta_gateway(
    service_dir: Path, redis_url: str, rasa_server: Service, graph: dict[str, GraphApi],
    alina_account: None,
) -> Iterator[Service]:  # fmt: skip
    service = start_gateway(service_dir, "gateway-meta", redis_url, rasa_server.port, env={
        "WHATSAPP_ACCESS_TOKEN": WA_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": WA_PHONE,
        "WHATSAPP_APP_SECRET": WA_SECRET, "WHATSAPP_VERIFY_TOKEN": WA_VERIFY,
        "WHATSAPP_API_URL": graph["whatsapp"].url,
        "MESSENGER_PAGE_TOKEN": FB_TOKEN, "MESSENGER_APP_SECRET": FB_SECRET,
        "MESSENGER_VERIFY_TOKEN": FB_VERIFY, "MESSENGER_API_URL": graph["messenger"].url,
        "WHATSAPP_TEMPLATE_NAME": "rueckmeldung",
    })  # fmt: skip
    yield service
    service.stop()


# --- what Meta sends -------------------------------------------------------------------


def wa_message(sender: str, **content: Any) -> dict[str, Any]:
    return {"from": sender, "id": f"wamid.HBgL{next(_ids)}", "timestamp": "1733300000",
            **content}  # fmt: skip


def wa_text(sender: str, text: str) -> dict[str, Any]:
    return wa_message(sender, type="text", text={"body": text})


def wa_notification(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "4989000", "phone_number_id": WA_PHONE},
            "contacts": [{"profile": {"name": "Lena"}, "wa_id": m["from"]} for m in messages],
            "messages": list(messages)}}]}]}  # fmt: skip


def fb_event(sender: str, **event: Any) -> dict[str, Any]:
    return {"sender": {"id": sender}, "recipient": {"id": "PAGE"}, "timestamp": next(_ids),
            **event}  # fmt: skip


def fb_text(sender: str, text: str) -> dict[str, Any]:
    return fb_event(sender, message={"mid": f"m_{next(_ids)}", "text": text})


def fb_notification(*events: dict[str, Any]) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": "PAGE", "time": 0, "messaging": list(events)}]}


SECRETS = {"whatsapp": WA_SECRET, "messenger": FB_SECRET}
TEXT: dict[str, Callable[[str, str], dict[str, Any]]] = {"whatsapp": wa_text, "messenger": fb_text}
NOTIFY: dict[str, Callable[..., dict[str, Any]]] = {
    "whatsapp": wa_notification,
    "messenger": fb_notification,
}
_users = itertools.count(4915100000001)


async def post(service: Service, channel: str, payload: dict[str, Any] | bytes,
               signature: str | None = "right") -> httpx.Response:  # fmt: skip
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "right":
        digest = hmac.new(SECRETS[channel].encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    async with httpx.AsyncClient() as client:
        return await client.post(f"{service.url}/channels/{channel}", content=body,
                                 headers=headers, timeout=30)  # fmt: skip


def choices_of(channel: str, call: Call) -> dict[str, str]:
    """Title → id of the choices a sent message offers."""
    if channel == "messenger":
        return {q["title"]: q["payload"] for q in call.body["message"].get("quick_replies", [])}
    interactive = call.body.get("interactive") or {}
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        return {b["reply"]["title"]: b["reply"]["id"] for b in action["buttons"]}
    return {r["title"]: r["id"] for s in action.get("sections", []) for r in s["rows"]}


def pressed(channel: str, user: str, title: str, choice: str) -> dict[str, Any]:
    if channel == "messenger":
        message = {"mid": f"m_{next(_ids)}", "text": title, "quick_reply": {"payload": choice}}
        return fb_notification(fb_event(user, message=message))
    reply = {"type": "button_reply", "button_reply": {"id": choice, "title": title}}
    return wa_notification(wa_message(user, type="interactive", interactive=reply))


CHANNELS = ["whatsapp", "messenger"]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_the_subscription_handshake_wants_the_verify_token(
    meta_gateway: Service, channel: str
) -> None:
    token = WA_VERIFY if channel == "whatsapp" else FB_VERIFY
    async with httpx.AsyncClient() as client:
        url = f"{meta_gateway.url}/channels/{channel}"
        subscribe = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
        ok = await client.get(url, params={**subscribe, "hub.verify_token": token})
        wrong = await client.get(url, params={**subscribe, "hub.verify_token": "guess"})
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert wrong.status_code == 403


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_forged_or_missing_signature_is_refused_and_nothing_is_answered(
    meta_gateway: Service, graph: dict[str, GraphApi], channel: str
) -> None:
    user = str(next(_users))
    payload = NOTIFY[channel](TEXT[channel](user, "Hallo"))
    forged = "sha256=" + hmac.new(b"not-the-secret", json.dumps(payload).encode(),
                                  hashlib.sha256).hexdigest()  # fmt: skip
    for signature in (None, forged, "sha1=abc", "sha256="):
        assert (await post(meta_gateway, channel, payload, signature)).status_code == 401
    assert (await post(meta_gateway, channel, b"{broken")).status_code == 400
    assert (await post(meta_gateway, channel, {"object": "x"})).status_code == 400
    await asyncio.sleep(1.0)
    assert graph[channel].sent(user) == []


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_batch_is_answered_message_by_message_and_a_retry_once(
    meta_gateway: Service, graph: dict[str, GraphApi], channel: str
) -> None:
    lena, ben = str(next(_users)), str(next(_users))
    payload = NOTIFY[channel](TEXT[channel](lena, "Ich brauche einen neuen Personalausweis"),
                              TEXT[channel](ben, "Wo ist das Bürgerbüro?"))  # fmt: skip
    for _ in range(2):  # Meta retries a delivery it thinks failed
        assert (await post(meta_gateway, channel, payload)).status_code == 200
    api = graph[channel]
    await api.wait_for(lena, lambda c: "Personalausweis" in c.text)
    await api.wait_for(ben, lambda c: "Bürgerbüro" in c.text)
    await asyncio.sleep(2.0)
    assert len(api.sent(lena, lambda c: "Personalausweis" in c.text)) == 1
    facets = await api.wait_for(lena, lambda c: "Kosten" in choices_of(channel, c))
    choice = choices_of(channel, facets)["Kosten"]
    assert (
        await post(meta_gateway, channel, pressed(channel, lena, "Kosten", choice))
    ).status_code == 200
    await api.wait_for(lena, lambda c: "€" in c.text or "Euro" in c.text)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_forged_choice_is_refused_and_a_picture_gets_told_what_the_bot_reads(
    meta_gateway: Service, graph: dict[str, GraphApi], channel: str
) -> None:
    user = str(next(_users))
    forged = pressed(channel, user, "Kosten", "../../etc:1:x")
    assert (await post(meta_gateway, channel, forged)).status_code == 400
    if channel == "whatsapp":
        picture = wa_notification(wa_message(user, type="image", image={"id": "img-1"}))
    else:
        attachment = {"type": "image", "payload": {}}
        picture = fb_notification(
            fb_event(user, message={"mid": f"m_{next(_ids)}", "attachments": [attachment]})
        )
    assert (await post(meta_gateway, channel, picture)).status_code == 200
    await graph[channel].wait_for(user, lambda c: "Textnachrichten" in c.text)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_damage_report_and_its_status_work(
    meta_gateway: Service, graph: dict[str, GraphApi], gateway: Service, channel: str
) -> None:
    """The forms run as on the web (the action server files the case with the session's
    gateway, which shares the Redis)."""
    user = str(next(_users))

    async def heard(words: str) -> str:
        return (await graph[channel].wait_for(user, lambda c: words in c.text, 60)).text

    await report_damage_and_ask_its_status(
        lambda text: post(meta_gateway, channel, NOTIFY[channel](TEXT[channel](user, text))), heard
    )


async def asks_for_a_person(
    gateway: Service, graph: dict[str, GraphApi], redis: Redis, channel: str, user: str
) -> str:
    """The user asks for a person (someone is online) and is queued; the conversation's id."""
    payload = NOTIFY[channel](TEXT[channel](user, "Ich möchte mit einem Mitarbeiter sprechen"))
    assert (await post(gateway, channel, payload)).status_code == 200
    await graph[channel].wait_for(user, lambda c: "Warteschlange" in c.text)
    return await conversation_of(redis, user)


async def test_outside_whatsapps_window_an_agent_may_send_only_the_template(
    meta_gateway: Service, graph: dict[str, GraphApi], redis: Redis
) -> None:
    user = str(next(_users))
    agent = await AgentClient.open(meta_gateway.url, "alina", PASSWORD)
    try:
        conversation_id = await asks_for_a_person(meta_gateway, graph, redis, "whatsapp", user)
        await agent.queue_with(conversation_id)
        assigned = await agent.accept(conversation_id)
        context = assigned["context"]
        assert context["reply_window_s"] == 24 * 3600
        assert context["reply_window_closes_ms"] > (time.time() + 23 * 3600) * 1000
        assert context["template"]
        await agent.say(conversation_id, "Guten Tag, ich schaue nach.")
        await graph["whatsapp"].wait_for(user, lambda c: "ich schaue nach" in c.text)

        # A day and more later: WhatsApp would refuse free text, so the gateway does first.
        day_ago = int((time.time() - 25 * 3600) * 1000)
        await redis.hset(keys.conversation(conversation_id), "citizen_at", str(day_ago))
        await agent.say(conversation_id, "Sind Sie noch da?")
        refused = await agent.until(lambda f: f["type"] == "error", timeout=10)
        assert refused["code"] == "outside_window", agent.frames[-5:]
        await agent.send({"type": "template", "conversation_id": conversation_id,
                          "client_id": "t-1"})  # fmt: skip
        await agent.until(lambda f: f["type"] == "ack" and f.get("client_id") == "t-1")
        template = await graph["whatsapp"].wait_for(
            user, lambda c: c.body.get("type") == "template"
        )
        assert template.body["template"] == {"name": "rueckmeldung", "language": {"code": "de"}}
        assert graph["whatsapp"].sent(user, lambda c: "noch da" in c.text) == []
        await agent.send({"type": "close", "conversation_id": conversation_id})
    finally:
        await agent.close()


async def test_other_channels_have_no_template_to_send(
    meta_gateway: Service, graph: dict[str, GraphApi], redis: Redis
) -> None:
    user = str(next(_users))
    agent = await AgentClient.open(meta_gateway.url, "alina", PASSWORD)
    try:
        conversation_id = await asks_for_a_person(meta_gateway, graph, redis, "messenger", user)
        await agent.queue_with(conversation_id)
        assigned = await agent.accept(conversation_id)
        assert assigned["context"]["reply_window_closes_ms"] is None
        await agent.send({"type": "template", "conversation_id": conversation_id,
                          "client_id": "t-2"})  # fmt: skip
        assert (await agent.until(lambda f: f["type"] == "error"))["code"] == "no_template"
        await agent.send({"type": "close", "conversation_id": conversation_id})
    finally:
        await agent.close()


@pytest.mark.browser
async def test_the_console_says_when_whatsapp_takes_only_the_template(
    browser: Browser,  # noqa: F811
    meta_gateway: Service,
    graph: dict[str, GraphApi],
    redis: Redis,
) -> None:
    context = await browser.new_context(locale="de-DE", bypass_csp=True)
    console = await context.new_page()
    user = str(next(_users))
    try:
        await console.goto(meta_gateway.url + "/agent")
        await sign_in(console, "alina", PASSWORD)
        conversation_id = await asks_for_a_person(meta_gateway, graph, redis, "whatsapp", user)
        day_ago = int((time.time() - 25 * 3600) * 1000)
        await redis.hset(keys.conversation(conversation_id), "citizen_at", str(day_ago))
        item = console.locator(
            f'[data-testid=queue-item][data-conversation-id="{conversation_id}"]'
        )
        await item.get_by_test_id("accept-button").click(timeout=20_000)
        notice = console.get_by_test_id("reply-window").last
        await expect(notice).to_contain_text("nur die freigegebene Vorlage")
        await expect(console.get_by_test_id("composer-input").last).to_be_disabled()
        assert await serious_violations(console) == []
        await console.get_by_test_id("template-button").last.click()
        await graph["whatsapp"].wait_for(user, lambda c: c.body.get("type") == "template")
        await console.get_by_test_id("close-button").last.click()
    finally:
        await context.close()
