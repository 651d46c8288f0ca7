"""Offices as records of their own: who they are, where, how to reach them, what they offer.

A source gives offices in one of two ways:
- Markdown articles (`data/knowledge/`): the front matter `office` block of each article
  (name, address, phone, e-mail, hours). One record per distinct name; its `services`
  are the ids of the articles that name it. The `## Zuständige Stelle` section adds
  sub-units between the office's name and street ("Ordnungsamt Musterstadt, Fundbüro,
  Marktstraße 8 …") as aliases, and branches of the same kind named there with a street
  and a phone ("… auch im Bürgerbüro Musterstadt-Nord (Lindenallee 42, Telefon …)") as
  offices of their own, in the main office's city when the text names none.
- A DLDB services export: the locations file beside it. Locations with the same display
  name at the same address (the teams of one office) are one record; its `id` and `url`
  are those of the location with the most services, `location_ids` lists them all.
  Munich's export has no opening hours: `hours` is "" then.

`OfficeDirectory.find` says which offices a question names; the question's type and the
answer text are `office_answers` (re-exported here), opening hours are `hours`.

Invariants: one malformed record is skipped and reported (`LoadedOffices.skipped`),
never fatal; a missing `offices.json` (an index built before offices existed) loads as
no offices. Office words are matched after `fold` (lower case, umlauts folded,
hyphenated compounds split) with genitive and plural endings (-s, -es, -n, -en) allowed
on the question's side.
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from knowledge_index.errors import SourceError
from knowledge_index.hours import OpeningHours
from knowledge_index.office_answers import (
    OfficeAsk,
    OfficeAskKind,
    describe,
    describe_list,
    office_question,
)
from knowledge_index.sources import locations_file

__all__ = [
    "LoadedOffices",
    "Office",
    "OfficeAsk",
    "OfficeAskKind",
    "OfficeDirectory",
    "OfficeService",
    "OpeningHours",
    "describe",
    "describe_list",
    "load_offices",
    "load_saved_offices",
    "office_question",
    "read_offices",
    "save_offices",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OfficeService:
    """How one office offers one service (DLDB): booking link, online link, minutes."""

    appointment_link: str = ""
    online_link: str = ""
    duration_min: int | None = None


@dataclass(frozen=True)
class Office:
    id: str
    name: str
    display_name: str
    aliases: tuple[str, ...] = ()
    address: str = ""  # one line: "Street 1, 12345 City"
    phone: str = ""
    email: str = ""
    hours: str = ""  # the source's text; "" when unknown
    url: str = ""
    services: tuple[str, ...] = ()  # service or article ids offered here
    # service id → how it is offered here (DLDB); not part of the hash
    service_details: Mapping[str, OfficeService] = field(default_factory=dict, hash=False)
    location_ids: tuple[str, ...] = ()  # DLDB: every location merged into this office

    @property
    def opening_hours(self) -> OpeningHours:
        return OpeningHours.parse(self.hours)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["service_details"] = {k: asdict(v) for k, v in self.service_details.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Office:
        def text(key: str) -> str:
            return str(data.get(key) or "")

        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in data.get(key) or ())

        details = {k: OfficeService(**v) for k, v in (data.get("service_details") or {}).items()}
        return cls(
            id=text("id"),
            name=text("name"),
            display_name=text("display_name"),
            aliases=strings("aliases"),
            address=text("address"),
            phone=text("phone"),
            email=text("email"),
            hours=text("hours"),
            url=text("url"),
            services=strings("services"),
            service_details=details,
            location_ids=strings("location_ids"),
        )


@dataclass
class LoadedOffices:
    offices: list[Office]
    skipped: list[str] = field(default_factory=list)


# --- text helpers ------------------------------------------------------------------

_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "’": "", "'": ""})
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_PARENS = re.compile(r"\([^)]*\)")
_STOP = set(
    "und fuer der die das des dem den im in am an von vom zur zum mit bei team the of and".split()
)
_ROMAN = re.compile(r"[ivx]+")
_INFLECTIONS = ("", "s", "es", "n", "en")


def fold(text: str) -> str:
    """Lower case with umlauts folded ("Bürgerbüro" → "buergerbuero") and accents dropped."""
    text = unicodedata.normalize("NFC", text).lower().translate(_FOLD)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")


def _words(text: str) -> list[str]:
    """Folded words; hyphenated compounds count as their parts ("kfz", "zulassungsstelle")."""
    return [part for token in _WORD.findall(fold(text)) for part in token.split("-") if part]


@lru_cache(maxsize=1)
def _function_words() -> frozenset[str]:
    """Our few plus spaCy's German stop words: "neue" alone must not name "Neue Messe"."""
    from spacy.lang.de.stop_words import STOP_WORDS

    return frozenset(_STOP | {fold(w) for w in STOP_WORDS})


