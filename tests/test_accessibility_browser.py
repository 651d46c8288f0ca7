"""BITV 2.0 / WCAG 2.1 AA: axe-core finds no serious or critical violation in what people use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.services import ROOT, Service
from tests.test_agent_console_browser import log_in
from tests.test_handover import PASSWORD, agents, citizen_asking_for_a_person  # noqa: F401
from tests.test_widget_browser import browser, send  # noqa: F401

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
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def test_the_open_widget_with_a_conversation(page: Page, gateway: Service) -> None:
    await page.goto(gateway.url + "/")
    await page.locator("[part=launcher]").click()
    await send(page, "Hallo")
    await page.locator("[data-from=bot] [part=quick-reply]").first.wait_for(timeout=30_000)
    assert await serious_violations(page) == []


async def test_the_invitation(page: Page, gateway: Service) -> None:
    await page.goto(gateway.url + "/")
    # The demo portal invites after 20 s; the attribute can be changed at any time.
    await page.evaluate("document.querySelector('buergerservice-chat').dataset.inviteAfter = '0'")
    await page.locator("[part=invitation]").wait_for()
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
    await log_in(page, "alina", PASSWORD)
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
