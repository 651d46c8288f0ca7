"""Questions about an office and their answers: which question type, and the text of the answer.

A closed set of question types (`OfficeAskKind`: where, phone, e-mail, opening hours, open
on a day, open now), recognised by their German and English cue words, which live in
`_ASK_CUES` and nowhere else. `describe` answers one of them about one office in plain text,
German or English; `describe_list` lists several offices.

Invariant: an answer never guesses opening hours. When the source gives none, the answer
says so and points to phone and web page; when it gives text that cannot be read
(`OpeningHours.known` is False), the answer quotes that text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from knowledge_index.expansion import looks_english
from knowledge_index.hours import (
    BERLIN,
    WEEKDAYS_DE,
    WEEKDAYS_EN,
    OpeningHours,
    clock,
    to_berlin,
    weekday_of,
)

if TYPE_CHECKING:
    from knowledge_index.offices import Office


class OfficeAskKind(StrEnum):
    ADDRESS = "address"
    PHONE = "phone"
    EMAIL = "email"
    HOURS = "hours"
    OPEN_ON = "open_on"  # open on a given day
    OPEN_NOW = "open_now"


@dataclass(frozen=True)
class OfficeAsk:
    """What a question wants to know about an office."""

    kind: OfficeAskKind
    weekday: int | None = None  # OPEN_ON: 0 = Monday
    relative: str = ""  # OPEN_ON: "heute", "morgen", "übermorgen" when said so
    english: bool = False
    closed: bool = False  # asked "geschlossen?"/"zu?" rather than "offen?": Ja and Nein swap


_END = r"(?=\s*[?.!]*\s*$)"
# Cue words of each question type: (German, English). The only list of them.
_ASK_CUES: dict[str, tuple[str, str]] = {
    "now": (
        r"\b(?:jetzt|gerade|momentan|derzeit|aktuell|im moment|noch (?:offen|geöffnet|auf))\b",
        r"\b(?:now|right now|currently|at the moment|still open)\b",
    ),
    "open": (
        rf"\b(?:offen|geöffnet|geoeffnet|aufgemacht|auf{_END}|aufhaben|aufhat)\b",
        r"\bopen\b(?!\s+(?:a|an|my|the)\b)",
    ),
    "closed": (rf"\b(?:geschlossen|zu{_END}|zuhaben|zuhat)\b", r"\bclosed\b"),
    "when": (r"\bwann\b", r"\bwhen\b"),
    "hours": (
        r"öffnungszeit|oeffnungszeit|sprechzeit|servicezeit|geschäftszeit|geschaeftszeit",
        r"\b(?:opening (?:hours|times)|office hours|business hours)\b",
    ),
    "phone": (
        r"telefon|rufnummer|\bnummer\b|\banruf|\bhotline\b|\berreiche",
        r"\b(?:phone|telephone|call|number)\b",
    ),
    "email": (r"\be-?mail|\bmail\b", r"\be-?mail\b"),
    "address": (
        r"\bwo\b|\bwohin\b|adresse|anschrift|wie komme ich|\bfinde ich\b",
        r"\b(?:where|address|located|location)\b",
    ),
}
_ASK_PATTERNS = {key: tuple(re.compile(p, re.I) for p in pair) for key, pair in _ASK_CUES.items()}
_RELATIVE = {"heute": 0, "today": 0, "morgen": 1, "tomorrow": 1, "übermorgen": 2, "uebermorgen": 2}
_EN_DAYS = {name.lower(): day for day, name in enumerate(WEEKDAYS_EN)}


def _cue(key: str, text: str) -> tuple[bool, bool]:
    german, english = _ASK_PATTERNS[key]
    return bool(german.search(text)), bool(english.search(text))


def _day_of(text: str, now: datetime) -> tuple[int, str] | None:
    """The day a question names: a weekday ("am Samstag", "samstags") or heute/morgen."""
    tokens = re.findall(r"[^\W\d_]+", text.lower())
    for position, token in enumerate(tokens):
        if token in _RELATIVE and not (
            token == "morgen" and tokens[position - 1 : position] == ["guten"]
        ):
            day = (to_berlin(now) + timedelta(days=_RELATIVE[token])).weekday()
            return day, "übermorgen" if token == "uebermorgen" else token
        weekday = weekday_of(token) if len(token) > 3 else None
        weekday = _EN_DAYS.get(token.rstrip("s"), weekday)
        if weekday is not None:
            return weekday, ""
    return None


def office_question(query: str, now: datetime | None = None) -> OfficeAsk | None:
    """What `query` asks about an office, or None when it asks none of the known things.

    "heute", "morgen" and "übermorgen" are relative to `now` (default: the current time in
    Europe/Berlin).
    """
    now = now or datetime.now(BERLIN)
    cues = {key: _cue(key, query) for key in _ASK_CUES}
    said = {key for key, (de, en) in cues.items() if de or en}
    closed = "closed" in said and "open" not in said
    if closed:
        said.add("open")
    english = looks_english(query) or (
        any(en for _, en in cues.values()) and not any(de for de, _ in cues.values())
    )
    day = _day_of(query, now)

    def ask(kind: OfficeAskKind) -> OfficeAsk:
        if kind is OfficeAskKind.OPEN_ON and day is not None:
            return OfficeAsk(kind, day[0], day[1], english, closed)
        return OfficeAsk(kind, english=english, closed=closed)

    if "now" in said and "open" in said:
        return ask(OfficeAskKind.OPEN_NOW)
    if day is not None and said & {"open", "hours", "when"}:
        return ask(OfficeAskKind.OPEN_ON)
    if "open" in said and "when" not in said:
        return ask(OfficeAskKind.OPEN_NOW)
    if said & {"hours", "when"}:
        return ask(OfficeAskKind.HOURS)
    for key, kind in (
        ("phone", OfficeAskKind.PHONE),
        ("email", OfficeAskKind.EMAIL),
        ("address", OfficeAskKind.ADDRESS),
    ):
        if key in said:
            return ask(kind)
    # A day alone ("Wie wird das Wetter morgen?") asks nothing about an office.
    return None


# --- answer text -------------------------------------------------------------------

_GENDER_SUFFIXES = {
    "die": tuple(
        "stelle behörde ung wache tur gabe schaft kasse ion zentrale kammer agentur ei".split()
    ),
    "das": tuple("amt büro referat zentrum ment wesen haus center".split()),
    "der": tuple("betrieb hof schalter ort dienst punkt".split()),
}
_PRONOUN = {"der": "er", "die": "sie", "das": "es"}
_ACCUSATIVE = {"der": "den", "die": "die", "das": "das"}


def _gender(name: str) -> str | None:
    """der/die/das of an office name, from the suffix of its first head noun; None if unsure."""
    for word in re.findall(r"[^\W\d_]+", name):
        if not word[0].isupper():
            continue
        lowered = word.lower()
        endings = [
            (len(s), g)
            for g, suffixes in _GENDER_SUFFIXES.items()
            for s in suffixes
            if lowered.endswith(s)
        ]
        if endings:
            return max(endings)[1]
    return None


def _contact_parts(office: Office, english: bool, hours: bool = True) -> list[str]:
    parts = []
    if office.phone:
        parts.append(f"{'Phone' if english else 'Telefon'} {office.phone}")
    if office.email:
        parts.append(f"{'E-mail' if english else 'E-Mail'} {office.email}")
    if hours and office.hours:
        text = office.opening_hours.week_text(True) if english else office.hours
        parts.append(f"{'Opening hours' if english else 'Öffnungszeiten'}: {text}")
    if office.url:
        parts.append(
            f"{'Appointments and information' if english else 'Termine und Infos'}: {office.url}"
        )
    return parts


def _contact_line(office: Office, english: bool, hours: bool = True) -> str:
    head = f"{office.display_name}: {office.address}." if office.address else office.display_name
    head = head if head.endswith(".") else f"{head}."
    parts = _contact_parts(office, english, hours)
    return f"{head} {' · '.join(parts)}." if parts else head


def describe(
    office: Office,
    ask: OfficeAsk | None = None,
    now: datetime | None = None,
    *,
    english: bool | None = None,
) -> str:
    """Plain-text answer to `ask` about `office` (None: the whole contact line).

    German unless `english` (default: the language of the question). Hours the source does
    not give, or gives in a form that cannot be read, are never guessed: the answer says
    so and quotes the source's text or points to phone and web page.
    """
    english = ask.english if english is None and ask is not None else bool(english)
    kind = ask.kind if ask is not None else OfficeAskKind.ADDRESS
    if kind is OfficeAskKind.PHONE:
        return _reach(office, office.phone, "phone", english)
    if kind is OfficeAskKind.EMAIL:
        return _reach(office, office.email, "email", english)
    if kind is OfficeAskKind.ADDRESS:
        return _contact_line(office, english)
    hours = office.opening_hours
    if not hours.known:
        return _unknown_hours(office, hours, kind, english)
    if kind is OfficeAskKind.HOURS:
        text = hours.week_text(True) if english else office.hours
        return f"{office.display_name}: {'opening hours' if english else 'Öffnungszeiten'} {text}."
    at = to_berlin(now or datetime.now(BERLIN))
    if kind is OfficeAskKind.OPEN_ON:
        assert ask is not None
        weekday = ask.weekday if ask.weekday is not None else at.weekday()
        return _open_on(office, hours, weekday, ask.relative, english)
    return _open_now(office, hours, at, english, ask is not None and ask.closed)


def _reach(office: Office, value: str, what: str, english: bool) -> str:
    if value:
        label = {"phone": ("Telefon", "Phone"), "email": ("E-Mail", "E-mail")}[what][english]
        others = [
            p for p in _contact_parts(office, english, hours=False) if not p.startswith(label)
        ]
        return f"{office.display_name}: {label} {value}." + (
            f" {' · '.join(others)}." if others else ""
        )
    if english:
        missing = "phone number" if what == "phone" else "e-mail address"
        head = f"No {missing} is listed for {office.display_name}."
    else:
        missing = "Telefonnummer" if what == "phone" else "E-Mail-Adresse"
        head = f"Für {_subject(office, 'acc')} ist keine {missing} angegeben."
    others = _contact_parts(office, english, hours=False)
    return f"{head} {' · '.join(others)}." if others else head


def _subject(office: Office, case: str = "nom", capital: bool = False) -> str:
    article = _gender(office.display_name)
    if article is None:
        return office.display_name
    word = _ACCUSATIVE[article] if case == "acc" else article
    return f"{word.capitalize() if capital else word} {office.display_name}"


def _when(weekday: int, relative: str, english: bool) -> str:
    day = (WEEKDAYS_EN if english else WEEKDAYS_DE)[weekday]
    if relative:
        return f"{relative} ({day})"
    return f"on {day}" if english else f"am {day}"


def _open_on(
    office: Office, hours: OpeningHours, weekday: int, relative: str, english: bool
) -> str:
    when = _when(weekday, relative, english)
    if english:
        if hours.intervals_on(weekday):
            return f"{office.display_name} is open {when}: {hours.day_hours(weekday, True)}."
        return f"{office.display_name} is closed {when}. Opening hours: {hours.week_text(True)}."
    if hours.intervals_on(weekday):
        return f"{_subject(office, capital=True)} hat {when} geöffnet: {hours.day_hours(weekday)}."
    article = _gender(office.display_name)
    rest = (
        f"Geöffnet ist {_PRONOUN[article]} {office.hours}."
        if article
        else f"Öffnungszeiten: {office.hours}."
    )
    return f"{_subject(office, capital=True)} hat {when} geschlossen. {rest}"


def _open_now(
    office: Office, hours: OpeningHours, at: datetime, english: bool, asked_closed: bool
) -> str:
    interval = hours.interval_at(at)
    yes, no = ("Yes", "No") if english else ("Ja", "Nein")
    if asked_closed:  # "Ist es geschlossen?" – "Nein, … ist jetzt geöffnet."
        yes, no = no, yes
    if interval is not None:
        note = f", {interval.note}" if interval.note else ""
        if english:
            return f"{yes}, {office.display_name} is open now (until {clock(interval.end)}{note})."
        return (
            f"{yes}, {_subject(office)} ist jetzt geöffnet (bis {clock(interval.end)} Uhr{note})."
        )
    following = hours.next_opening(at)
    head = (
        f"{no}, {office.display_name} is closed right now."
        if english
        else f"{no}, {_subject(office)} ist gerade geschlossen."
    )
    if following is None:
        return head
    if following.date() == at.date():
        day = "today" if english else "heute"
    else:
        day = (WEEKDAYS_EN if english else WEEKDAYS_DE)[following.weekday()]
    time_text = clock(following.hour * 60 + following.minute)
    if english:
        return f"{head} Next opening: {day}, {time_text}."
    return f"{head} Nächste Öffnung: {day}, {time_text} Uhr."


_CANNOT_TELL = (
    " Ob gerade oder an einem bestimmten Tag geöffnet ist, lässt sich daraus nicht sicher ablesen.",
    " Whether it is open at a given time cannot be read from this.",
)


def _unknown_hours(office: Office, hours: OpeningHours, kind: OfficeAskKind, english: bool) -> str:
    contact = _contact_parts(office, english, hours=False)
    tail = f" {' · '.join(contact)}." if contact else ""
    if hours.text:
        unsure = "" if kind is OfficeAskKind.HOURS else _CANNOT_TELL[english]
        if english:
            return f"{office.display_name}: opening hours as given: {hours.text}.{unsure}{tail}"
        return f"{office.display_name}: Öffnungszeiten laut Quelle: {hours.text}.{unsure}{tail}"
    if english:
        return f"No opening hours are listed for {office.display_name}.{tail}"
    return f"Für {_subject(office, 'acc')} sind keine Öffnungszeiten hinterlegt.{tail}"


def describe_list(offices: Iterable[Office], limit: int = 6, english: bool = False) -> str:
    """One line per office, "- Name, Adresse", at most `limit` lines and a line for the rest."""
    unique = list({(o.display_name, o.address): o for o in offices}.values())
    lines = [
        f"- {o.display_name}, {o.address}" if o.address else f"- {o.display_name}"
        for o in unique[:limit]
    ]
    rest = len(unique) - limit
    if rest > 0:
        lines.append(f"- … and {rest} more" if english else f"- … und {rest} weitere")
    return "\n".join(lines)
