"""Co-browsing in real browsers: how fast Lena's page reaches Alina's view, and what it costs.

The whole stack as `make run` starts it (Redis, actions, Rasa, gateway) and two headless
chromium contexts: Lena on the demo portal with the widget, Alina in the agent console.
Lena asks for a person, Alina (her agent socket) accepts and asks to see the page, Lena
agrees in the widget, the console opens its view, and Lena goes to the registration form.

1. Latency: 50 changes of a text on Lena's page, 200 ms apart; each timed from the change
   (in Lena's page) to the moment the same text is in the console's replayed DOM (a
   MutationObserver in the replay iframe). Both pages run in one browser on one machine,
   so their clocks are the same. The path: rrweb's recorder, the widget's 50 ms batching,
   the page socket, the gateway's redaction, Redis pub/sub, the view socket, the replayer.
2. Data: bytes the page sends over /ws/cobrowse while Lena fills the form at a person's
   pace (typing 8 characters a second, moving the mouse, scrolling, stepping through),
   per minute, including the form page's full snapshot.
3. Size: what the widget loads after consent (/cobrowse/citizen.js, gzip as served),
   beside the widget's own script.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import time
from typing import Any

import httpx
from playwright.async_api import Browser, Page, WebSocket, async_playwright

from benchmarks.assistant import running_assistant
from benchmarks.latency import percentile
from tests.agent_client import AgentClient
from tests.test_handover import PASSWORD, add_agent
from tests.test_widget_browser import CHROMIUM_ARGS

SAMPLES = 50
PACE_S = 0.2
AGENT = "bench-alina"

MUTATE = """(n) => {
  let el = document.getElementById('bench-mark');
  if (!el) { el = document.createElement('p'); el.id = 'bench-mark'; document.body.prepend(el); }
  el.textContent = 'mark-' + n;
  return Date.now();
}"""

SEEN = """(n) => new Promise((resolve, reject) => {
  const want = 'mark-' + n;
  const frame = document.querySelector('[data-testid=cobrowse-view] iframe');
  const doc = frame.contentDocument;
  const has = () => doc.getElementById('bench-mark')?.textContent === want;
  if (has()) { resolve(Date.now()); return; }
  const watch = new MutationObserver(() => {
    if (has()) { watch.disconnect(); resolve(Date.now()); }
  });
  watch.observe(doc, {subtree: true, childList: true, characterData: true});
  setTimeout(() => { watch.disconnect(); reject(new Error('not seen within 10 s')); }, 10000);
})"""


async def shared_page(browser: Browser, url: str, agent: AgentClient) -> tuple[Page, Page]:
    """Lena's page, shared with the console of `agent`, and the console."""
    lena = await (await browser.new_context(locale="de-DE")).new_page()
    await lena.goto(url + "/portal/photovoltaik")
    await lena.locator("[part=launcher]").click()
    await lena.locator("[part=input]").fill("Ich möchte mit einem Mitarbeiter sprechen")
    await lena.locator("[part=send]").click()
    await (
        lena.locator("[part=log] [data-from=system]")
        .filter(has_text="Warteschlange")
        .first.wait_for(timeout=60_000)
    )
    cid = await lena.evaluate("sessionStorage.getItem('buergerservice-chat:conversation')")
    await agent.queue_with(cid)
    await agent.accept(cid)
    await agent.send({"type": "cobrowse_request", "conversation_id": cid, "step": "view"})
    await lena.locator("[part=cobrowse-consent] button[data-act=yes]").last.click()
    await lena.locator("[part=cobrowse-banner]").wait_for()

    console = await (await browser.new_context(locale="de-DE")).new_page()
    await console.goto(url + "/agent")
    await console.evaluate(f"sessionStorage.setItem('buergerservice-agent:token', '{agent.token}')")
    await console.reload()
    frame = console.locator("[data-testid=cobrowse-view] iframe")
    await frame.wait_for(timeout=30_000)
    return lena, console


async def latencies(lena: Page, console: Page) -> list[float]:
    timings = []
    for n in range(SAMPLES + 3):
        seen = asyncio.ensure_future(console.evaluate(SEEN, n))
        await asyncio.sleep(0.02)  # the observer is in place
        sent = await lena.evaluate(MUTATE, n)
        arrived = await seen
        if n >= 3:  # warm-up
            timings.append(arrived - sent)
        await asyncio.sleep(PACE_S)
    return timings