def _significant(text: str, ignore: set[str]) -> tuple[str, ...]:
    """Words of a name that can identify it: no function words, city names, numbers, unit codes."""
    stop = _function_words() | ignore
    kept = [w for w in _words(_PARENS.sub(" ", text)) if len(w) > 1 and w not in stop]
    return tuple(dict.fromkeys(w for w in kept if not w.isdigit() and not _ROMAN.fullmatch(w)))


def _matches(query_word: str, office_word: str) -> bool:
    """Office words are nominative; a question may inflect them ("Standesamts")."""
    rest = query_word[len(office_word) :] if query_word.startswith(office_word) else None
    return rest in _INFLECTIONS


def _dedupe(names: Iterable[str], *exclude: str) -> tuple[str, ...]:
    seen = {fold(e) for e in exclude}
    result: list[str] = []
    for name in names:
        name = " ".join(name.split())
        if name and fold(name) not in seen:
            seen.add(fold(name))
            result.append(name)
    return tuple(result)


def _name_forms(name: str) -> list[str]:
    """Other forms of a name: without a unit code in parentheses; the part before " – "
    ("Bauamt Musterstadt – Untere Bauaufsichtsbehörde" → "Bauamt Musterstadt")."""
    bare = " ".join(_PARENS.sub(" ", name).split())
    head = re.split(r"\s[–—-]\s", bare)[0].strip()
    return [bare, head] if head != bare else [bare]


# --- loading -----------------------------------------------------------------------


def read_offices(source: Path) -> LoadedOffices:
    """Offices of `source` (a folder of articles or a DLDB services JSON), with skips."""
    if source.is_dir():
        return _article_offices(source)
    if source.suffix == ".json":
        return _dldb_offices(source)
    raise SourceError(source, "expected a folder of Markdown articles or a DLDB .json file")


def load_offices(source: Path) -> list[Office]:
    """Offices of `source`; skipped records are logged as warnings."""
    loaded = read_offices(source)
    for message in loaded.skipped:
        log.warning("office skipped: %s", message)
    return loaded.offices


def save_offices(path: Path, offices: Iterable[Office]) -> None:
    path.write_text(json.dumps([o.to_json() for o in offices], ensure_ascii=False))


def load_saved_offices(path: Path) -> list[Office]:
    """Offices written by `save_offices`; none when the file does not exist (older builds)."""
    if not path.exists():
        return []
    return [Office.from_json(item) for item in json.loads(path.read_text(encoding="utf-8"))]


# --- Markdown articles -------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
_STREET = re.compile(
    r"(?:(?:Am|An der|Im|In der|Auf der|Zum|Zur)\s+)?[A-ZÄÖÜ][\w.-]*"
    r"(?:straße|strasse|str\.|allee|platz|weg|ring|gasse|damm|ufer|hof|markt|chaussee)"
    r"\s+\d+\s?[a-z]?\b"
)
_POSTAL_CITY = re.compile(r"\A,?\s*(\d{5}\s+[A-ZÄÖÜ][\w-]*)")
_PHONE = re.compile(r"\b(?:Telefon|Tel\.)\s*:?\s*(\+?\d[\d /-]*\d)")
_DAY_START = re.compile(r"\b(?:Mo|Di|Mi|Do|Fr|Sa|So)\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ])")
_UNIT_PREFIXES = ("Sachgebiet ", "Abteilung ", "Team ")


