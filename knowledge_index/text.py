"""HTML to clean text, and whitespace normalisation for every source."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
}
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\ufeff\u00ad]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def normalise(text: str) -> str:
    """Drop zero-width characters, collapse spaces, keep paragraph breaks."""
    text = _INVISIBLE.sub("", unescape(text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable text from catalogue HTML: paragraphs and list items kept, tags gone."""
    if "<" not in html:
        return normalise(html)
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return normalise("".join(extractor.parts))


_HEADING = re.compile(
    r"<(?:h[1-6])[^>]*>(.*?)</h[1-6]>|<p>\s*<strong>(.*?)</strong>\s*(?:<br\s*/?>)?\s*</p>",
    re.S | re.I,
)


def split_html_sections(html: str) -> list[tuple[str, str]]:
    """Split catalogue HTML at headings (h1–h6 or a paragraph that is only bold text).

    Returns (heading, text) pairs; text before the first heading has heading "".
    """
    sections: list[tuple[str, str]] = []
    last_end, heading = 0, ""
    for match in _HEADING.finditer(html):
        body = html_to_text(html[last_end : match.start()])
        if body:
            sections.append((heading, body))
        heading = html_to_text(match.group(1) or match.group(2) or "").rstrip(":")
        last_end = match.end()
    body = html_to_text(html[last_end:])
    if body or heading:
        sections.append((heading, body))
    return sections
