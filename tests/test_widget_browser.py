"""The widget in a real browser (Debian's chromium via Playwright) against the real stack."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.services import ROOT, Service, start_gateway

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Flags for a headless browser on a machine without a network or a display.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed (Debian package chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="de-DE")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def shot(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


async def send(page: Page, text: str) -> None:
    await page.locator("[part=input]").fill(text)
    await page.locator("[part=send]").click()


async def test_hallo_gets_the_greeting_and_survives_a_reload(page: Page, gateway: Service) -> None:
    await page.goto(gateway.url + "/")
    await expect(page).to_have_title(re.compile("Bürgerportal Musterstadt"))
    await page.locator("[part=launcher]").click()
    await send(page, "Hallo")

    log = page.locator("[part=log]")
    greeting = log.locator("[data-from=bot]").filter(has_text="Guten Tag!")
    await expect(greeting).to_have_count(1, timeout=30_000)
    await expect(log.locator("[data-from=bot] [part=quick-reply]")).to_have_text(
        ["Mit einem Menschen sprechen"]
    )
    await page.screenshot(path=shot("widget-greeting"))

    await page.reload()
    await page.locator("[part=launcher]").wait_for()
    if await page.locator("[part=panel]").is_hidden():
        await page.locator("[part=launcher]").click()
    await expect(greeting).to_have_count(1, timeout=15_000)
    await expect(log.locator("[data-from=citizen] [part=bubble]")).to_have_text(["Hallo"])


async def test_a_quick_reply_is_sent_and_shown_by_its_title(page: Page, gateway: Service) -> None:
    await page.goto(gateway.url + "/")
    await page.locator("[part=launcher]").click()
    await send(page, "Guten Morgen")
    log = page.locator("[part=log]")
    await log.locator("[part=quick-reply]").first.click(timeout=30_000)
    await expect(log.locator("[data-from=citizen] [part=bubble]").last).to_have_text(
        "Mit einem Menschen sprechen"
    )
    await expect(
        log.locator("[data-from=bot]").filter(has_text="Gern verbinde ich Sie")
    ).to_have_count(1, timeout=30_000)


async def test_markup_in_messages_is_shown_as_text(page: Page, gateway: Service) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await page.goto(gateway.url + "/")
    await page.locator("[part=launcher]").click()
    attack = "<img src=x onerror=alert(1)>"
    await send(page, attack)
    log = page.locator("[part=log]")
    await expect(log.locator("[data-from=citizen] [part=bubble]")).to_have_text([attack])
    await expect(log.locator("[data-from=bot]")).not_to_have_count(0, timeout=30_000)
    assert await log.locator("img").count() == 0
    assert dialogs == []


async def test_the_widget_reconnects_after_the_gateway_restarts(
    page: Page, service_dir: Path, redis_url: str, rasa_server: Service
) -> None:
    gateway = start_gateway(service_dir, "gateway-restarting", redis_url, rasa_server.port)
    try:
        await page.goto(gateway.url + "/")
        await page.locator("[part=launcher]").click()
        await send(page, "Hallo")
        log = page.locator("[part=log]")
        await expect(log.locator("[data-from=bot]")).to_have_count(1, timeout=30_000)

        gateway.stop()  # the connection drops
        await send(page, "Danke")  # typed while offline: queued, not lost
        gateway = start_gateway(
            service_dir, "gateway-restarting", redis_url, rasa_server.port, port=gateway.port
        )
        await expect(log.locator("[data-from=citizen] [part=bubble]")).to_have_text(
            ["Hallo", "Danke"], timeout=30_000
        )
        await expect(log.locator("[data-from=bot]")).to_have_count(2, timeout=30_000)
    finally:
        gateway.stop()