@dataclass
class _Draft:
    """An office being collected from several articles."""

    name: str
    address: str = ""
    phone: str = ""
    email: str = ""
    hours: str = ""
    aliases: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)

    def office(self) -> Office:
        return Office(
            id=slug(self.name),
            name=self.name,
            display_name=self.name,
            aliases=_dedupe([*_name_forms(self.name), *self.aliases], self.name),
            address=self.address,
            phone=self.phone,
            email=self.email,
            hours=self.hours,
            services=tuple(dict.fromkeys(self.services)),
        )


def _article_offices(folder: Path) -> LoadedOffices:
    drafts: dict[str, _Draft] = {}
    branches: dict[str, _Draft] = {}
    skipped: list[str] = []
    for file in sorted(p for p in folder.glob("*.md") if p.name.lower() != "readme.md"):
        try:
            article_id, block, section = _article(file)
        except ValueError as exc:
            skipped.append(f"{file}: {exc}")
            continue
        if block is None:
            continue
        draft = drafts.setdefault(block.name, block)
        draft.services.append(article_id)
        draft.aliases.extend(_sub_units(section, draft))
        for branch in _branches(section, draft):
            known = branches.setdefault(branch.name, branch)
            known.services.append(article_id)
            known.hours = known.hours or branch.hours
    for name in drafts:
        branches.pop(name, None)
    offices = [d.office() for d in [*drafts.values(), *branches.values()]]
    return LoadedOffices(offices=offices, skipped=skipped)


def _article(file: Path) -> tuple[str, _Draft | None, str]:
    """(article id, its office block, its Zuständige Stelle text); ValueError when malformed."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read: {exc}") from exc
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ValueError("no YAML front matter")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ValueError(f"front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError("front matter is not a mapping")
    block = meta.get("office")
    if block is None:
        return str(meta.get("id") or file.stem), None, ""
    if not isinstance(block, dict) or not isinstance(block.get("name"), str):
        raise ValueError("field 'office' is not a mapping with a name")

    def value(key: str) -> str:
        return " ".join(str(block.get(key) or "").split())

    if not value("name"):
        raise ValueError("field 'office.name' is empty")
    draft = _Draft(value("name"), value("address"), value("phone"), value("email"), value("hours"))
    return str(meta.get("id") or file.stem).strip(), draft, _office_section(text)


def _office_section(text: str) -> str:
    match = re.search(r"^## Zuständige Stelle\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    return " ".join(match.group(1).split()) if match else ""


def _sub_units(section: str, office: _Draft) -> list[str]:
    """Units named between the office's name and its street ("…, Fundbüro, Marktstraße 8")."""
    street = office.address.split(",")[0].strip()
    start = section.find(office.name)
    if start < 0 or not street:
        return []
    rest = section[start + len(office.name) :]
    end = rest.find(street)
    if end < 0:
        return []
    units: list[str] = []
    for segment in _PARENS.sub(" ", rest[:end]).split(","):
        unit = " ".join(segment.split())
        if unit and unit[0].isupper() and len(unit.split()) <= 5:
            units.append(unit)
            units.extend(unit[len(p) :] for p in _UNIT_PREFIXES if unit.startswith(p))
    return units


