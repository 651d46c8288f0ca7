"""Read a source into documents: a folder of Markdown articles or a DLDB JSON export.

Whole-file problems (unreadable JSON, malformed front matter) raise SourceError
naming the file and field. In a DLDB export one bad service must not sink the
other few hundred: it is skipped and reported in `LoadedSource.skipped`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge_index.documents import Document, Section, SectionKind, section_kind
from knowledge_index.errors import SourceError
from knowledge_index.text import html_to_text, normalise, split_html_sections

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
_REQUIRED_ARTICLE_FIELDS = ("id", "title", "url")


@dataclass
class LoadedSource:
    documents: list[Document]
    skipped: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def load_source(path: Path) -> LoadedSource:
    """Documents of `path`: a folder of articles or a DLDB services JSON file."""
    if path.is_dir():
        return load_articles(path)
    if path.suffix == ".json":
        return load_dldb(path)
    raise SourceError(path, "expected a folder of Markdown articles or a DLDB .json file")


# --- Markdown articles ---------------------------------------------------------


def load_articles(folder: Path) -> LoadedSource:
    files = sorted(p for p in folder.glob("*.md") if p.name.lower() != "readme.md")
    if not files:
        raise SourceError(folder, "no Markdown articles (*.md) found")
    documents = [parse_article(p.read_text(encoding="utf-8"), p) for p in files]
    seen: dict[str, Path] = {}
    for document, file in zip(documents, files, strict=True):
        if document.id in seen:
            raise SourceError(file, f"duplicate id also used by {seen[document.id].name}", "id")
        seen[document.id] = file
    return LoadedSource(documents=documents, files=files)


def parse_article(text: str, path: Path) -> Document:
    """One article: YAML front matter plus `##` sections."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise SourceError(path, "no YAML front matter between two '---' lines at the top")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 2})" if mark is not None else ""
        raise SourceError(path, f"front matter is not valid YAML{line}: {exc}") from exc
    if not isinstance(meta, dict):
        raise SourceError(path, "front matter must be a YAML mapping")
    for name in _REQUIRED_ARTICLE_FIELDS:
        if not isinstance(meta.get(name), str) or not meta[name].strip():
            raise SourceError(path, "missing or not a non-empty string", name)
    keywords = meta.get("keywords") or []
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise SourceError(path, "must be a list of strings", "keywords")
    summary = meta.get("summary") or ""
    if not isinstance(summary, str):
        raise SourceError(path, "must be a string", "summary")
    sections = _markdown_sections(text[match.end() :])
    office = meta.get("office")
    if office is not None and not isinstance(office, dict):
        raise SourceError(
            path, "must be a mapping with name, address, phone, email, hours", "office"
        )
    if office and not any(s.kind is SectionKind.OFFICE for s in sections):
        sections.append(Section("Zuständige Stelle", _office_text(office), SectionKind.OFFICE))
    return Document(
        id=str(meta["id"]).strip(),
        title=normalise(meta["title"]),
        url=meta["url"].strip(),
        summary=normalise(summary),
        keywords=tuple(k.strip() for k in keywords if k.strip()),
        sections=tuple(sections),
        category=str(meta.get("category") or ""),
    )


def _markdown_sections(body: str) -> list[Section]:
    sections: list[Section] = []
    name, lines = "", list[str]()
    for line in body.splitlines():
        if line.startswith("## "):
            if "\n".join(lines).strip():
                sections.append(_section(name, "\n".join(lines)))
            name, lines = line[3:].strip(), []
        elif not line.startswith("# "):
            lines.append(line)
    if "\n".join(lines).strip():
        sections.append(_section(name, "\n".join(lines)))
    return sections


def _section(name: str, markdown: str) -> Section:
    text = re.sub(r"\*\*|__|`", "", markdown)
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    text = re.sub(r"^\s*[*+]\s+", "- ", text, flags=re.M)
    return Section(name or "Beschreibung", normalise(text), section_kind(name))


def _office_text(office: dict[str, Any]) -> str:
    parts = [str(office.get(key, "")).strip() for key in ("name", "address")]
    if office.get("phone"):
        parts.append(f"Telefon {office['phone']}")
    if office.get("email"):
        parts.append(f"E-Mail {office['email']}")
    if office.get("hours"):
        parts.append(f"Öffnungszeiten: {office['hours']}")
    return ". ".join(p for p in parts if p) + "."


# --- DLDB JSON -------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(path, f"cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SourceError(path, f"is not valid JSON (line {exc.lineno}): {exc.msg}") from exc


def _records(path: Path, data: Any) -> list[Any]:
    records = data.get("data") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise SourceError(path, "must be a list (or an object with a 'data' list)", "data")
    return records


def locations_file(services: Path) -> Path | None:
    """The locations export beside a services export (services_de.json → locations_de.json)."""
    candidate = services.with_name(services.name.replace("services", "locations"))
    return candidate if candidate != services and candidate.exists() else None


