"""Opening hours: German office-hours text → weekly intervals, and questions about them.

`OpeningHours.parse` reads the short German forms offices publish ("Mo–Fr 8:00–12:30,
Do 14:00–18:00", "Mo, Di, Do, Fr 8:30–12:00", "Sa 8 Uhr–14 Uhr", hyphen or en dash,
"8.00" or "8:00"); a parenthesised remark ("(nach Terminvereinbarung)") is kept as a
note of the intervals before it.

Invariants:
- Parsing is all or nothing. Text with anything the parser does not understand gives
  an object that knows nothing (`known` is False): it never answers a question about
  a time, so callers quote the source's text instead of guessing.
- Times are local to Europe/Berlin. Aware datetimes are converted; naive ones are
  taken as Europe/Berlin wall-clock time. Weekdays are 0 = Monday … 6 = Sunday.
- Public holidays are not known; a day's hours are the weekly hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")

WEEKDAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SHORT_DE = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")
_SHORT_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_TOKEN = re.compile(
    r"(?P<note>\([^)]*\))"
    r"|(?P<time>\d{1,2}(?:[:.]\d{2})?)(?:\s*uhr\b)?"
    r"|(?P<dash>[-–—]|\bbis\b)"
    r"|(?P<sep>[,;/&]|\bund\b|\bsowie\b)"
    r"|(?P<word>[^\W\d_]+\.?)"
    r"|(?P<other>\S)",
    re.I,
)
_IGNORED_WORDS = {"uhr", "von", "jeweils"}
_CLOSED_WORDS = {"geschlossen", "closed"}


def to_berlin(at: datetime) -> datetime:
    """`at` as Europe/Berlin local time (a naive datetime is taken as Berlin time)."""
    return at.replace(tzinfo=BERLIN) if at.tzinfo is None else at.astimezone(BERLIN)


def weekday_of(word: str) -> int | None:
    """The weekday a German day word names: "Mo", "Mo.", "Montag", "montags" → 0."""
    lowered = word.lower().rstrip(".")
    for day, name in enumerate(WEEKDAYS_DE):
        if lowered in (name.lower(), f"{name.lower()}s", _SHORT_DE[day].lower()):
            return day
    return 5 if lowered in ("sonnabend", "sonnabends") else None


def clock(minutes: int) -> str:
    """Minutes after midnight as "8:00"."""
    return f"{minutes // 60}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Interval:
    """Open from `start` to `end`, in minutes after midnight; `note` is the source's remark."""

    start: int
    end: int
    note: str = ""

    def text(self) -> str:
        return f"{clock(self.start)}–{clock(self.end)}"


class _Unparseable(ValueError):
    pass