def _branches(section: str, office: _Draft) -> list[_Draft]:
    """Other offices of the same kind that a sentence names with a street and a phone."""
    kind = office.name.split()[0]
    city = office.address.rsplit(",", 1)[-1].strip() if "," in office.address else ""
    pattern = re.compile(rf"\b{re.escape(kind)}\s+([A-ZÄÖÜ][\w-]*)")
    found: list[_Draft] = []
    for sentence in _SENTENCE_END.split(section):
        for match in pattern.finditer(sentence):
            name = f"{kind} {match.group(1)}"
            tail = sentence[match.end() :]
            street, phone = _STREET.search(tail), _PHONE.search(tail)
            if fold(name) == fold(office.name) or street is None or phone is None:
                continue
            postal = _POSTAL_CITY.match(tail[street.end() :])
            place = postal.group(1) if postal else city
            address = ", ".join(p for p in (street.group(0), place) if p)
            found.append(
                _Draft(name, address, phone.group(1), hours=_hours_in(tail[phone.end() :]))
            )
    return found


def _hours_in(text: str) -> str:
    """Opening hours that `text` starts with (after a comma), if they parse."""
    start = _DAY_START.search(text)
    if start is None or text[: start.start()].strip(" ,:;") != "":
        return ""
    candidate = text[start.start() :].split(")")[0].rstrip(" .;")
    return candidate if OpeningHours.parse(candidate).known else ""


# --- DLDB locations ----------------------------------------------------------------


@dataclass
class _Location:
    id: str
    name: str
    display_name: str
    aliases: list[str]
    address: str
    phone: str
    email: str
    url: str
    public: bool
    services: dict[str, OfficeService]

    @property
    def key(self) -> tuple[str, str]:
        return fold(_name_forms(self.display_name)[0]), fold(self.address)


class _BadRecord(ValueError):
    pass


