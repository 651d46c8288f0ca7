"""Lena's whole journey in two real browsers, against the real stack.

Lena accepts the portal's invitation, asks about solar panels, names her listed
farmhouse and asks for a person; Alina takes the chat over in the agent console,
reads the bot's turns and the intents, and replies; Lena reloads mid-chat and
loses nothing; Alina closes and Lena's five stars are stored. The screenshots
of this journey are the ones in docs/ (see `DOCS_SHOTS`).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, ViewportSize, expect
from redis.asyncio import Redis

from tests.citizen_client import CitizenClient
from tests.services import ROOT, Service
from tests.test_agent_console_browser import sign_in
from tests.test_handover import PASSWORD, add_agent
from tests.test_widget_browser import browser, send, shot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

BOT_TURN_MS = 60_000  # one Rasa turn on a loaded, shared machine
# Only this module logs in as her: other modules' agents share the session's Redis.
ALINA = "alina-journey"
# Set DOCS_SHOTS=1 to refresh docs/widget.png and docs/agent-console.png from this journey.
DOCS_SHOTS = os.environ.get("DOCS_SHOTS") == "1"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def alina_account(redis_url: str) -> None:
    done = add_agent(redis_url, ALINA, "Alina Berger", "--skills", "bauamt,general",
                     "--capacity", "20")  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
async def warm_bot(ws_url: str) -> None:
    """One knowledge turn before the journey. The first turn after Rasa starts (cold model,
    first search in the action server) can outlast the gateway's RASA_TIMEOUT_S on a loaded
    machine; the journey is about the product warm, as citizens meet it."""
    for _ in range(3):
        citizen = await CitizenClient.open(ws_url)
        try:
            await citizen.say("Brauche ich eine Genehmigung für eine Solaranlage?")
            answer = await citizen.until(
                lambda f: f.get("from") == "bot" or f.get("type") == "error", BOT_TURN_MS / 1000
            )
        finally:
            await citizen.close()
        if answer.get("from") == "bot":
            return
    pytest.fail(f"the bot did not answer a warm-up question: {answer}")


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[tuple[BrowserContext, BrowserContext]]:  # noqa: F811
    """Lena's browser and Alina's: separate storage, as on two machines."""
    lena = await browser.new_context(locale="de-DE", viewport=VIEWPORT)
    alina = await browser.new_context(locale="de-DE", viewport=VIEWPORT)
    yield lena, alina
    await lena.close()
    await alina.close()


class Stopwatch:
    """Wall time of each step, printed at the end (run with -s to see it)."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.laps: list[tuple[str, float]] = []

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.laps.append((step, now - self.last))
        self.last = now

    def report(self) -> str:
        lines = [f"  {step:<44} {seconds:6.1f} s" for step, seconds in self.laps]
        return "\n".join([*lines, f"  {'total':<44} {time.monotonic() - self.start:6.1f} s"])


def bot_bubble(log: Locator, text: str | re.Pattern[str]) -> Locator:
    return log.locator("[data-from=bot]").filter(has_text=text)


async def log_entries(page: Page) -> list[str]:
    """Every line of the widget's log as `from: text [links]`, in order."""
    return list(
        await page.evaluate(
            """() => [...document.querySelector('buergerservice-chat').shadowRoot
                 .querySelector('[part=log]').children].map((m) => {
                   const bubble = m.querySelector('[part=bubble]');
                   const links = [...m.querySelectorAll('.links a')].map((a) => a.innerText);
                   const text = (bubble || m).innerText.trim();
                   return `${m.dataset.from}: ${text}` + (links.length ? ` [${links}]` : '');
                 })"""
        )
    )


async def stored_rating(redis_url: str, conversation_id: str) -> dict[str, str]:
    redis = Redis.from_url(redis_url, decode_responses=True)
    key = f"bs:conv:{{{conversation_id}}}:csat"
    try:
        for _ in range(100):
            meta = {str(k): str(v) for k, v in (await redis.hgetall(key)).items()}
            if "csat_score" in meta:
                break
            await asyncio.sleep(0.1)
        return meta
    finally:
        await redis.aclose()