def load_dldb(services_path: Path, locations_path: Path | None = None) -> LoadedSource:
    """Services of a DLDB export, each with its offices from the locations export."""
    records = _records(services_path, _read_json(services_path))
    files = [services_path]
    locations_path = locations_path or locations_file(services_path)
    offices: dict[str, str] = {}
    skipped: list[str] = []
    if locations_path is not None:
        files.append(locations_path)
        for index, record in enumerate(_records(locations_path, _read_json(locations_path))):
            try:
                location_id, text = _office(record)
            except _FieldError as exc:
                skipped.append(f"{locations_path}: location #{index}: field '{exc.field}' {exc}")
                continue
            offices[location_id] = text
    documents: list[Document] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        try:
            document = _service(record, offices)
        except _FieldError as exc:
            ident = record.get("id") if isinstance(record, dict) else None
            skipped.append(
                f"{services_path}: service #{index}"
                + (f" (id {ident})" if ident else "")
                + f": field '{exc.field}' {exc}"
            )
            continue
        if document.id in seen:
            skipped.append(f"{services_path}: service #{index}: duplicate id {document.id}")
            continue
        seen.add(document.id)
        documents.append(document)
    if not documents:
        raise SourceError(services_path, "no usable service in the export", "data")
    return LoadedSource(documents=documents, skipped=skipped, files=files)


class _FieldError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(message)


def _get(record: Any, name: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
    if not isinstance(record, dict):
        raise _FieldError(name, "record is not an object")
    value = record.get(name)
    if value is None or (value is False and kind is not bool):
        if required:
            raise _FieldError(name, "is missing")
        return None
    if not isinstance(value, kind):
        raise _FieldError(name, f"has type {type(value).__name__}, expected {kind}")
    return value


def _text_id(record: Any, name: str) -> str:
    value = _get(record, name, (str, int))
    if isinstance(value, bool) or not str(value).strip():
        raise _FieldError(name, "is empty")
    return str(value).strip()


def _office(record: Any) -> tuple[str, str]:
    location_id = _text_id(record, "id")
    name = _get(record, "name", str)
    parts = [normalise(name)]
    address = _get(record, "address", dict, required=False) or {}
    street = " ".join(str(address.get(k) or "") for k in ("street", "house_number")).strip()
    city = " ".join(str(address.get(k) or "") for k in ("postal_code", "city")).strip()
    if street or city:
        parts.append(", ".join(p for p in (street, city) if p))
    contact = _get(record, "contact", dict, required=False) or {}
    if contact.get("phone"):
        parts.append(f"Telefon {contact['phone']}")
    if contact.get("email"):
        parts.append(f"E-Mail {contact['email']}")
    return location_id, ". ".join(parts) + "."


def _service(record: Any, offices: dict[str, str]) -> Document:
    service_id = _text_id(record, "id")
    title = normalise(_get(record, "name", str))
    if not title:
        raise _FieldError("name", "is empty")
    description = _get(record, "description", str, required=False) or ""
    meta = _get(record, "meta", dict, required=False) or {}
    keywords_raw = meta.get("keywords") or ""
    if isinstance(keywords_raw, list):
        keywords = [str(k) for k in keywords_raw]
    elif isinstance(keywords_raw, str):
        keywords = keywords_raw.split(",")
    else:
        raise _FieldError("meta.keywords", f"has type {type(keywords_raw).__name__}")
    url_template = meta.get("url") if isinstance(meta.get("url"), str) else ""
    url = url_template.replace("{serviceId}", service_id) if url_template else ""
    sections: list[Section] = []
    for heading, text in split_html_sections(description):
        if text:
            sections.append(Section(heading or "Beschreibung", text, section_kind(heading)))
    fees = _get(record, "fees", str, required=False)
    if fees and html_to_text(fees):
        sections.append(Section("Kosten", html_to_text(fees), SectionKind.FEES))
    forms = _get(record, "forms", list, required=False) or []
    form_names = [str(f["name"]) for f in forms if isinstance(f, dict) and f.get("name")]
    if form_names:
        sections.append(
            Section("Formulare", "Formulare: " + "; ".join(form_names), SectionKind.DOCUMENTS)
        )
    locations = _get(record, "locations", list, required=False) or []
    office_texts = [
        offices[str(loc["location"])]
        for loc in locations
        if isinstance(loc, dict) and str(loc.get("location")) in offices
    ]
    if office_texts:
        sections.append(
            Section("Zuständige Stelle", "\n".join(dict.fromkeys(office_texts)), SectionKind.OFFICE)
        )
    summary = sections[0].text.split("\n")[0] if sections else ""
    appointment = _get(record, "appointment", dict, required=False) or {}
    link = appointment.get("link")
    booking = link if isinstance(link, str) else ""
    duration = record.get("duration")
    return Document(
        id=service_id,
        title=title,
        url=url,
        summary=summary,
        keywords=tuple(k.strip() for k in keywords if k.strip()),
        sections=tuple(sections),
        appointment_url=booking.replace("{serviceId}", service_id),
        duration_min=duration if isinstance(duration, int) and duration > 0 else None,
    )