async def form_session(lena: Page) -> dict[str, float]:
    sent: list[int] = []

    def watch(socket: WebSocket) -> None:
        if socket.url.endswith("/ws/cobrowse"):
            socket.on("framesent", lambda payload: sent.append(len(payload)))

    lena.on("websocket", watch)
    started = time.monotonic()
    await lena.get_by_role("link", name="Zum Antrag").first.click()
    await lena.get_by_label("Vorname").wait_for()
    steps: list[list[tuple[str, str]]] = [
        [("Vorname", "Lena"), ("Nachname", "Meyer"), ("E-Mail-Adresse", "lena.meyer@example.org")],
        [("Straße und Hausnummer", "Goethestraße 12"), ("Postleitzahl", "12345"),
         ("Ort", "Musterstadt")],
        [("Leistung in kWp", "9,8")],
    ]  # fmt: skip
    for fields in steps:
        for label, value in fields:
            field = lena.get_by_label(label, exact=True)
            box = await field.bounding_box()
            if box:
                await lena.mouse.move(box["x"] + 5, box["y"] + 5, steps=15)
            await field.click()
            await field.press_sequentially(value, delay=125)
            await asyncio.sleep(1.0)
        if fields is steps[-1]:
            await lena.get_by_label("Auf dem Dach oder an der Fassade").check()
            await lena.get_by_label("Nein").check()
            await lena.get_by_label("Netzbetreiber").select_option("stadtwerke-musterstadt")
        await lena.mouse.wheel(0, 400)
        await asyncio.sleep(1.0)
        await lena.get_by_role("button", name="Weiter").click()
        await asyncio.sleep(1.0)
    await asyncio.sleep(1.0)
    seconds = time.monotonic() - started
    return {"seconds": seconds, "bytes": float(sum(sent)), "frames": float(len(sent)),
            # The largest frame: the form page's full snapshot.
            "snapshot_bytes": float(max(sent, default=0))}  # fmt: skip


async def measure(url: str, agent: AgentClient) -> tuple[list[float], dict[str, float]]:
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not installed (Debian package chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            lena, console = await shared_page(browser, url, agent)
            timings = await latencies(lena, console)
            session = await form_session(lena)
            return timings, session
        finally:
            await browser.close()


def served_gzip_bytes(url: str) -> int:
    response = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
    response.raise_for_status()
    return len(gzip.compress(response.content, compresslevel=6))


async def open_agent(url: str) -> AgentClient:
    return await AgentClient.open(url, AGENT, PASSWORD)


def run() -> dict[str, Any]:
    with running_assistant("bench-cobrowse-") as assistant:
        assert assistant.gateway is not None and assistant.redis_url is not None
        url = assistant.gateway.url
        added = add_agent(assistant.redis_url, AGENT, "Alina Berger", "--skills", "general")
        assert added.returncode == 0, added.stderr

        async def main() -> tuple[list[float], dict[str, float]]:
            agent = await open_agent(url)
            try:
                return await measure(url, agent)
            finally:
                await agent.close()

        timings, session = asyncio.run(main())
        citizen_gz = served_gzip_bytes(url + "/cobrowse/citizen.js")
        widget_gz = served_gzip_bytes(url + "/widget.js")
    per_minute = session["bytes"] / session["seconds"] * 60
    figures = {
        "samples": SAMPLES,
        "dom_change_to_console_p50_ms": percentile(timings, 50),
        "dom_change_to_console_p95_ms": percentile(timings, 95),
        "form_session_s": session["seconds"],
        "form_session_bytes_per_minute": per_minute,
        "form_snapshot_bytes": session["snapshot_bytes"],
        "added_script_gzip_bytes": citizen_gz,
        "widget_script_gzip_bytes": widget_gz,
    }
    print(f"Co-browsing in headless chromium: {SAMPLES} DOM changes, {PACE_S * 1000:.0f} ms apart")
    print(f"  {'':44}{'p50':>10}{'p95':>10}")
    print(f"  {'change on Lena’s page → in Alina’s view':44}"
          f"{figures['dom_change_to_console_p50_ms']:>8.1f}ms"
          f"{figures['dom_change_to_console_p95_ms']:>8.1f}ms")  # fmt: skip
    print(f"Form session ({session['seconds']:.0f} s at a person's pace): "
          f"{per_minute / 1024:.1f} KiB/min sent by the page ({session['frames']:.0f} frames; "
          f"the form's full snapshot {session['snapshot_bytes'] / 1024:.1f} KiB)")  # fmt: skip
    print(f"Loaded after consent: /cobrowse/citizen.js {citizen_gz / 1024:.1f} KiB gzip "
          f"(the widget itself: {widget_gz / 1024:.1f} KiB gzip)")  # fmt: skip
    return figures


if __name__ == "__main__":
    run()
