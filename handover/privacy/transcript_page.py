"""A conversation export as a readable, accessible HTML page (German first).

Self-contained (no scripts, no external resources), so it opens offline from
the download folder: a heading per conversation, the facts as a description
list, the messages as an ordered list with their time, and the rating. All
text is escaped; links are shown as text, never made clickable.
"""

from __future__ import annotations

from html import escape
from typing import Any

SENDERS = {"citizen": "Sie", "bot": "Digitaler Assistent", "agent": "Bürgerservice"}
STATES = {"bot": "beim digitalen Assistenten", "queued": "in der Warteschlange",
          "with_agent": "bei einer Mitarbeiterin / einem Mitarbeiter",
          "closed": "beendet"}  # fmt: skip
CSS = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
    "color:#1b1f24}h1,h2{line-height:1.25}dt{font-weight:650}dd{margin:0 0 .5rem}"
    "ol{padding-left:0;list-style:none}li{margin:0 0 1rem;padding:.5rem .75rem;"
    "border-left:4px solid #0b4f8a;background:#f4f6f9}.who{font-weight:650}"
    "time{color:#434d5a;font-size:.9rem}p{margin:.25rem 0;white-space:pre-wrap}"
)


def _event_item(event: dict[str, Any]) -> str:
    ts = escape(str(event.get("ts", "")))
    time = f'<time datetime="{ts}">{ts.replace("T", " ").rstrip("Z")[:19]} UTC</time>'
    if event.get("type") == "message":
        who = SENDERS.get(str(event.get("from")), "")
        agent = (event.get("agent") or {}).get("name")
        if agent:
            who = f"{who} ({agent})"
        text = escape(str(event.get("text", "")))
        links = "".join(
            f"<p>Link: {escape(str(link.get('title', '')))} – "
            f"{escape(str(link.get('url', '')))}</p>"
            for link in event.get("links") or []
        )
        return f'<li><span class="who">{escape(who)}</span> {time}<p>{text}</p>{links}</li>'
    if event.get("type") == "note":
        return (
            f'<li><span class="who">Interne Notiz</span> {time}'
            f"<p>{escape(str(event.get('text', '')))}</p></li>"
        )
    if event.get("type") == "state":
        state = STATES.get(str(event.get("state")), str(event.get("state")))
        return f'<li><span class="who">Status</span> {time}<p>Gespräch {escape(state)}</p></li>'
    return ""


def render(bundle: dict[str, Any]) -> str:
    """The whole bundle as one HTML document."""
    parts = [
        '<!doctype html><html lang="de"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Ihr Gespräch mit dem Bürgerservice</title><style>{CSS}</style></head><body>",
        "<main><h1>Ihr Gespräch mit dem Bürgerservice</h1>",
        f"<p>Export vom {escape(str(bundle.get('exported_at', '')))} (UTC). "
        "Diese Seite enthält alles, was zu diesem Gespräch gespeichert ist.</p>",
    ]
    for conversation in bundle.get("conversations", []):
        cid = escape(str(conversation.get("conversation_id", "")))
        state = STATES.get(str(conversation.get("state")), str(conversation.get("state", "")))
        parts.append(f'<section aria-labelledby="c-{cid}"><h2 id="c-{cid}">Gespräch {cid}</h2>')
        parts.append(
            "<dl>"
            f"<dt>Begonnen</dt><dd>{escape(str(conversation.get('created_at', '–')))}</dd>"
            f"<dt>Stand</dt><dd>{escape(state)}</dd>"
            f"<dt>Kanal</dt><dd>{escape(str(conversation.get('channel', 'web')))}</dd>"
            "</dl>"
        )
        parts.append("<h3>Verlauf</h3><ol>")
        parts.extend(_event_item(event) for event in conversation.get("events", []))
        parts.append("</ol>")
        rating = conversation.get("rating")
        if rating:
            comment = escape(str(rating.get("comment") or "–"))
            parts.append(f"<h3>Ihre Bewertung</h3><p>{int(rating['score'])} von 5 Sternen. "
                         f"Kommentar: {comment}</p>")  # fmt: skip
        understanding = conversation.get("understanding") or []
        if understanding:
            parts.append("<h3>Was der Assistent verstanden hat</h3><ul>")
            for turn in understanding:
                intent = escape(str((turn.get("intent") or {}).get("name", "–")))
                parts.append(f"<li>Nachricht {int(turn.get('seq', 0))}: {intent}</li>")
            parts.append("</ul>")
        parts.append("</section>")
    for ticket in bundle.get("tickets", []):
        parts.append(f"<section><h2>Nachricht {escape(str(ticket.get('id', '')))}</h2>"
                     f"<p>{escape(str(ticket.get('text', '')))}</p>"
                     f"<p>Kontakt: {escape(str(ticket.get('contact', '')))}</p>"
                     "</section>")  # fmt: skip
    for case in bundle.get("cases", []):
        parts.append(f"<section><h2>Meldung {escape(str(case.get('case_number', '')))}</h2>"
                     f"<p>{escape(str(case.get('location', '')))}: "
                     f"{escape(str(case.get('description', '')))}</p>"
                     f"<p>Status: {escape(str(case.get('status', '')))}</p></section>")  # fmt: skip
    parts.append("</main></body></html>")
    return "".join(parts)
