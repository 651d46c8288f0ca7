"""Download and deletion from the widget, and the supervisor's audit panel, in Chromium.

Real gateway, Redis and Rasa. axe-core finds no serious or critical violation
with the options open, with the confirmation dialog open and after deletion.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from redis.asyncio import Redis

from tests.services import Service
from tests.test_accessibility_browser import AXE, serious_violations
from tests.test_agent_console_browser import sign_in
from tests.test_data_protection import post, privacy_gateway, traces_of  # noqa: F401
from tests.test_handover import PASSWORD, add_agent, citizen_asking_for_a_person
from tests.test_widget_browser import browser, send, shot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

CHAT = "document.querySelector('buergerservice-chat').shadowRoot"


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:  # noqa: F811
    if not AXE.exists():
        pytest.fail(f"axe-core missing at {AXE}; `make test` installs it with npm")
    context = await browser.new_context(locale="de-DE", bypass_csp=True, accept_downloads=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def read_text(path: Path | str) -> str:
    return Path(path).read_text()


async def test_the_citizen_downloads_and_deletes_the_conversation_in_the_widget(
    page: Page,
    privacy_gateway: Service,  # noqa: F811
    redis: Redis,
    tmp_path: Path,
) -> None:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    await page.goto(privacy_gateway.url + "/")
    await page.locator("[part=launcher]").click()
    log = page.locator("[part=log]")
    await send(page, "Brauche ich für eine Solaranlage eine Genehmigung?")
    await expect(log.locator("[data-from=bot]").first).to_be_visible(timeout=60_000)
    token = await page.evaluate("sessionStorage.getItem('buergerservice-chat:token')")
    cid = await page.evaluate("sessionStorage.getItem('buergerservice-chat:conversation')")
    assert token and cid

    options = page.get_by_role("button", name="Gesprächsoptionen")
    await options.click()
    await expect(options).to_have_attribute("aria-expanded", "true")
    html_button = page.get_by_role("button", name="Gespräch herunterladen (HTML-Seite)")
    await expect(html_button).to_be_focused()
    assert await serious_violations(page) == []

    async with page.expect_download() as html_download:
        await html_button.click()
    saved = tmp_path / (await html_download.value).suggested_filename
    await (await html_download.value).save_as(saved)
    assert saved.suffix == ".html"
    assert "Brauche ich für eine Solaranlage eine Genehmigung?" in read_text(saved)
    async with page.expect_download() as json_download:
        await page.get_by_role("button", name="Gespräch herunterladen (JSON-Datei)").click()
    data = json.loads(read_text(await (await json_download.value).path()))
    assert data["conversations"][0]["conversation_id"] == cid

    # The confirmation: focus on the safe choice; Escape cancels and deletes nothing.
    await page.get_by_role("button", name="Gespräch löschen").click()
    dialog = page.get_by_role("dialog", name="Gespräch endgültig löschen?")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("button", name="Abbrechen")).to_be_focused()
    assert await serious_violations(page) == []
    await page.screenshot(path=shot("widget-erase-dialog"))
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(options).to_be_focused()
    assert await redis.exists(f"bs:conv:{{{cid}}}:log")

    await options.click()
    await page.get_by_role("button", name="Gespräch löschen").click()
    await dialog.get_by_role("button", name="Endgültig löschen").click()
    await expect(log).to_contain_text("Ihr Gespräch wurde gelöscht.")
    await expect(log.locator("[data-from=bot]")).to_have_count(0)
    await expect(page.locator("[part=input]")).to_be_focused()
    await expect(options).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('buergerservice-chat:token')") is None
    assert await serious_violations(page) == []
    assert await traces_of(redis, cid, token) == []
    assert not [url for url in urls if token in url], "the token travelled in a URL"

    # A new message starts a new conversation.
    await send(page, "Hallo")
    await expect(log.locator("[data-from=bot]").first).to_be_visible(timeout=30_000)
    fresh = await page.evaluate("sessionStorage.getItem('buergerservice-chat:conversation')")
    assert fresh and fresh != cid


async def test_a_second_tab_forgets_a_conversation_erased_in_the_first(
    page: Page,
    privacy_gateway: Service,  # noqa: F811
) -> None:
    await page.goto(privacy_gateway.url + "/")
    await page.locator("[part=launcher]").click()
    await send(page, "Hallo")
    log = page.locator("[part=log]")
    await expect(log.locator("[data-from=bot]").first).to_be_visible(timeout=30_000)
    token = await page.evaluate("sessionStorage.getItem('buergerservice-chat:token')")
    erased = await post(privacy_gateway, "/api/conversation/erase", token, {"confirm": True})
    assert erased.status_code == 200
    await expect(log).to_contain_text("Ihr Gespräch wurde gelöscht.")
    assert await page.evaluate("sessionStorage.getItem('buergerservice-chat:token')") is None


async def test_the_supervisor_sees_an_erased_chat_end_and_reads_the_audit_panel(
    page: Page,
    privacy_gateway: Service,  # noqa: F811
    redis_url: str,
) -> None:
    done = add_agent(redis_url, "bettina", "Bettina Kühn", "--skills", "general", "--role",
                     "supervisor", "--capacity", "20")  # fmt: skip
    assert done.returncode == 0, done.stderr
    await page.goto(privacy_gateway.url + "/agent")
    await sign_in(page, "bettina", PASSWORD)
    ws_url = privacy_gateway.url.replace("http://", "ws://") + "/ws/chat"
    citizen = await citizen_asking_for_a_person(ws_url)
    cid = citizen.session["conversation_id"]
    item = page.locator(f'[data-testid=queue-item][data-conversation-id="{cid}"]')
    await item.get_by_test_id("accept-button").click(timeout=20_000)
    transcript = page.get_by_test_id("transcript").last
    await expect(transcript.locator("[data-from=bot]").first).to_be_visible()

    erased = await post(privacy_gateway, "/api/conversation/erase", citizen.token,
                        {"confirm": True})  # fmt: skip
    assert erased.status_code == 200
    await expect(page.get_by_text(re.compile("auf Wunsch gelöscht"))).to_be_visible()
    await expect(transcript.locator("[data-from=bot]")).to_have_count(0)
    await citizen.close()

    panel = page.get_by_role("region", name="Zugriffsprotokoll (Datenschutz)")
    await panel.get_by_role("button", name="Protokoll laden").click()
    table = panel.get_by_role("table")
    await expect(table.get_by_test_id("audit-entry").first).to_be_visible()
    await expect(table).to_contain_text("hat das Gespräch übernommen")
    await expect(table).to_contain_text("gelöschtes Gespräch")
    assert cid[:8] not in await table.inner_text()
    assert await serious_violations(page) == []
    await page.screenshot(path=shot("agent-console-audit"))
