"""The agent console in a real browser: the supervisor's view of colleagues, and a chat
taken away from an agent by a supervisor's transfer."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.agent_client import AgentClient
from tests.services import Service
from tests.test_accessibility_browser import page, serious_violations  # noqa: F401
from tests.test_agent_console_browser import sign_in
from tests.test_handover import PASSWORD, agents, citizen_asking_for_a_person  # noqa: F401
from tests.test_widget_browser import browser  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.rasa]


async def test_a_supervisor_sees_colleagues_and_their_load_in_an_accessible_table(
    page: Page,  # noqa: F811
    gateway: Service,
    ws_url: str,
    agents: None,  # noqa: F811
) -> None:
    await page.goto(gateway.url + "/agent")
    await sign_in(page, "sabine", PASSWORD)
    table = page.get_by_test_id("agents-table")
    await expect(table.locator("caption")).to_have_text("Kolleg/innen und Auslastung")
    bernd_row = table.locator("tr[data-agent-id=bernd]")
    await expect(bernd_row.locator("th[scope=row]")).to_have_text("Bernd Vogel")
    await expect(bernd_row).to_contain_text("abgemeldet")

    bernd = await AgentClient.open(gateway.url, "bernd", PASSWORD)
    await expect(bernd_row).to_contain_text("angemeldet")
    citizen = await citizen_asking_for_a_person(ws_url)
    conversation_id = citizen.session["conversation_id"]
    await bernd.queue_with(conversation_id)
    await bernd.accept(conversation_id)
    await expect(bernd_row.locator("td.n")).to_have_text("1 von 20")
    assert await serious_violations(page) == []

    await bernd.send({"type": "close", "conversation_id": conversation_id})
    await expect(bernd_row.locator("td.n")).to_have_text("0 von 20")
    await bernd.close()
    await expect(bernd_row).to_contain_text("abgemeldet")
    await citizen.close()


async def test_an_agent_whose_chat_a_supervisor_transfers_is_told_in_the_console(
    page: Page,  # noqa: F811
    gateway: Service,
    ws_url: str,
    agents: None,  # noqa: F811
) -> None:
    await page.goto(gateway.url + "/agent")
    await sign_in(page, "bernd", PASSWORD)
    citizen = await citizen_asking_for_a_person(ws_url)
    conversation_id = citizen.session["conversation_id"]
    item = page.locator(f'[data-testid=queue-item][data-conversation-id="{conversation_id}"]')
    await item.get_by_test_id("accept-button").click(timeout=20_000)
    tab = page.locator(f'[data-testid=chat-tab][data-conversation-id="{conversation_id}"]')
    await expect(tab).to_be_visible()
    # No chat is left half-open: wait until the server has it with Bernd.
    await citizen.until(lambda f: f.get("state") == "with_agent")

    sabine = await AgentClient.open(gateway.url, "sabine", PASSWORD)
    await sabine.send({"type": "transfer", "conversation_id": conversation_id, "queue": "bauamt"})
    await expect(page.locator(".ac-ended").last).to_contain_text(
        "Die Leitung hat das Gespräch in eine andere Warteschlange weitergeleitet."
    )
    await expect(tab).to_contain_text("(beendet)")
    await citizen.send({"type": "end"})
    await sabine.close()
    await citizen.close()
