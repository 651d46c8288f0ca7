"""The widget in a real browser (Debian's chromium via Playwright) against the real stack."""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from redis.asyncio import Redis

from tests.agent_client import AgentClient
from tests.services import ROOT, Service, start_gateway
from tests.test_handover import PASSWORD, agents  # noqa: F401

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


@pytest.fixture(scope="module")
def portal(gateway: Service) -> Iterator[str]:
    """A city portal on an origin of its own embedding the gateway's widget, as cities do.
    The query string becomes the script tag's data attributes: `?invite-after=2` →
    `data-invite-after="2"`."""
    widget = gateway.url + "/widget.js"

    class PortalPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qsl(urlsplit(self.path).query)
            attributes = " ".join(f'data-{escape(k)}="{escape(v)}"' for k, v in query)
            body = (
                '<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Portal</title>'
                f'</head><body><main><h1>Portal</h1></main><script src="{widget}" {attributes} '
                "defer></script></body></html>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), PortalPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/portal"
    server.shutdown()
    server.server_close()


async def open_portal(page: Page, portal: str, **data: str) -> None:
    """Opens the portal with the widget's data attributes (`invite_after` → `data-invite-after`)."""
    await page.goto(portal + "?" + urlencode({k.replace("_", "-"): v for k, v in data.items()}))
    await page.locator("[part=launcher]").wait_for()


async def test_the_invitation_appears_after_the_set_time_without_taking_focus(
    page: Page, portal: str
) -> None:
    await open_portal(page, portal, invite_after="3")
    invitation = page.locator("[part=invitation]")
    await expect(invitation).to_be_hidden()
    await expect(invitation).to_be_visible(timeout=10_000)
    await expect(invitation).to_contain_text("Kann ich Ihnen helfen?")
    announced = page.get_by_role("status").filter(has_text="Kann ich Ihnen helfen?")
    await expect(announced).to_have_count(1)
    assert await page.evaluate("document.activeElement === document.body")
    await page.screenshot(path=shot("widget-invitation"))

    await page.keyboard.press("Tab")  # the invitation comes first in the tab order
    await expect(page.locator("[part=invitation-accept]")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("[part=panel]")).to_be_visible()
    await expect(page.locator("[part=input]")).to_be_focused()
    await expect(invitation).to_be_hidden()


async def test_a_dismissed_invitation_stays_away_after_a_reload(page: Page, portal: str) -> None:
    await page.emulate_media(reduced_motion="reduce")
    await open_portal(page, portal, invite_after="1")
    invitation = page.locator("[part=invitation]")
    await expect(invitation).to_be_visible(timeout=10_000)
    assert await invitation.evaluate("el => getComputedStyle(el).animationName") == "none"
    await invitation.get_by_role("button", name="Einladung schließen").click()
    await expect(invitation).to_be_hidden()
    await expect(page.locator("[part=launcher]")).to_be_focused()

    await page.reload()
    await page.locator("[part=launcher]").wait_for()
    await page.wait_for_timeout(2500)
    await expect(invitation).to_be_hidden()
    await expect(page.locator("[part=panel]")).to_be_hidden()


async def test_no_invitation_while_a_conversation_is_under_way(page: Page, portal: str) -> None:
    await open_portal(page, portal, invite_after="2")
    await page.evaluate("document.querySelector('buergerservice-chat').send('Hallo')")
    await expect(page.locator("[data-from=bot]")).not_to_have_count(0, timeout=30_000)
    await page.reload()
    await page.locator("[part=launcher]").wait_for()
    await page.wait_for_timeout(3500)
    await expect(page.locator("[part=invitation]")).to_be_hidden()
    # Hidden because of the conversation, not because it was declined earlier.
    assert await page.evaluate("localStorage.getItem('buergerservice-chat:invite')") is None


async def test_english_ui_strings_and_the_socket_language(page: Page, portal: str) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await open_portal(page, portal, lang="en")
    launcher = page.locator("[part=launcher]")
    await expect(launcher).to_have_accessible_name("Open chat")
    await launcher.click()
    await expect(page.get_by_role("dialog", name="Citizen service")).to_be_visible()
    await expect(page.get_by_role("textbox", name="Your message")).to_have_attribute(
        "placeholder", "Your message …"
    )
    await expect(page.get_by_role("button", name="Send")).to_be_visible()
    await expect(launcher).to_have_accessible_name("Close chat")
    assert len(sockets) == 1 and "lang=en" in sockets[0]
    await send(page, "Hello")  # the portal's origin is not the gateway's: the socket still works
    await expect(page.locator("[data-from=bot]")).not_to_have_count(0, timeout=30_000)


async def test_on_a_phone_the_panel_fills_the_screen(browser: Browser, gateway: Service) -> None:
    context = await browser.new_context(
        locale="de-DE", viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    await page.goto(gateway.url + "/")
    await page.locator("[part=launcher]").click()
    panel = page.locator("[part=panel]")
    await expect(panel).to_be_visible()
    await page.wait_for_function(
        "() => document.querySelector('buergerservice-chat').shadowRoot"
        ".querySelector('.panel').getAnimations().every(a => a.playState === 'finished')"
    )
    assert await panel.bounding_box() == {"x": 0, "y": 0, "width": 375, "height": 667}
    await page.screenshot(path=shot("widget-phone"))
    await context.close()


async def test_after_the_agent_closes_the_rating_is_a_radio_group_and_is_stored(
    page: Page,
    gateway: Service,
    redis_url: str,
    agents: None,  # noqa: F811
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    alina = await AgentClient.open(gateway.url, "alina", PASSWORD)  # online: chats are queued
    try:
        await page.goto(gateway.url + "/")
        await page.locator("[part=launcher]").click()
        await send(page, "Ich möchte mit einem Mitarbeiter sprechen")
        log = page.locator("[part=log]")
        await expect(log.locator("[data-from=system]").first).to_contain_text(
            "Warteschlange", timeout=30_000
        )
        conversation_id = await page.evaluate(
            "sessionStorage.getItem('buergerservice-chat:conversation')"
        )
        await alina.queue_with(conversation_id)
        await alina.accept(conversation_id)
        attack = "<img src=x onerror=alert(1)>"
        await alina.say(conversation_id, attack)
        agent_bubble = log.locator("[data-from=agent]")
        await expect(agent_bubble.locator("[part=bubble]")).to_have_text([attack])
        await expect(agent_bubble).to_contain_text("Alina Berger")
        assert await log.locator("img").count() == 0 and dialogs == []
        await alina.send({"type": "close", "conversation_id": conversation_id})
    finally:
        await alina.close()

    stars = page.get_by_role("group", name="Wie zufrieden waren Sie mit dem Gespräch?")
    await expect(stars.get_by_role("radio")).to_have_count(5, timeout=15_000)
    await stars.get_by_role("radio", name="4 von 5 Sternen").check()
    await page.keyboard.press("ArrowRight")  # one tab stop; arrows choose
    await expect(stars.get_by_role("radio", name="5 von 5 Sternen")).to_be_checked()
    await page.get_by_role("textbox", name=re.compile("Möchten Sie uns noch etwas")).fill(
        "Sehr freundlich"
    )
    await page.get_by_role("button", name="Bewertung senden").click()
    await expect(log).to_contain_text("Vielen Dank für Ihre Rückmeldung!")

    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        for _ in range(50):
            meta = await redis.hgetall(f"bs:conv:{{{conversation_id}}}:csat")
            if "csat_score" in meta:
                break
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()
    assert (meta.get("csat_score"), meta.get("csat_comment")) == ("5", "Sehr freundlich")


def test_the_widget_script_travels_compressed(gateway: Service) -> None:
    """Every page of the portal loads it: 47 KB as it is, about 15 KB gzipped."""
    plain = (ROOT / "widget" / "chat-widget.js").read_bytes()
    response = httpx.get(f"{gateway.url}/widget.js", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < len(plain) / 2
    assert response.content == plain  # httpx decompresses
    assert response.headers["cache-control"] == "public, max-age=300"
    assert "accept-encoding" in response.headers["vary"].lower()
