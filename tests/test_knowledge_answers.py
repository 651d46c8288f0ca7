"""The wording of answers about a service (actions/knowledge_answers.py), without Rasa."""

from __future__ import annotations

from actions.knowledge_answers import overview
from knowledge_index.documents import Document, Section, SectionKind
from knowledge_index.facets import Facet

URL = "https://example.org/#/services/1073738"


def test_an_overview_says_what_the_service_is_not_its_bold_lead_in() -> None:
    # The Munich "Jagdschein beantragen" opens with a bold "Antrag", which was its summary.
    text = "Antrag\nBeim Erstantrag müssen Sie persönlich vorbeikommen. Rufen Sie vorher an."
    hunting = Document(
        id="1073738",
        title="Jagdschein beantragen",
        url=URL,
        summary="Antrag",
        sections=(Section("Beschreibung", text), Section("Kosten", "45 Euro", SectionKind.FEES)),
    )
    reply = overview(hunting, [Facet.COST])
    assert reply.text.startswith("Jagdschein beantragen: Beim Erstantrag müssen Sie"), reply.text
    assert reply.links and reply.links[0]["url"] == URL
    # A summary that says something is kept; a service with nothing but a fee shows the fee.
    full = Document(id="1", title="T", url=URL, summary="Ein Hund kostet Hundesteuer im Jahr.")
    assert "Ein Hund kostet Hundesteuer" in overview(full, []).text
    bare = Document(
        id="2", title="Kennzeichen-Tausch", url=URL, summary="Ab 31,20 Euro",
        sections=(Section("Kosten", "Ab 31,20 Euro", SectionKind.FEES),),
    )  # fmt: skip
    assert "Ab 31,20 Euro" in overview(bare, [Facet.COST]).text
