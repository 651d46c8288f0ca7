"""The demo portal's service page and application form in a real browser, keyboard only.

Debian's chromium through Playwright, against a real gateway and Redis (no Rasa:
the form does not need the bot). The pages run under their real
Content-Security-Policy; axe-core is evaluated through the DevTools protocol,
which the policy does not govern, on the service page and on every state of the
form: each step, the error state and the success message.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, expect
from redis.asyncio import Redis

from tests.services import Service, free_port, start_gateway
from tests.test_accessibility_browser import AXE, WCAG_AA
from tests.test_widget_browser import browser, shot  # noqa: F401

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64


@pytest.fixture(scope="module")
def gateway(service_dir: Path, redis_url: str) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-portal", redis_url, rasa_port=free_port())
    yield service
    service.stop()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:  # noqa: F811
    if not AXE.exists():
        pytest.fail(f"axe-core missing at {AXE}; `make test` installs it with npm")
    context = await browser.new_context(locale="de-DE")
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    def console(message: ConsoleMessage) -> None:
        # A blocked inline script or style shows up here, not as a page error.
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(message.text)

    page.on("console", console)
    yield page
    await context.close()
    assert problems == [], f"errors on the page: {problems}"


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings (WCAG 2.1 A and AA) on the page as it is."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE.read_text())
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


FOCUSED = """() => {
  const el = document.activeElement;
  return {id: el.id, tag: el.tagName.toLowerCase(), text: (el.textContent || '').trim()};
}"""


async def focused(page: Page) -> dict[str, str]:
    result: dict[str, str] = await page.evaluate(FOCUSED)
    return result


async def tab_to(page: Page, *, id: str | None = None, text: str | None = None) -> None:
    """Press Tab until the element with `id` (or the link or button saying `text`) has focus."""
    for _ in range(40):
        await page.keyboard.press("Tab")
        now = await focused(page)
        if (id is not None and now["id"] == id) or (text is not None and now["text"] == text):
            return
    raise AssertionError(f"Tab never reached {id or text!r}; focus is on {now}")


async def type_into_focused(page: Page, text: str) -> None:
    await page.keyboard.type(text, delay=5)


async def test_a_citizen_applies_with_the_keyboard_alone(
    page: Page, gateway: Service, redis: Redis
) -> None:
    await page.goto(gateway.url + "/")
    await tab_to(page, text="Mehr zur Photovoltaik")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(gateway.url + "/portal/photovoltaik")
    await expect(page.locator("h1")).to_have_text("Photovoltaikanlage anmelden")
    assert await serious_violations(page) == []
    await page.screenshot(path=shot("portal-service-page"), full_page=True)

    await tab_to(page, text="Zum Antrag")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(gateway.url + "/portal/photovoltaik/antrag")
    await expect(page).to_have_title(re.compile("^Schritt 1 von 5: Antragstellerin"))
    await expect(page.locator("#step-2")).to_be_hidden()
    assert await serious_violations(page) == []

    # Step 1, with a mistake: the error summary takes focus and links to the field.
    await tab_to(page, id="first_name")
    await type_into_focused(page, "Lena")
    await page.keyboard.press("Tab")
    await type_into_focused(page, "Schmidt")
    await page.keyboard.press("Tab")
    await type_into_focused(page, "lena@example")
    await page.keyboard.press("Enter")
    summary = page.locator("#error-summary")
    await expect(summary).to_be_visible()
    await expect(summary).to_be_focused()
    await expect(summary.locator("a")).to_have_text(
        ["Geben Sie eine E-Mail-Adresse im richtigen Format ein, zum Beispiel name@beispiel.de."]
    )
    email = page.locator("#email")
    await expect(email).to_have_attribute("aria-invalid", "true")
    await expect(email).to_have_attribute("aria-describedby", "email-hint email-error")
    await expect(page.locator("#email-error")).to_contain_text("Fehler: Geben Sie eine E-Mail")
    await expect(page.locator("#first_name")).not_to_have_attribute("aria-invalid", "true")
    await expect(page).to_have_title(re.compile("^Fehler: Schritt 1 von 5"))
    assert await serious_violations(page) == []
    await page.screenshot(path=shot("portal-form-error"), full_page=True)

    await page.keyboard.press("Tab")  # the summary's link
    await page.keyboard.press("Enter")
    await expect(email).to_be_focused()
    await page.keyboard.press("Control+A")
    await type_into_focused(page, "lena.schmidt@example.org")
    await page.keyboard.press("Enter")

    # Step 2: focus is on the step's heading, which says where the citizen is.
    heading = page.locator("#step-2-heading")
    await expect(heading).to_be_focused()
    await expect(heading).to_contain_text("Schritt 2 von 5")
    await expect(summary).to_be_hidden()
    await expect(page.locator("#steps [aria-current=step]")).to_have_text("Adresse der Anlage")
    assert await serious_violations(page) == []
    await page.keyboard.press("Tab")
    await expect(page.locator("#street")).to_be_focused()
    await type_into_focused(page, "Lindenweg 5")
    await page.keyboard.press("Tab")
    await type_into_focused(page, "12345")
    await page.keyboard.press("Tab")
    await type_into_focused(page, "Musterstadt")
    await page.keyboard.press("Enter")

    # Step 3: radios, the output in kWp, a select.
    await expect(page.locator("#step-3-heading")).to_be_focused()
    assert await serious_violations(page) == []
    await page.keyboard.press("Tab")
    await expect(page.locator("#installation_type")).to_be_focused()
    await page.keyboard.press("Space")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Leistung in kWp", exact=True)).to_be_focused()
    await type_into_focused(page, "9,8")
    await page.keyboard.press("Tab")
    await expect(page.locator("#listed_building")).to_be_focused()
    await page.keyboard.press("Space")
    await page.keyboard.press("Tab")
    await expect(page.locator("#grid_operator")).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(page.locator("#grid_operator")).to_have_value("stadtwerke-musterstadt")
    await tab_to(page, id="next")
    await page.keyboard.press("Enter")

    # Step 4: the upload, chosen from the keyboard.
    await expect(page.locator("#step-4-heading")).to_be_focused()
    assert await serious_violations(page) == []
    await page.keyboard.press("Tab")
    await expect(page.locator("#upload")).to_be_focused()
    async with page.expect_file_chooser() as chooser:
        await page.keyboard.press("Space")
    await (await chooser.value).set_files(
        {"name": "lageplan.png", "mimeType": "image/png", "buffer": PNG}
    )
    await tab_to(page, id="next")
    await page.keyboard.press("Enter")

    # Step 5: what was entered, masked for co-browsing, then the confirmation.
    await expect(page.locator("#step-5-heading")).to_be_focused()
    shown = page.locator("#summary dd")
    await expect(shown).to_have_text([
        "Lena", "Schmidt", "lena.schmidt@example.org", "Nicht angegeben",
        "Lindenweg 5", "12345", "Musterstadt",
        "Auf dem Dach oder an der Fassade", "9,8 kWp", "Ja", "Stadtwerke Musterstadt Netz GmbH",
        re.compile(r"^lageplan\.png \("),
    ])  # fmt: skip
    assert await shown.evaluate_all("cells => cells.every(c => c.matches('.cobrowse-mask'))")
    await expect(page.locator("#next")).to_have_text("Antrag absenden")
    assert await serious_violations(page) == []
    await page.screenshot(path=shot("portal-form-confirmation"), full_page=True)

    await tab_to(page, id="next")  # past the unticked confirmation
    await page.keyboard.press("Enter")
    await expect(summary).to_be_focused()
    await expect(page.locator("#confirm")).to_have_attribute("aria-invalid", "true")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm")).to_be_focused()
    await page.keyboard.press("Space")
    await tab_to(page, id="next")
    await page.keyboard.press("Enter")

    done = page.locator("#done")
    await expect(done).to_be_focused(timeout=15_000)
    await expect(done.locator("h2")).to_have_text("Ihr Antrag ist eingegangen")
    number = await page.locator("#application-number").text_content()
    assert number and re.fullmatch(r"PV-\d{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", number)
    await expect(page.locator("#pv-form")).to_be_hidden()
    await expect(page).to_have_title(re.compile("^Antrag eingegangen"))
    assert await serious_violations(page) == []
    await page.screenshot(path=shot("portal-form-received"), full_page=True)

    stored = await redis.hgetall(f"bs:application:{{{number}}}")
    assert stored["email"] == "lena.schmidt@example.org" and stored["power_kwp"] == "9.8"
    assert stored["upload_type"] == "image/png" and stored["upload_name"] == "lageplan.png"
    assert stored["grid_operator"] == "stadtwerke-musterstadt"


@pytest.fixture(scope="module")
def limited_gateway(service_dir: Path, redis_url: str) -> Iterator[Service]:
    service = start_gateway(
        service_dir, "gateway-portal-limited", redis_url, rasa_port=free_port(),
        env={"ADDRESS_APPLICATION_LIMITS": "1/hour"},
    )  # fmt: skip
    yield service
    service.stop()


async def test_a_refusal_by_the_gateway_is_shown_in_the_error_summary(
    page: Page, limited_gateway: Service, redis: Redis
) -> None:
    async for key in redis.scan_iter(match="bs:limit:*address_application/*"):
        await redis.delete(key)
    async with httpx.AsyncClient(base_url=limited_gateway.url) as client:
        spent = await client.post("/api/applications/pv", files={"upload": ("", b"")})
    assert spent.status_code == 422  # the one application this client may send this hour

    await page.goto(limited_gateway.url + "/portal/photovoltaik/antrag")
    steps = [
        {"#first_name": "Lena", "#last_name": "Schmidt", "#email": "lena@example.org"},
        {"#street": "Lindenweg 5", "#postal_code": "12345", "#city": "Musterstadt"},
    ]
    for values in steps:
        for selector, value in values.items():
            await page.locator(selector).fill(value)
        await page.locator("#next").click()
    await page.locator("#installation_type").check()
    await page.locator("#power_kwp").fill("12.5")
    await page.locator("#listed_building-nein").check()
    await page.locator("#grid_operator").select_option("unbekannt")
    await page.locator("#next").click()
    await page.locator("#next").click()  # no upload: it is optional
    await expect(page.locator("#summary [data-show=upload]")).to_have_text("Keine Datei")
    await page.locator("#confirm").check()
    await page.locator("#next").click()

    summary = page.locator("#error-summary")
    await expect(summary).to_be_focused()
    await expect(summary.locator("li")).to_have_text([re.compile("einigen Minuten erneut")])
    await expect(page.locator("#step-5")).to_be_visible()
    await expect(page.locator("#next")).to_be_enabled()
    await expect(page.locator("#done")).to_be_hidden()
