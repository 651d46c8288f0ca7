"""The agent console in a real browser: Alina takes over Lena's chat."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

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


async def test_a_wrong_password_is_refused_in_german(console: Page, agents: None) -> None:  # noqa: F811
    await log_in(console, "alina", "falsch-falsch")
    await expect(console.get_by_text("Benutzername oder Passwort ist falsch.")).to_be_visible()


async def test_alina_accepts_reads_the_intents_and_replies(
    console: Page,
    ws_url: str,
    agents: None,  # noqa: F811
) -> None:
    await log_in(console, "alina", PASSWORD)
    await expect(console.get_by_test_id("status")).to_be_attached()
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
    await log_in(console, "alina", PASSWORD)
    await expect(console.get_by_test_id("status")).to_be_attached()
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
