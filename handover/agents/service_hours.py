"""Service hours of the citizen service, e.g. ``Mo-Fr 08:00-18:00; Sa 09:00-12:00``.

Outside them, a request for a person is answered at once with the offer to
leave a message, instead of a queue nobody works. Times are German local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
DAYS = ("mo", "di", "mi", "do", "fr", "sa", "so")
_SPAN = re.compile(
    r"^\s*(?P<first>[a-z]{2})(?:\s*-\s*(?P<last>[a-z]{2}))?\s+"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)
_ENGLISH = {"tu": "di", "we": "mi", "th": "do", "su": "so"}


@dataclass(frozen=True, slots=True)
class Span:
    days: frozenset[int]
    start: time
    end: time


class ServiceHours:
    def __init__(self, spec: str) -> None:
        self.spec = spec.strip()
        self.always = self.spec.lower() == "always"
        self.spans = [] if self.always else [self._span(part) for part in self.spec.split(";")]

    @staticmethod
    def _span(text: str) -> Span:
        match = _SPAN.match(text.lower())
        if not match:
            raise ValueError(
                f"SERVICE_HOURS: cannot read {text.strip()!r}; expected e.g. 'Mo-Fr 08:00-18:00'"
            )

        def day(name: str) -> int:
            name = _ENGLISH.get(name, name)
            if name not in DAYS:
                raise ValueError(f"SERVICE_HOURS: unknown day {name!r} in {text.strip()!r}")
            return DAYS.index(name)

        first = day(match["first"])
        last = day(match["last"]) if match["last"] else first
        days = frozenset(range(first, last + 1))
        return Span(
            days,
            time.fromisoformat(match["start"].zfill(5)),
            time.fromisoformat(match["end"].zfill(5)),
        )

    def open_at(self, moment: datetime | None = None) -> bool:
        if self.always:
            return True
        local = (moment or datetime.now(BERLIN)).astimezone(BERLIN)
        return any(
            local.weekday() in span.days and span.start <= local.time() < span.end
            for span in self.spans
        )
