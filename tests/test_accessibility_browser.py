"""BITV 2.0 / WCAG 2.1 AA: axe-core finds no serious or critical violation in what people use."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.services import ROOT, Service
from tests.test_agent_console_browser import sign_in
from tests.test_handover import PASSWORD, agents, citizen_asking_for_a_person  # noqa: F401
from tests.test_widget_browser import browser, send, shot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

AXE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:  # noqa: F811
    if not AXE.exists():
        pytest.fail(f"axe-core missing at {AXE}; `make test` installs it with npm")
    # The pages forbid inline scripts (CSP); the test injects axe, so it may.
    context = await browser.new_context(locale="de-DE", bypass_csp=True)
    yield await context.new_page()
    await context.close()


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# What in the conversation could take keyboard focus: visible links, buttons, form fields.
FOCUSABLE_IN_LOG = """log => [...log.querySelectorAll('a, button, input, textarea, [tabindex]')]
    .filter(el => el.checkVisibility()).length"""
# The scrolling part of the panel: intro, log and typing indicator.
SCROLLER = "document.querySelector('buergerservice-chat').shadowRoot.querySelector('[part=body]')"


async def a_plain_text_conversation(page: Page, gateway: Service) -> Locator:
    """Greeting, then thanks and the bot's plain answer: once the citizen has answered, the
    greeting's quick reply is retired, so nothing in the log can take focus."""
    await page.goto(gateway.url + "/")
    await page.locator("[part=launcher]").click()
    log = page.locator("[part=log]")
    await send(page, "Hallo")
    await log.locator("[data-from=bot] [part=quick-reply]").first.wait_for(timeout=30_000)
    await send(page, "Danke")
    await expect(log.locator("[data-from=bot]")).to_have_count(2, timeout=30_000)
    await expect(log.locator("[data-from=bot]").last).to_contain_text("gern", ignore_case=True)
    await expect(log.locator("[data-from=citizen][data-status=sent]")).to_have_count(2)
    assert await log.evaluate(FOCUSABLE_IN_LOG) == 0
    return log


async def test_the_open_widget_with_buttons_and_links(page: Page, gateway: Service) -> None:
    await page.goto(gateway.url + "/")
    await page.locator("[part=launcher]").click()
    log = page.locator("[part=log]")
    await send(page, "Hallo")
    await log.locator("[data-from=bot] [part=quick-reply]").first.wait_for(timeout=30_000)
    assert await serious_violations(page) == []
    await send(page, "Was kostet ein Personalausweis?")
    # The first question also waits for the action server to load the index.
    await log.locator("[data-from=bot] .links a").first.wait_for(timeout=120_000)
    feedback = log.locator("[data-from=bot]").filter(has_text="Hat Ihnen das geholfen?")
    await feedback.locator("[part=quick-reply]").first.wait_for(timeout=30_000)
    assert await serious_violations(page) == []


async def test_the_open_widget_with_a_conversation_without_buttons_or_links(
    page: Page, gateway: Service
) -> None:
    await a_plain_text_conversation(page, gateway)
    # Scrollable, else axe would not look at it (scrollable-region-focusable).
    assert await page.evaluate(f"{SCROLLER}.scrollHeight > {SCROLLER}.clientHeight")
    assert await serious_violations(page) == []


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two computed colours ("rgb(r, g, b)")."""

    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", colour)[:3]]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


async def test_the_conversation_is_reached_and_scrolled_by_keyboard(
    page: Page, gateway: Service
) -> None:
    await page.set_viewport_size({"width": 1280, "height": 600})  # a short chat overflows
    await a_plain_text_conversation(page, gateway)
    history = page.get_by_role("region", name="Chatverlauf")
    scroll_top = f"{SCROLLER}.scrollTop"
    at_bottom = f"{SCROLLER}.scrollHeight - {SCROLLER}.scrollTop - {SCROLLER}.clientHeight < 2"
    assert await page.evaluate(f"{SCROLLER}.scrollHeight > {SCROLLER}.clientHeight + 100")
    assert await page.evaluate(at_bottom)  # the newest message is in view

    # From the input, one step back is the conversation (it holds nothing focusable) ...
    await page.locator("[part=input]").focus()
    await page.keyboard.press("Shift+Tab")
    await expect(history).to_be_focused()
    await expect(page.get_by_role("log")).to_have_count(1)  # the log is still the live region
    # ... and forward from the close button too.
    await page.locator("[part=close]").focus()
    await page.keyboard.press("Tab")
    await expect(history).to_be_focused()

    ring = await history.evaluate(
        """el => ({visible: el.matches(':focus-visible'), ...Object.fromEntries(
            ['outlineStyle', 'outlineWidth', 'outlineOffset', 'outlineColor', 'backgroundColor']
            .map(k => [k, getComputedStyle(el)[k]]))})"""
    )
    assert ring["visible"] and ring["outlineStyle"] == "solid", ring
    assert float(ring["outlineWidth"].removesuffix("px")) >= 2, ring
    # Drawn inside the scroller (the panel clips what is outside), against its background.
    assert float(ring["outlineOffset"].removesuffix("px")) <= -2, ring
    assert contrast(ring["outlineColor"], ring["backgroundColor"]) >= 3, ring
    await page.screenshot(path=shot("widget-conversation-focused"))

    before = await page.evaluate(scroll_top)
    await page.keyboard.press("PageUp")
    await page.wait_for_function(f"{scroll_top} < {before}")
    await page.keyboard.press("End")
    await page.wait_for_function(at_bottom)
    before = await page.evaluate(scroll_top)
    await page.keyboard.press("ArrowUp")
    await page.wait_for_function(f"{scroll_top} < {before}")
    await expect(history).to_be_focused()

    # The name follows the widget's language.
    await page.evaluate("document.querySelector('buergerservice-chat').dataset.lang = 'en'")
    await expect(page.get_by_role("region", name="Conversation")).to_be_focused()


async def test_the_invitation(page: Page, gateway: Service) -> None:
    await page.goto(gateway.url + "/")
    # The demo portal invites after 20 s; the attribute can be changed at any time.
    await page.evaluate("document.querySelector('buergerservice-chat').dataset.inviteAfter = '0'")
    await page.locator("[part=invitation]").wait_for()
    # It fades in (0.25 s): contrast measured mid-fade is the fade's, not the invitation's.
    await page.wait_for_function(
        "() => document.querySelector('buergerservice-chat').shadowRoot"
        ".querySelector('.inv').getAnimations().every(a => a.playState === 'finished')"
    )
    assert await serious_violations(page) == []


async def test_the_agent_console_with_a_chat(
    page: Page,
    gateway: Service,
    ws_url: str,
    agents: None,  # noqa: F811
) -> None:
    await page.goto(gateway.url + "/agent")
    assert await serious_violations(page) == []  # the login form
    await page.reload()
    await sign_in(page, "alina", PASSWORD)
    citizen = await citizen_asking_for_a_person(ws_url)
    conversation_id = citizen.session["conversation_id"]
    item = page.locator(f'[data-testid=queue-item][data-conversation-id="{conversation_id}"]')
    await item.get_by_test_id("accept-button").click(timeout=20_000)
    await page.get_by_test_id("transcript").last.get_by_test_id("intent-badge").first.wait_for()
    await page.get_by_test_id("knowledge-query").last.fill("Solaranlage Genehmigung")
    await page.get_by_test_id("knowledge-search").last.click()
    await page.get_by_test_id("knowledge-hit").first.wait_for(timeout=60_000)
    assert await serious_violations(page) == []
    await page.get_by_test_id("close-button").last.click()
    await citizen.close()
