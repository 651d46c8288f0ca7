"""Step 4 of Lena's journey in two real browsers: Alina guides her through the form.

Lena's chat is taken over by Alina; Alina asks to see the page and Lena first declines,
then agrees; Alina's console replays the portal page, follows Lena to the registration
form and shows it without what Lena types (in the replayed DOM and in every frame the
gateway relayed); with a second yes Alina highlights "Leistung in kWp" and Lena sees and
hears it; Lena submits and gets her application number, then ends the sharing. axe finds
no serious or critical violation in the consent card, the form with the banner and the
highlight, and the console's co-browse view.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocket, expect

from handover.settings import PV_FORM_PATH
from tests.services import Service
from tests.test_accessibility_browser import serious_violations
from tests.test_agent_console_browser import sign_in
from tests.test_handover import PASSWORD, add_agent
from tests.test_widget_browser import browser, send  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

BOT_TURN_MS = 60_000
ALINA = "alina-cobrowse"
TYPED = ["Meyer", "lena.meyer@example.org", "Goethestraße 12"]


@pytest.fixture(scope="module")
def alina_account(redis_url: str) -> None:
    done = add_agent(redis_url, ALINA, "Alina Berger", "--skills", "general", "--capacity", "20")
    assert done.returncode == 0, done.stderr


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[tuple[BrowserContext, BrowserContext]]:  # noqa: F811
    # CSP is bypassed only so that axe can be injected; `make bench BENCH=cobrowse` runs
    # the same path under the gateway's Content-Security-Policy.
    options: dict[str, Any] = {"locale": "de-DE", "viewport": {"width": 1280, "height": 900},
                               "bypass_csp": True}  # fmt: skip
    lena = await browser.new_context(**options)
    alina = await browser.new_context(**options)
    yield lena, alina
    await lena.close()
    await alina.close()


async def no_serious_violations(page: Page, what: str) -> None:
    found = await serious_violations(page)
    assert found == [], f"{what}: {found}"


async def answer_consent(lena: Page, button: str) -> None:
    card = lena.locator("[part=cobrowse-consent]").last
    await expect(card.get_by_role("button", name=button)).to_be_visible()
    await card.get_by_role("button", name=button).click()


async def test_alina_guides_lena_through_the_form_with_her_consent(
    contexts: tuple[BrowserContext, BrowserContext], gateway: Service, alina_account: None
) -> None:
    lena_context, alina_context = contexts
    console = await alina_context.new_page()
    relayed: list[str] = []

    def watch(socket: WebSocket) -> None:
        if "/ws/cobrowse" in socket.url:
            socket.on("framereceived", lambda payload: relayed.append(str(payload)))

    console.on("websocket", watch)
    await console.goto(gateway.url + "/agent")
    await sign_in(console, ALINA, PASSWORD)

    lena = await lena_context.new_page()
    await lena.goto(gateway.url + "/portal/photovoltaik")
    await lena.locator("[part=launcher]").click()
    await send(lena, "Ich möchte mit einem Mitarbeiter sprechen")
    queued = lena.locator("[part=log] [data-from=system]").filter(has_text="Warteschlange")
    await expect(queued.first).to_be_visible(timeout=BOT_TURN_MS)
    conversation_id = await lena.evaluate(
        "sessionStorage.getItem('buergerservice-chat:conversation')"
    )
    item = console.locator(f'[data-testid=queue-item][data-conversation-id="{conversation_id}"]')
    await item.get_by_test_id("accept-button").click(timeout=20_000)
    transcript = console.get_by_test_id("transcript").last
    view = console.get_by_test_id("cobrowse-view").last

    # Asked, declined: nothing is shown. Asked again, agreed: Alina sees the page.
    await console.get_by_test_id("cobrowse-request").last.click()
    card = lena.locator("[part=cobrowse-consent]").last
    await expect(card).to_contain_text("Alina Berger möchte die Seite des Bürgerportals sehen")
    await expect(card).to_contain_text("Nicht sichtbar: was Sie in Formularfelder eingeben")
    await no_serious_violations(lena, "the consent card")
    await answer_consent(lena, "Ablehnen")
    await expect(transcript).to_contain_text("Bürger/in hat abgelehnt.")
    await expect(view).to_be_hidden()
    await console.get_by_test_id("cobrowse-request").last.click()
    await answer_consent(lena, "Zulassen")
    banner = lena.locator("[part=cobrowse-banner]")
    await expect(banner).to_contain_text("Alina Berger sieht diese Seite")
    page = view.frame_locator("iframe")
    await expect(page.locator("h1")).to_contain_text("Photovoltaik", timeout=20_000)
    await expect(console.get_by_test_id("cobrowse-status").last).to_contain_text(
        "/portal/photovoltaik"
    )
    await no_serious_violations(console, "the console's co-browse view")

    # Lena goes to the form: the view follows; what she types stays hers.
    await lena.get_by_role("link", name="Zum Antrag").first.click()
    await expect(banner).to_contain_text("Alina Berger sieht diese Seite")
    await expect(page.get_by_text("Schritt 1 von 5")).to_be_visible(timeout=20_000)
    await lena.get_by_label("Vorname").fill("Lena")
    await lena.get_by_label("Nachname").fill("Meyer")
    await lena.get_by_label("E-Mail-Adresse").fill("lena.meyer@example.org")
    # Live, the gateway drops the input events of fields that are not allow-listed: the
    # fields stay empty in the view. Alina joining again gets a fresh snapshot, masked.
    await expect(page.locator("#email")).to_be_visible()
    await asyncio.sleep(0.5)
    await expect(page.locator("#last_name")).to_have_value("")
    await console.reload()
    await expect(page.locator("#last_name")).to_have_value("*****", timeout=20_000)
    await expect(page.locator("#email")).to_have_value("*" * len("lena.meyer@example.org"))
    await lena.get_by_role("button", name="Weiter").click()
    await lena.get_by_label("Straße und Hausnummer").fill("Goethestraße 12")
    await lena.get_by_label("Postleitzahl").fill("12345")
    await lena.get_by_label("Ort", exact=True).fill("Musterstadt")
    await lena.get_by_role("button", name="Weiter").click()
    await expect(page.get_by_text("Leistung in kWp")).to_be_visible()
    await no_serious_violations(lena, "the form with the sharing banner")

    # A second yes lets Alina highlight the field; Lena sees it and her reader says it.
    await console.get_by_test_id("cobrowse-request-pointer").last.click()
    await answer_consent(lena, "Zulassen")
    await console.get_by_test_id("cobrowse-highlight").last.click()
    field = await page.locator("#power_kwp").bounding_box()
    assert field is not None
    await console.mouse.click(field["x"] + field["width"] / 2, field["y"] + field["height"] / 2)
    await expect(lena.locator(".cb-highlight")).to_be_visible()
    await expect(lena.locator(".cbs")).to_have_text("Alina Berger hebt hervor: Leistung in kWp")
    await no_serious_violations(lena, "the form with a highlight")

    await lena.get_by_label("Auf dem Dach oder an der Fassade").check()
    await lena.get_by_label("Leistung in kWp").fill("9,8")
    await lena.get_by_label("Nein").check()
    await lena.get_by_label("Netzbetreiber").select_option("stadtwerke-musterstadt")
    await expect(page.locator("#power_kwp")).to_have_value("9,8")  # allow-listed: in clear
    await lena.get_by_role("button", name="Weiter").click()
    await lena.get_by_role("button", name="Weiter").click()
    await lena.get_by_label(re.compile("Ich bestätige")).check()
    await lena.get_by_role("button", name="Antrag absenden").click()
    await expect(lena.get_by_text("Ihr Antrag ist eingegangen")).to_be_visible(timeout=20_000)
    await expect(lena.locator("#application-number")).to_have_text(re.compile(r"\S+"))

    # Alina offers a page; it opens in Lena's tab when she says so, and sharing goes on there.
    link = console.locator("[data-testid=cobrowse-view]").last.locator("xpath=..")
    await link.get_by_label("Seite vorschlagen").fill("/portal/photovoltaik")
    await link.get_by_role("button", name="Senden").click()
    offer = lena.locator("[part=log]").get_by_role(
        "button", name="Seite öffnen: /portal/photovoltaik"
    )
    await offer.click()
    await expect(lena).to_have_url(gateway.url + "/portal/photovoltaik")
    await expect(banner).to_contain_text("Alina Berger sieht diese Seite")
    await expect(page.locator("h1")).to_contain_text("Photovoltaik", timeout=20_000)

    # Lena ends the sharing: gone on both sides, and the transcript says who saw what.
    await banner.get_by_role("button", name="Beenden").click()
    await expect(banner).to_be_hidden()
    await expect(view).to_be_hidden(timeout=10_000)
    await expect(transcript).to_contain_text("Bildschirm ansehen beendet (von Bürger/in).")
    await expect(transcript).to_contain_text(f"Alina Berger sieht die Seite {PV_FORM_PATH}.")
    assert relayed, "the console received no co-browse frame"
    leaked = [value for value in TYPED if any(value in frame for frame in relayed)]
    assert leaked == []
