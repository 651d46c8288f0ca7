"""The shapes every source is turned into: documents with sections, and chunks."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SectionKind(StrEnum):
    """What a section holds, so "Was kostet …?" can be answered from the fees."""

    OVERVIEW = "overview"
    TEXT = "text"
    FEES = "fees"
    DOCUMENTS = "documents"
    OFFICE = "office"
    REQUIREMENTS = "requirements"
    PROCEDURE = "procedure"
    ONLINE = "online"
    DEADLINES = "deadlines"


@dataclass(frozen=True)
class Section:
    name: str
    text: str
    kind: SectionKind = SectionKind.TEXT


@dataclass(frozen=True)
class Document:
    """One service ("Dienstleistung"): the unit a question is answered with."""

    id: str
    title: str
    url: str
    summary: str = ""
    keywords: tuple[str, ...] = ()
    sections: tuple[Section, ...] = ()
    category: str = ""
    # Catalogue fields of a DLDB service: where to book, and how long the visit takes.
    appointment_url: str = ""
    duration_min: int | None = None


@dataclass(frozen=True)
class Chunk:
    """A passage small enough to quote; knows its document, section and title."""

    id: str
    doc_id: str
    title: str
    section: str
    kind: SectionKind
    text: str
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def embedding_text(self) -> str:
        """What the dense index embeds: the title gives a passage its context."""
        return f"{self.title}. {self.section}: {self.text}"


def section_kind(name: str) -> SectionKind:
    """Map a German (or DLDB) section heading to its kind."""
    lowered = name.lower()
    if any(word in lowered for word in ("kosten", "gebühr", "fees")):
        return SectionKind.FEES
    if any(word in lowered for word in ("unterlagen", "dokumente", "nachweise", "formular")):
        return SectionKind.DOCUMENTS
    if any(word in lowered for word in ("zuständig", "stelle", "standort", "ansprech")):
        return SectionKind.OFFICE
    if "voraussetz" in lowered:
        return SectionKind.REQUIREMENTS
    if any(word in lowered for word in ("ablauf", "verfahren", "antragstellung")):
        return SectionKind.PROCEDURE
    if "online" in lowered or "internet" in lowered:
        return SectionKind.ONLINE
    if "frist" in lowered:
        return SectionKind.DEADLINES
    return SectionKind.TEXT