async def test_lena_is_advised_handed_to_alina_keeps_her_chat_and_rates_it(
    contexts: tuple[BrowserContext, BrowserContext],
    gateway: Service,
    redis_url: str,
    alina_account: None,
    warm_bot: None,
) -> None:
    watch = Stopwatch()
    errors: list[str] = []
    lena, console = [await context.new_page() for context in contexts]
    for page in (lena, console):
        page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Alina is at work: with someone of the Bauamt online, handovers are queued, not tickets.
    await console.goto(gateway.url + "/agent")
    await sign_in(console, ALINA, PASSWORD)
    watch.lap("Alina logs in")

    # 1. The portal invites Lena; she accepts.
    await lena.goto(gateway.url + "/")
    await expect(lena).to_have_title(re.compile("Bürgerportal Musterstadt"))
    await lena.locator("[part=launcher]").wait_for()
    # The demo portal invites after 20 s; the attribute can be changed at any time.
    await lena.evaluate("document.querySelector('buergerservice-chat').dataset.inviteAfter = '0'")
    invitation = lena.locator("[part=invitation]")
    await expect(invitation).to_contain_text("Kann ich Ihnen helfen?")
    await lena.screenshot(path=shot("journey-1-invitation"))
    await invitation.locator("[part=invitation-accept]").click()
    await expect(lena.locator("[part=panel]")).to_be_visible()
    await expect(lena.locator("[part=input]")).to_be_focused()
    await expect(invitation).to_be_hidden()
    watch.lap("portal, invitation accepted")

    # 2. The knowledge answer, the advisor's question, the advice and the offer of a person.
    log = lena.locator("[part=log]")
    await send(lena, "Brauche ich eine Genehmigung für die Solarmodule auf meinem Dach?")
    answer = bot_bubble(log, "Photovoltaikanlage")
    await expect(answer.locator(".links a").first).to_contain_text(
        re.compile("^Photovoltaikanlage"), timeout=BOT_TURN_MS
    )
    watch.lap("knowledge answer")
    # The roof was in her question; the advisor asks what it does not know yet.
    await expect(log.locator("[data-from=bot]").last).to_contain_text(
        "Gebäude", timeout=BOT_TURN_MS
    )
    watch.lap("advisor asks about the building")
    await lena.screenshot(path=shot("journey-2-advisor"))

    await send(lena, "Es ist ein altes Bauernhaus und steht unter Denkmalschutz")
    advice = bot_bubble(log, "Weil Ihr Gebäude ein Baudenkmal ist")
    await expect(advice.locator(".links a")).to_contain_text(
        ["Denkmalrechtliche Erlaubnis"], timeout=BOT_TURN_MS
    )
    offer = log.get_by_role("group").filter(
        has=lena.get_by_role("button", name="Ja, bitte verbinden")
    )
    await expect(offer.get_by_role("button")).to_have_text(
        ["Ja, bitte verbinden", "Nein, danke"], timeout=BOT_TURN_MS
    )
    watch.lap("advice and offer of a person")
    await lena.screenshot(path=shot("journey-3-offer"))

    await offer.get_by_role("button", name="Ja, bitte verbinden").click()
    await expect(log.locator("[data-from=citizen] [part=bubble]").last).to_have_text(
        "Ja, bitte verbinden"
    )
    await expect(bot_bubble(log, "Chatverlauf wird übergeben")).to_contain_text(
        "Ich verbinde Sie mit der Bauberatung", timeout=BOT_TURN_MS
    )
    queued = log.locator("[data-from=system]").filter(has_text="Warteschlange")
    await expect(queued).to_have_text(
        [re.compile(r"Sie sind in der Warteschlange( \(Position \d+\))?\.")], timeout=BOT_TURN_MS
    )
    await expect(offer).to_be_hidden()  # answered: the buttons are retired
    conversation_id = await lena.evaluate(
        "sessionStorage.getItem('buergerservice-chat:conversation')"
    )
    watch.lap("handover, queued")
    await lena.screenshot(path=shot("journey-4-queued"))

    # 3. Alina sees why the chat waits, takes it and reads what the bot did.
    item = console.locator(f'[data-testid=queue-item][data-conversation-id="{conversation_id}"]')
    await expect(item).to_contain_text("Warteschlange: bauamt", timeout=20_000)
    await expect(item).to_contain_text("Denkmalschutz – Einzelfallprüfung")
    await expect(item).to_contain_text("PV-Berater: ")  # the bot's summary, not "Ja, bitte"
    await console.screenshot(path=shot("journey-5-console-queue"))
    await item.get_by_test_id("accept-button").click()
    chat = console.locator(f'[role=tabpanel][data-conversation-id="{conversation_id}"]')
    transcript = chat.get_by_test_id("transcript")
    citizen_turns = transcript.locator("[data-from=citizen]")
    await expect(citizen_turns.locator(".txt")).to_have_text(
        [
            "Brauche ich eine Genehmigung für die Solarmodule auf meinem Dach?",
            "Es ist ein altes Bauernhaus und steht unter Denkmalschutz",
            "Ja, bitte verbinden",
        ]
    )
    badges = await citizen_turns.get_by_test_id("intent-badge").all_inner_texts()
    print(f"\nIntents of Lena's turns: {badges}")
    assert len(badges) == 3 and any("pv_advice" in b for b in badges), badges
    assert "affirm" in badges[-1], badges
    bot_turns = transcript.locator("[data-from=bot]")
    await expect(bot_turns.locator(".ac-links a").first).to_contain_text("Photovoltaikanlage")
    await expect(bot_turns.filter(has_text="Weil Ihr Gebäude ein Baudenkmal ist")).to_have_count(1)
    await expect(bot_turns.filter(has_text="Chatverlauf wird übergeben")).to_have_count(1)
    await expect(transcript).to_contain_text("Denkmalschutz – Einzelfallprüfung")
    watch.lap("Alina accepts, transcript shown")

    reply = (
        "Guten Tag, hier ist Alina vom Bauamt. Bei einem Baudenkmal schauen wir uns die "
        "Dachflächen gemeinsam an – haben Sie ein Foto Ihres Hauses?"
    )
    await chat.get_by_test_id("composer-input").fill(reply)
    await chat.get_by_test_id("composer-send").click()
    await expect(transcript.locator("[data-from=agent] .txt")).to_have_text([reply])

    # 4. Lena gets the reply with Alina's name, reloads, and has lost nothing.
    from_alina = log.locator("[data-from=agent]")
    await expect(from_alina.locator("[part=bubble]")).to_have_text([reply], timeout=15_000)
    await expect(from_alina).to_contain_text("Alina Berger")
    watch.lap("Alina's reply reaches Lena")
    await lena.screenshot(path=shot("journey-6-with-alina"))
    await console.screenshot(path=shot("journey-7-console-chat"), full_page=True)
    if DOCS_SHOTS:
        await document(lena, console)

    before = await log_entries(lena)
    assert len(before) == len(set(before)), before
    await lena.reload()
    await lena.locator("[part=launcher]").wait_for()
    if await lena.locator("[part=panel]").is_hidden():
        await lena.locator("[part=launcher]").click()
    await expect(from_alina.locator("[part=bubble]")).to_have_text([reply], timeout=15_000)
    await expect(lena.locator("[part=input]")).to_be_visible()
    assert await log_entries(lena) == before
    watch.lap("reload, everything still there")

    # 5. Alina closes; Lena gives five stars and they are stored.
    await chat.get_by_test_id("close-button").click()
    stars = lena.get_by_role("group", name="Wie zufrieden waren Sie mit dem Gespräch?")
    await expect(stars.get_by_role("radio")).to_have_count(5, timeout=15_000)
    await stars.get_by_role("radio", name="5 von 5 Sternen").check()
    # Focus deep in a long log scrolls the log, never the panel (its header stays in view).
    assert await lena.locator("[part=panel]").evaluate("el => el.scrollTop") == 0
    await lena.screenshot(path=shot("journey-8-rating"))
    await lena.get_by_role("button", name="Bewertung senden").click()
    await expect(log).to_contain_text("Vielen Dank für Ihre Rückmeldung!")
    meta = await stored_rating(redis_url, conversation_id)
    assert meta.get("csat_score") == "5", meta
    watch.lap("closed, rated, stored")

    print(f"\nLena's journey ({conversation_id}):\n{watch.report()}")
    assert errors == [], f"JavaScript errors on the pages: {errors}"


async def document(lena: Page, console: Page) -> None:
    """The README's pictures: Lena's widget in the chat with Alina, Alina's console with it."""
    panel = await lena.locator("[part=panel]").bounding_box()
    assert panel is not None
    # The log as Lena sees it, ending with Alina's reply; a strip of the portal beside it.
    left = panel["x"] - 260
    await lena.screenshot(
        path=ROOT / "docs" / "widget.png",
        clip={"x": left, "y": 0, "width": VIEWPORT["width"] - left, "height": VIEWPORT["height"]},
    )
    # The console from the top; the transcript scrolled to Lena's first turn and its intent.
    await console.evaluate("window.scrollTo(0, 0)")
    await console.get_by_test_id("transcript").evaluate(
        """log => {
             const first = log.querySelector('[data-from=citizen]');
             log.scrollTop = first.offsetTop - log.offsetTop - 4;
           }"""
    )
    await console.get_by_test_id("composer-input").blur()
    await console.screenshot(path=ROOT / "docs" / "agent-console.png")
