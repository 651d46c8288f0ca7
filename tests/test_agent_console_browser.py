"""The agent console in a real browser: Alina takes over Lena's chat."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, WebSocket, expect

from tests.citizen_client import CitizenClient
from tests.services import Service
from tests.test_handover import PASSWORD, agents, citizen_asking_for_a_person  # noqa: F401
from tests.test_widget_browser import browser, shot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.rasa]


@pytest.fixture
async def console(browser: Browser, gateway: Service) -> AsyncIterator[Page]:  # noqa: F811
    context = await browser.new_context(locale="de-DE")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(gateway.url + "/agent")
    yield page
    await context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


async def log_in(page: Page, username: str, password: str) -> None:
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()


async def sign_in(page: Page, username: str, password: str) -> None:
    """Log in and wait until the console's socket is authenticated (the agent is online).

    A handover asked for before that finds nobody online and becomes a ticket.
    """
    await log_in(page, username, password)
    await expect(page.locator(".ac-conn[data-state=online]")).to_be_attached(timeout=20_000)


async def test_a_wrong_password_is_refused_in_german(console: Page, agents: None) -> None:  # noqa: F811
    await log_in(console, "alina", "falsch-falsch")
    await expect(console.get_by_text("Benutzername oder Passwort ist falsch.")).to_be_visible()


async def test_alina_accepts_reads_the_intents_and_replies(
    console: Page,
    ws_url: str,
    agents: None,  # noqa: F811
) -> None:
    await sign_in(console, "alina", PASSWORD)
    citizen = await citizen_asking_for_a_person(ws_url)
    conversation_id = citizen.session["conversation_id"]

    item = console.locator(f'[data-testid=queue-item][data-conversation-id="{conversation_id}"]')
    await expect(item).to_contain_text("Wunsch nach Mitarbeiter/in", timeout=20_000)
    await expect(console).to_have_title(re.compile(r"^\(\d+\) "))
    await item.get_by_test_id("accept-button").click()

    tab = console.locator(f'[data-testid=chat-tab][data-conversation-id="{conversation_id}"]')
    await expect(tab).to_be_visible()
    transcript = console.get_by_test_id("transcript").last
    await expect(transcript.get_by_test_id("intent-badge").first).to_contain_text("greet")
    await expect(transcript.get_by_test_id("intent-badge").last).to_contain_text("request_human")
    await expect(transcript.locator("[data-from=bot]").first).to_be_visible()
    await console.screenshot(path=shot("agent-console"))

    await console.get_by_test_id("composer-input").last.fill("Guten Tag, hier ist Alina.")
    await console.get_by_test_id("composer-send").last.click()
    reply = await citizen.until(lambda f: f["type"] == "message" and f.get("from") == "agent")
    assert reply["text"] == "Guten Tag, hier ist Alina."

    await citizen.say("<img src=x onerror=alert(1)>")
    await expect(transcript.locator("[data-from=citizen]").last).to_contain_text("<img src=x")
    assert await transcript.locator("img").count() == 0

    await console.get_by_test_id("close-button").last.click()
    await citizen.until(lambda f: f.get("state") == "closed")
    await citizen.close()


async def test_a_forged_token_lands_on_the_login(console: Page) -> None:
    await console.evaluate("sessionStorage.setItem('buergerservice-agent:token', 'forged')")
    await console.reload()
    await expect(console.get_by_test_id("login-username")).to_be_visible()


async def test_alina_finds_the_answer_to_the_citizens_question_and_inserts_it(
    console: Page,
    ws_url: str,
    agents: None,  # noqa: F811
) -> None:
    await sign_in(console, "alina", PASSWORD)
    question = "Brauche ich für eine Solaranlage auf dem Dach eine Genehmigung?"
    citizen = await CitizenClient.open(ws_url)
    await citizen.say(question)
    await citizen.bot_reply()
    await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
    await citizen.until(lambda f: f["type"] == "state" and f["state"] == "queued")
    conversation_id = citizen.session["conversation_id"]
    item = console.locator(f'[data-testid=queue-item][data-conversation-id="{conversation_id}"]')
    await item.get_by_test_id("accept-button").click(timeout=20_000)

    chat = console.locator(f'[role=tabpanel][data-conversation-id="{conversation_id}"]')
    await expect(chat.get_by_test_id("knowledge-query")).to_have_value(question)
    await chat.get_by_test_id("knowledge-search").click()
    hit = chat.get_by_test_id("knowledge-hit").first
    # The gateway loads the index on the first search: allow for that once.
    await expect(hit).to_contain_text("Photovoltaik", timeout=60_000)
    await console.screenshot(path=shot("agent-console-knowledge"))
    passage = await hit.locator(".txt").inner_text()
    await hit.get_by_test_id("insert-answer").click()

    reply = chat.get_by_test_id("composer-input")
    await expect(reply).to_be_focused()
    inserted = await reply.input_value()
    assert inserted.startswith(passage.strip()) and "\n\nMehr dazu: https://" in inserted
    with pytest.raises(TimeoutError):  # inserted, not sent
        await citizen.until(lambda f: f.get("from") == "agent", timeout=1.0)

    await chat.get_by_test_id("composer-send").click()
    sent = await citizen.until(lambda f: f["type"] == "message" and f.get("from") == "agent")
    assert sent["text"] == inserted.strip()
    await chat.get_by_test_id("close-button").click()
    await citizen.close()


async def test_the_console_sends_its_token_in_the_auth_frame_never_in_the_url(
    console: Page,
    agents: None,  # noqa: F811
) -> None:
    urls: list[str] = []
    sent: list[str] = []

    def on_socket(socket: WebSocket) -> None:
        urls.append(socket.url)
        socket.on("framesent", lambda payload: sent.append(str(payload)))

    console.on("websocket", on_socket)
    await sign_in(console, "bernd", PASSWORD)
    token = await console.evaluate("sessionStorage.getItem('buergerservice-agent:token')")
    assert urls and all("?" not in url and token not in url for url in urls)
    assert json.loads(sent[0]) == {"type": "auth", "token": token}


async def test_too_many_attempts_are_explained_with_the_wait(console: Page) -> None:
    for _ in range(3):
        await log_in(console, "niemand-im-browser", "falsch-falsch")
        await expect(console.get_by_text("Benutzername oder Passwort ist falsch.")).to_be_visible()
    await log_in(console, "niemand-im-browser", "falsch-falsch")
    waiting = re.compile(r"Zu viele Anmeldeversuche\. Bitte warten Sie \d+ Sekunden? ")
    await expect(console.get_by_text(waiting)).to_be_visible()