@dataclass(frozen=True)
class OpeningHours:
    """A week of opening intervals parsed from `text`; `week` is empty when unknown."""

    text: str
    week: tuple[tuple[Interval, ...], ...] = ()

    @classmethod
    def parse(cls, text: str) -> OpeningHours:
        """The hours `text` states, or an object that knows nothing when it cannot be read."""
        try:
            week = _parse_week(text)
        except _Unparseable:
            return cls(text=text.strip())
        return cls(text=text.strip(), week=week)

    @property
    def known(self) -> bool:
        return bool(self.week)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.note for day in self.week for i in day if i.note))

    def intervals_on(self, weekday: int) -> tuple[Interval, ...]:
        """Intervals of `weekday` (0 = Monday); empty when closed or unknown (see `known`)."""
        return self.week[weekday % 7] if self.week else ()

    def interval_at(self, at: datetime) -> Interval | None:
        """The interval open at `at`, if any."""
        local = to_berlin(at)
        minute = local.hour * 60 + local.minute
        return next(
            (i for i in self.intervals_on(local.weekday()) if i.start <= minute < i.end), None
        )

    def is_open(self, at: datetime) -> bool | None:
        """Whether the office is open at `at`; None when the hours are unknown."""
        return self.interval_at(at) is not None if self.known else None

    def next_opening(self, after: datetime) -> datetime | None:
        """The first opening strictly after `after` (Europe/Berlin), None when unknown."""
        local = to_berlin(after).replace(second=0, microsecond=0)
        for offset in range(8):
            day: date = local.date() + timedelta(days=offset)
            for interval in self.intervals_on(day.weekday()):
                start = datetime.combine(day, time(interval.start // 60, interval.start % 60))
                start = start.replace(tzinfo=BERLIN)
                if start.replace(tzinfo=None) > local.replace(tzinfo=None):
                    return start
        return None

    def day_hours(self, weekday: int, english: bool = False) -> str:
        """A day's hours without the day: "8:00–12:30 und 14:00–18:00 Uhr" or "geschlossen"."""
        intervals = self.intervals_on(weekday)
        if not intervals:
            return "closed" if english else "geschlossen"
        joined = (" and " if english else " und ").join(i.text() for i in intervals)
        text = joined if english else f"{joined} Uhr"
        notes = _notes_text(intervals)
        return f"{text} ({notes})" if notes else text

    def describe_day(self, weekday: int, english: bool = False) -> str:
        """ "Samstag: geschlossen", "Donnerstag: 8:00–12:30 und 14:00–18:00 Uhr"."""
        names = WEEKDAYS_EN if english else WEEKDAYS_DE
        if not self.known:
            unknown = "hours unknown" if english else "keine Angabe"
            return f"{names[weekday % 7]}: {self.text or unknown}"
        return f"{names[weekday % 7]}: {self.day_hours(weekday, english)}"

    def week_text(self, english: bool = False) -> str:
        """The week in short form, days with equal hours grouped: "Mo–Mi, Fr 8:00–12:30; …"."""
        if not self.known:
            return self.text
        short = _SHORT_EN if english else _SHORT_DE
        groups: dict[tuple[Interval, ...], list[int]] = {}
        for day, intervals in enumerate(self.week):
            if intervals:
                groups.setdefault(intervals, []).append(day)
        return "; ".join(
            f"{_day_ranges(days, short)} {self.day_hours(days[0], english)}"
            for days in groups.values()
        )


def _notes_text(intervals: tuple[Interval, ...]) -> str:
    noted = [i for i in intervals if i.note]
    if not noted:
        return ""
    if len(noted) == len(intervals) and len({i.note for i in noted}) == 1:
        return noted[0].note
    return ", ".join(f"{i.text()} {i.note}" for i in noted)


def _day_ranges(days: list[int], short: tuple[str, ...]) -> str:
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    # Three or more days in a row are a range ("Mo–Mi"); one or two are listed ("Mo, Di").
    return ", ".join(
        f"{short[run[0]]}–{short[run[-1]]}" if len(run) > 2 else ", ".join(short[d] for d in run)
        for run in runs
    )


# --- parser ----------------------------------------------------------------------


def _minutes(token: str) -> int:
    hours, _, minutes = token.replace(".", ":").partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if int(minutes or 0) >= 60 or value > 24 * 60:
        raise _Unparseable(token)
    return value


class _WeekBuilder:
    """Day groups and time ranges in the order the text gives them."""

    def __init__(self) -> None:
        self.week: list[list[Interval]] = [[] for _ in range(7)]
        self.days: list[int] = []
        self.group_done = False  # the current day group has its times: a day starts a new one
        self.dash = False
        self.start: int | None = None
        self.last: list[tuple[int, int]] = []  # (day, index) of the last group's intervals

    def day(self, weekday: int) -> None:
        if self.start is not None:
            raise _Unparseable("a day inside a time range")
        if self.dash:
            if not self.days:
                raise _Unparseable("a day range without a first day")
            first = self.days[-1]
            self.days.extend((first + k) % 7 for k in range(1, (weekday - first) % 7 + 1))
            self.dash = False
        elif self.group_done:
            self.days, self.group_done, self.last = [weekday], False, []
        else:
            self.days.append(weekday)

    def time(self, minutes: int) -> None:
        if not self.days:
            raise _Unparseable("a time before any day")
        if self.start is None:
            if self.dash:
                raise _Unparseable("a range without a start")
            self.start = minutes
            return
        if not self.dash or minutes <= self.start:
            raise _Unparseable("a time range that does not end after it starts")
        if not self.group_done:
            self.last = []
        for weekday in dict.fromkeys(self.days):
            self.week[weekday].append(Interval(self.start, minutes))
            self.last.append((weekday, len(self.week[weekday]) - 1))
        self.start, self.dash, self.group_done = None, False, True

    def closed(self) -> None:
        if not self.days or self.start is not None:
            raise _Unparseable("'geschlossen' without a day")
        self.group_done, self.last = True, []

    def note(self, text: str) -> None:
        if not self.last or self.start is not None:
            raise _Unparseable("a remark that follows no time range")
        for weekday, index in self.last:
            old = self.week[weekday][index]
            self.week[weekday][index] = Interval(old.start, old.end, text)

    def result(self) -> tuple[tuple[Interval, ...], ...]:
        if self.start is not None or self.dash or not any(self.week):
            raise _Unparseable("incomplete")
        return tuple(tuple(_merged(day)) for day in self.week)


def _merged(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for interval in sorted(intervals, key=lambda i: (i.start, i.end)):
        if merged and interval.start <= merged[-1].end:
            last = merged.pop()
            note = (
                last.note
                if last.note == interval.note
                else ", ".join(n for n in (last.note, interval.note) if n)
            )
            interval = Interval(last.start, max(last.end, interval.end), note)
        merged.append(interval)
    return merged


def _parse_week(text: str) -> tuple[tuple[Interval, ...], ...]:
    builder = _WeekBuilder()
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group(match.lastgroup or 0)
        if kind == "note":
            builder.note(" ".join(value[1:-1].split()))
        elif kind == "time":
            builder.time(_minutes(value))
        elif kind == "dash":
            if builder.dash:
                raise _Unparseable("two dashes")
            builder.dash = True
        elif kind == "word":
            _word(builder, value)
        elif kind != "sep":
            raise _Unparseable(value)
    return builder.result()


def _word(builder: _WeekBuilder, word: str) -> None:
    weekday = weekday_of(word)
    if weekday is not None:
        builder.day(weekday)
    elif word.lower() in _CLOSED_WORDS:
        builder.closed()
    elif word.lower().rstrip(".") not in _IGNORED_WORDS:
        raise _Unparseable(word)
