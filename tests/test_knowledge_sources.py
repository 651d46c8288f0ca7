"""Sources: Markdown articles and DLDB JSON parse, and bad input is named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_index.chunking import chunk_documents
from knowledge_index.documents import SectionKind
from knowledge_index.errors import SourceError
from knowledge_index.sources import load_dldb, load_source, parse_article
from knowledge_index.text import html_to_text

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ROOT / "data" / "knowledge"
MUNICH = ROOT.parent / "shared" / "data" / "muenchen-dldb" / "services_de.json"

GOOD_ARTICLE = """---
id: test-dienst
title: Testdienst beantragen
summary: Der Testdienst kostet nichts.
keywords: [Test, Probe]
category: Ausweise und Dokumente
url: https://www.musterstadt.example/dienstleistungen/test-dienst
last_reviewed: 2026-10-15
office:
  name: Bürgerbüro Musterstadt-Mitte
  address: Rathausplatz 1, 12345 Musterstadt
  phone: "+49 1234 567-100"
  email: buergerbuero@musterstadt.example
  hours: "Mo–Fr 8:00–12:30"
---
## Voraussetzungen
Sie wohnen in Musterstadt.
## Unterlagen
- Personalausweis
## Kosten
Der Testdienst ist gebührenfrei.
## Ablauf
Sie kommen vorbei.
## Zuständige Stelle
Bürgerbüro Musterstadt-Mitte, Rathausplatz 1.
"""


def test_all_project_articles_parse_with_their_sections() -> None:
    loaded = load_source(ARTICLES)
    assert len(loaded.documents) >= 40 and not loaded.skipped
    for document in loaded.documents:
        kinds = {section.kind for section in document.sections}
        assert {SectionKind.FEES, SectionKind.DOCUMENTS, SectionKind.OFFICE} <= kinds, document.id
        assert document.url.endswith(document.id)


def test_an_article_yields_title_keywords_and_typed_sections(tmp_path: Path) -> None:
    document = parse_article(GOOD_ARTICLE, tmp_path / "test-dienst.md")
    assert document.title == "Testdienst beantragen"
    assert document.keywords == ("Test", "Probe")
    names = [(s.name, s.kind) for s in document.sections]
    assert ("Kosten", SectionKind.FEES) in names
    assert ("Zuständige Stelle", SectionKind.OFFICE) in names


def test_malformed_front_matter_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "kaputt.md"
    path.write_text(GOOD_ARTICLE.replace("keywords: [Test, Probe]", "keywords: [Test, Probe"))
    with pytest.raises(SourceError) as error:
        load_source(tmp_path)
    assert "kaputt.md" in str(error.value) and "YAML" in str(error.value)


def test_missing_title_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "ohne-titel.md"
    path.write_text(GOOD_ARTICLE.replace("title: Testdienst beantragen\n", ""))
    with pytest.raises(SourceError) as error:
        load_source(tmp_path)
    assert error.value.field == "title" and "ohne-titel.md" in str(error.value)


def test_an_article_without_front_matter_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "nur-text.md").write_text("## Kosten\nNichts.\n")
    with pytest.raises(SourceError, match="front matter"):
        load_source(tmp_path)


def test_keywords_of_the_wrong_type_are_named(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(GOOD_ARTICLE.replace("[Test, Probe]", "{a: 1}"))
    with pytest.raises(SourceError) as error:
        load_source(tmp_path)
    assert error.value.field == "keywords"


def _service(**overrides: object) -> dict[str, object]:
    service: dict[str, object] = {
        "id": "1", "name": "Hundesteuer", "description": "<p>Ein Hund kostet Steuer.</p>",
        "meta": {"keywords": "Hund, Steuer", "url": "https://example.org/#/services/{serviceId}"},
        "fees": "<p>100 Euro im Jahr</p>", "forms": [], "links": [],
        "locations": [{"location": "7"}],
    }  # fmt: skip
    service.update(overrides)
    return service


def test_dldb_services_get_fees_and_their_offices(tmp_path: Path) -> None:
    services = tmp_path / "services_de.json"
    services.write_text(json.dumps({"data": [_service()]}))
    (tmp_path / "locations_de.json").write_text(json.dumps({"data": [{
        "id": "7", "name": "Steueramt", "address": {"street": "Weg", "house_number": "1",
        "postal_code": "80331", "city": "München"}, "contact": {"phone": "089 1"}}]}))  # fmt: skip
    loaded = load_dldb(services)
    [document] = loaded.documents
    assert document.url == "https://example.org/#/services/1"
    sections = {s.kind: s.text for s in document.sections}
    assert sections[SectionKind.FEES] == "100 Euro im Jahr"
    assert "Steueramt. Weg 1, 80331 München. Telefon 089 1." == sections[SectionKind.OFFICE]


def test_dldb_records_with_missing_fields_or_wrong_types_are_skipped_and_reported(
    tmp_path: Path,
) -> None:
    services = tmp_path / "services.json"
    records = [_service(), _service(id="2", name=None), _service(id="3", description=42), "x"]
    services.write_text(json.dumps({"data": records}))
    loaded = load_dldb(services)
    assert [d.id for d in loaded.documents] == ["1"]
    assert len(loaded.skipped) == 3
    assert "field 'name' is missing" in loaded.skipped[0] and "services.json" in loaded.skipped[0]
    assert "field 'description'" in loaded.skipped[1]


def test_a_dldb_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    services = tmp_path / "services.json"
    services.write_text("{not json")
    with pytest.raises(SourceError, match=r"services\.json.*not valid JSON"):
        load_source(services)


def test_a_dldb_file_without_a_data_list_names_the_field(tmp_path: Path) -> None:
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"data": {"id": 1}}))
    with pytest.raises(SourceError) as error:
        load_source(services)
    assert error.value.field == "data"


@pytest.mark.skipif(not MUNICH.exists(), reason="Munich DLDB export not beside the project")
def test_the_munich_export_imports_every_service_with_offices() -> None:
    loaded = load_source(MUNICH)
    assert len(loaded.documents) == 287 and not loaded.skipped
    with_office = [
        d for d in loaded.documents if any(s.kind is SectionKind.OFFICE for s in d.sections)
    ]
    assert len(with_office) > 250


def test_html_becomes_clean_text() -> None:
    html = "<p>\u200bErste&nbsp;Zeile <strong>fett</strong></p><ul><li>eins</li><li>zwei</li></ul>"
    assert html_to_text(html) == "Erste Zeile fett\n\n- eins\n\n- zwei"


def test_chunks_know_document_section_and_title(tmp_path: Path) -> None:
    document = parse_article(GOOD_ARTICLE, tmp_path / "test-dienst.md")
    long_text = " ".join(f"Satz Nummer {i} ist hier." for i in range(60))
    document = type(document)(**{**document.__dict__, "sections": (
        *document.sections, type(document.sections[0])("Hinweise", long_text))})  # fmt: skip
    chunks = chunk_documents([document])
    assert chunks[0].kind is SectionKind.OVERVIEW and "Test, Probe" in chunks[0].text
    assert all(c.doc_id == "test-dienst" and c.title == "Testdienst beantragen" for c in chunks)
    fees = [c for c in chunks if c.section == "Kosten"]
    assert fees and fees[0].kind is SectionKind.FEES and "gebührenfrei" in fees[0].text
    notes = [c for c in chunks if c.section == "Hinweise"]
    assert len(notes) > 1 and all(len(c.text.split()) <= 60 for c in notes)
    assert len({c.id for c in chunks}) == len(chunks)
