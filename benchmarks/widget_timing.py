"""The widget in a real browser: how soon it is usable, how soon the bot's answer shows.

Headless Debian chromium (Playwright, the tests' flags) against the real stack on this
machine: Redis, the action server, Rasa and the gateway, started as `make run` does.

1. Page loads. Each of 30 loads of the demo portal is a fresh browser context (empty
   cache: a first visit). The widget sets `performance.mark('bs-widget-interactive')` once
   its element is defined and the launcher is rendered with its listeners attached. Timed
   from navigation start, and from when the browser started fetching widget.js (the
   script tag's own cost: download, parse, define, render).
2. Bot turns. In one page, 30 messages typed into the widget, each timed inside the page
   from the send button's click to the bot's answer being in the widget's DOM (a
   MutationObserver on the log), so the figure includes the socket round trip, the
   gateway, Rasa (and for the knowledge question the action server and index), and the
   widget's rendering, and nothing of the benchmark's own process.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics

from playwright.async_api import Browser, async_playwright

from benchmarks.assistant import running_assistant
from benchmarks.latency import percentile
from tests.test_widget_browser import CHROMIUM_ARGS

LOADS = 30
TURNS = 30
WARM_UP = 3
# Small talk and one knowledge question; nothing that hands over to a person.
MESSAGES = ["Hallo", "Bist du ein Bot?", "Was kostet ein Personalausweis?", "Danke"]
# Let a turn's further bot messages (e.g. "Hat Ihnen das geholfen?") arrive before the next.
SETTLE_S = 0.5

INTERACTIVE = """() => {
  const mark = performance.getEntriesByName('bs-widget-interactive')[0];
  const script = performance.getEntriesByType('resource')
    .find((e) => e.name.endsWith('/widget.js'));
  return {mark: mark.startTime, scriptStart: script.startTime, scriptBytes: script.transferSize};
}"""

BOT_TURN = """(text) => new Promise((resolve, reject) => {
  const root = document.querySelector('buergerservice-chat').shadowRoot;
  const log = root.querySelector('[part=log]');
  const bots = () => log.querySelectorAll('[data-from=bot]').length;
  const before = bots();
  let started = 0;
  const watch = new MutationObserver(() => {
    if (bots() > before) { watch.disconnect(); resolve(performance.now() - started); }
  });
  watch.observe(log, {childList: true});
  setTimeout(() => { watch.disconnect(); reject(new Error('no bot answer within 30 s')); }, 30000);
  root.querySelector('[part=input]').value = text;
  started = performance.now();
  root.querySelector('[part=send]').click();
})"""


async def page_loads(browser: Browser, url: str) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"from_navigation": [], "from_script": [], "bytes": []}
    for n in range(LOADS + 1):
        context = await browser.new_context(locale="de-DE")
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_function(
            "performance.getEntriesByName('bs-widget-interactive').length > 0"
        )
        figures = await page.evaluate(INTERACTIVE)
        await context.close()
        if n == 0:
            continue  # the browser's first page pays for its own start-up
        results["from_navigation"].append(figures["mark"])
        results["from_script"].append(figures["mark"] - figures["scriptStart"])
        results["bytes"].append(figures["scriptBytes"])
    return results


async def bot_turns(browser: Browser, url: str) -> list[float]:
    context = await browser.new_context(locale="de-DE")
    page = await context.new_page()
    await page.goto(url)
    await page.locator("[part=launcher]").click()
    timings = []
    for n in range(WARM_UP + TURNS):
        elapsed = await page.evaluate(BOT_TURN, MESSAGES[n % len(MESSAGES)])
        if n >= WARM_UP:
            timings.append(elapsed)
        await asyncio.sleep(SETTLE_S)
    await context.close()
    return timings


async def measure(url: str) -> tuple[dict[str, list[float]], list[float]]:
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not installed (Debian package chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            return await page_loads(browser, url), await bot_turns(browser, url)
        finally:
            await browser.close()


def run() -> dict[str, float]:
    with running_assistant("bench-widget-") as assistant:
        assert assistant.gateway is not None
        loads, turns = asyncio.run(measure(assistant.gateway.url + "/"))
    figures = {
        "loads": LOADS,
        "interactive_p50_ms": percentile(loads["from_navigation"], 50),
        "interactive_p95_ms": percentile(loads["from_navigation"], 95),
        "script_to_interactive_p50_ms": percentile(loads["from_script"], 50),
        "script_to_interactive_p95_ms": percentile(loads["from_script"], 95),
        "script_transfer_bytes": statistics.median(loads["bytes"]),
        "turns": TURNS,
        "answer_p50_ms": percentile(turns, 50),
        "answer_p95_ms": percentile(turns, 95),
        "answer_mean_ms": statistics.fmean(turns),
    }
    print(f"Widget in headless chromium, demo portal, {LOADS} first visits")
    print(f"  {'':44}{'p50':>10}{'p95':>10}")
    for key, label in (
        ("interactive", "navigation start → launcher interactive"),
        ("script_to_interactive", "widget.js requested → launcher interactive"),
    ):
        print(f"  {label:44}{figures[key + '_p50_ms']:>8.1f}ms{figures[key + '_p95_ms']:>8.1f}ms")
    print(f"  widget.js transferred: {figures['script_transfer_bytes']:.0f} bytes")
    print(f"Bot turns, {TURNS} messages in one page ({', '.join(MESSAGES)})")
    print(
        f"  {'send clicked → bot answer in the DOM':44}{figures['answer_p50_ms']:>8.1f}ms"
        f"{figures['answer_p95_ms']:>8.1f}ms   (mean {figures['answer_mean_ms']:.1f} ms)"
    )
    return figures


if __name__ == "__main__":
    run()