def _dldb_offices(path: Path) -> LoadedOffices:
    locations_path = path if "locations" in path.name else locations_file(path)
    if locations_path is None:
        return LoadedOffices(offices=[])
    try:
        data = json.loads(locations_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(locations_path, f"cannot be read as JSON: {exc}") from exc
    records = data.get("data") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise SourceError(locations_path, "must be a list (or an object with a 'data' list)")
    locations: list[_Location] = []
    skipped: list[str] = []
    for index, record in enumerate(records):
        where = f"{locations_path}: location #{index}"
        try:
            locations.append(_location(record, skipped, where))
        except _BadRecord as exc:
            ident = record.get("id") if isinstance(record, dict) else None
            skipped.append(where + (f" (id {ident})" if ident else "") + f": {exc}")
    # A location the portal hides whose services are all offered at public ones adds nothing.
    public = {s for loc in locations if loc.public for s in loc.services}
    groups: dict[tuple[str, str], list[_Location]] = {}
    for location in locations:
        if location.public or not set(location.services) <= public:
            groups.setdefault(location.key, []).append(location)
    return LoadedOffices(offices=[_merged(group) for group in groups.values()], skipped=skipped)


def _text(record: Mapping[str, Any], name: str, required: bool = False) -> str:
    value = record.get(name)
    if value is None or value is False or value == "":
        if required:
            raise _BadRecord(f"field '{name}' is missing")
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _BadRecord(f"field '{name}' has type {type(value).__name__}")
    return " ".join(str(value).split())


def _mapping(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = record.get(name) or {}
    if not isinstance(value, dict):
        raise _BadRecord(f"field '{name}' has type {type(value).__name__}, expected an object")
    return value


def _location(record: Any, skipped: list[str], where: str) -> _Location:
    if not isinstance(record, dict):
        raise _BadRecord("record is not an object")
    location_id, name = _text(record, "id", True), _text(record, "name", True)
    display = _text(record, "displayName") or _name_forms(name)[0]
    alternatives = record.get("displayNameAlternatives")
    aliases = (
        [a for a in alternatives if isinstance(a, str)] if isinstance(alternatives, list) else []
    )
    address, contact, meta = (_mapping(record, k) for k in ("address", "contact", "meta"))
    street = " ".join(_text(address, k) for k in ("street", "house_number")).strip()
    city = " ".join(_text(address, k) for k in ("postal_code", "city")).strip()
    url = meta.get("url")
    url_template = url if isinstance(url, str) else ""
    return _Location(
        id=location_id,
        name=name,
        display_name=display,
        aliases=aliases,
        address=", ".join(p for p in (street, city) if p),
        phone=_text(contact, "phone"),
        email=_text(contact, "email"),
        url=url_template.replace("{locationId}", location_id),
        public=record.get("public") is not False,
        services=_offered(record.get("services"), skipped, where),
    )


def _offered(entries: Any, skipped: list[str], where: str) -> dict[str, OfficeService]:
    offered: dict[str, OfficeService] = {}
    for position, entry in enumerate(entries if isinstance(entries, list) else []):
        service_id = entry.get("service") if isinstance(entry, dict) else None
        if not isinstance(service_id, str | int) or isinstance(service_id, bool):
            skipped.append(f"{where}: services[{position}] names no service")
            continue
        appointment = entry.get("appointment") or {}
        online = entry.get("onlineprocessing") or {}
        duration = entry.get("duration")
        offered.setdefault(
            str(service_id),
            OfficeService(
                appointment_link=_link(appointment),
                online_link=_link(online),
                duration_min=duration if isinstance(duration, int) and duration > 0 else None,
            ),
        )
    return offered


def _link(value: Any) -> str:
    link = value.get("link") if isinstance(value, dict) else None
    return link.strip() if isinstance(link, str) else ""


def _merged(group: list[_Location]) -> Office:
    """The teams of one office (same display name and address) as one record."""
    primary = max(group, key=lambda loc: (loc.public, len(loc.services)))
    members = [primary, *(loc for loc in group if loc is not primary)]
    details: dict[str, OfficeService] = {}
    for member in members:
        for service_id, detail in member.services.items():
            details.setdefault(service_id, detail)
    names = [form for m in members for form in (*_name_forms(m.name), m.display_name)]
    return Office(
        id=primary.id,
        name=primary.name,
        display_name=primary.display_name,
        aliases=_dedupe([*names, *(a for m in members for a in m.aliases)], primary.display_name),
        address=primary.address,
        phone=next((m.phone for m in members if m.phone), ""),
        email=next((m.email for m in members if m.email), ""),
        url=primary.url,
        services=tuple(details),
        service_details=details,
        location_ids=tuple(m.id for m in members),
    )


# --- finding offices ---------------------------------------------------------------

# English names of office kinds, so an English question can name a German office.
_ENGLISH_NAMES = {
    "citizens office": "Bürgerbüro",
    "citizen office": "Bürgerbüro",
    "citizens service office": "Bürgerbüro",
    "registry office": "Standesamt",
    "register office": "Standesamt",
    "lost property": "Fundbüro",
    "lost and found": "Fundbüro",
    "vehicle registration": "Zulassungsstelle",
    "driving licence office": "Führerscheinstelle",
    "driving license office": "Führerscheinstelle",
    "building authority": "Bauamt",
    "building department": "Bauamt",
    "immigration office": "Ausländerbehörde",
    "foreigners office": "Ausländerbehörde",
    "public order office": "Ordnungsamt",
    "trade office": "Gewerbeamt",
    "fire station": "Feuerwache",
}
_NAME_WEIGHT, _ALIAS_WEIGHT, _STREET_WEIGHT = 1.0, 0.9, 0.5
MIN_SCORE = 0.3  # below: only a frequent word of an alias or street matched
RELATIVE_CUT = 0.6  # offices scoring below this share of the best are not what was named


@dataclass(frozen=True)
class _Entry:
    office: Office
    names: tuple[tuple[float, tuple[str, ...]], ...]  # (weight, significant words)
    words: frozenset[str]


def _query_words(query: str) -> list[str]:
    folded = " ".join(_words(query))
    extra = [
        german
        for english, german in _ENGLISH_NAMES.items()
        if re.search(rf"\b{english}s?\b", folded)
    ]
    return list(dict.fromkeys(_words(" ".join([query, *extra]))))


class OfficeDirectory:
    """All offices of one source: find them by name, list those offering a service."""

    def __init__(self, offices: Iterable[Office]) -> None:
        self.offices = list(offices)
        self._by_id = {o.id: o for o in self.offices}
        self._by_service: dict[str, list[Office]] = {}
        for office in self.offices:
            for service_id in office.services:
                self._by_service.setdefault(service_id, []).append(office)
        cities = {w for o in self.offices for w in _words(_city(o.address))}
        self._entries = [self._entry(o, cities) for o in self.offices]
        frequency: dict[str, int] = {}
        for entry in self._entries:
            for word in entry.words:
                frequency[word] = frequency.get(word, 0) + 1
        total = len(self._entries)
        self._idf = {w: math.log(1 + total / n) for w, n in frequency.items()}

    @staticmethod
    def _entry(office: Office, cities: set[str]) -> _Entry:
        street = re.sub(r"\s+\d.*$", "", office.address.split(",")[0])
        names = [
            (_NAME_WEIGHT, _significant(office.display_name, cities)),
            (_NAME_WEIGHT, _significant(office.name, cities)),
            *((_ALIAS_WEIGHT, _significant(a, cities)) for a in office.aliases),
            (_STREET_WEIGHT, _significant(street, cities)),
        ]
        kept = tuple((weight, words) for weight, words in names if words)
        return _Entry(office, kept, frozenset(w for _, words in kept for w in words))

    def __len__(self) -> int:
        return len(self.offices)

    def __iter__(self) -> Iterator[Office]:
        return iter(self.offices)

    def get(self, office_id: str) -> Office | None:
        return self._by_id.get(office_id)

    def offices_for(self, service_id: str) -> list[Office]:
        """Offices that offer the service (or article) `service_id`, in source order."""
        return list(self._by_service.get(str(service_id), []))

    def find(self, query: str, limit: int | None = None) -> list[tuple[Office, float]]:
        """Offices the question names, best first, each with a score in (0, 1].

        Score: half how much of the question's office words the office matches, half how
        much of its best-matching name the question covers (words weighted by rarity
        among the offices), so "Bürgerbüro Pasing" ranks that office above the other
        Bürgerbüros. Ties go to the office with more services.
        """
        known: dict[str, float] = {}
        for word in _query_words(query):
            weights = [self._idf[w] for w in self._idf if _matches(word, w)]
            if weights:
                known[word] = max(weights)
        if not known:
            return []
        scored = [(entry.office, self._score(entry, known)) for entry in self._entries]
        floor = max(MIN_SCORE, RELATIVE_CUT * max(score for _, score in scored))
        ranked = sorted(
            ((office, score) for office, score in scored if score >= floor),
            key=lambda pair: (-pair[1], -len(pair[0].services)),
        )
        return ranked[:limit] if limit is not None else ranked

    def _score(self, entry: _Entry, known: dict[str, float]) -> float:
        matched = {q for q in known if any(_matches(q, w) for w in entry.words)}
        if not matched:
            return 0.0
        question = sum(known[q] for q in matched) / sum(known.values())
        name = max(
            weight
            * sum(self._idf[w] for w in words if any(_matches(q, w) for q in matched))
            / sum(self._idf[w] for w in words)
            for weight, words in entry.names
        )
        return round(0.5 * question + 0.5 * name, 4)

    def office_question(self, query: str, now: datetime | None = None) -> OfficeAsk | None:
        """See the module function `office_question`."""
        return office_question(query, now)


def _city(address: str) -> str:
    last = address.rsplit(",", 1)[-1]
    return re.sub(r"\d{5}", "", last) if "," in address else ""
