"""The wording of answers about a service (actions/knowledge_answers.py), without Rasa."""

from __future__ import annotations

import json

from actions.knowledge_answers import ACROSS_CHARS, Reply, choices, facet_across, overview
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


def test_a_facet_asked_after_the_choices_is_answered_for_each_service_offered() -> None:
    # "Meinen Sie …?" offered two services; "Was kostet das?" gets both fees side by side,
    # each with its link, and a button per service for its whole answer.
    fees = [
        "Kosten – Parkausweis für Anwohner:\n30,00 Euro im Jahr",
        "Kosten – Baustellenzufahrt:\n" + "Die Gebühr richtet sich nach dem Aufwand. " * 20,
    ]
    documents = [
        Document(id=str(n), title=text.split(":")[0][9:], url=f"{URL[:-7]}{n}")
        for n, text in enumerate(fees)
    ]
    answers = [(d, Reply(text=text)) for d, text in zip(documents, fees, strict=True)]
    reply = facet_across(answers, Facet.COST)
    assert reply.text.startswith("Das hängt davon ab, welche dieser Dienstleistungen Sie meinen:")
    assert "Parkausweis für Anwohner:\n30,00 Euro im Jahr" in reply.text
    assert [link["url"] for link in reply.links] == [d.url for d in documents]
    assert [b["title"] for b in reply.buttons] == [d.title for d in documents]
    payload = json.loads(reply.buttons[1]["payload"].removeprefix("/ask_question"))
    assert payload == {"knowledge_doc": "1", "knowledge_facet": "cost"}
    # A long facet is cut, so three services stay readable side by side.
    assert all(len(part) <= ACROSS_CHARS + 2 for part in reply.text.split("\n\n")[1:])
    assert reply.text.endswith("nach dem Aufwand. …")
    english = facet_across(answers, Facet.COST, english=True)
    assert english.text.startswith("That depends on which of these services you mean:")


def test_services_offered_beside_a_topic_s_answer_are_offered_as_what_she_may_mean() -> None:
    offered = choices([("Geburtsurkunde", "g1")], False, Facet.DOCUMENTS, instead=True)
    assert offered.text == "Oder ist Ihre Frage zu einer dieser Dienstleistungen?"
    payload = json.loads(offered.buttons[0]["payload"].removeprefix("/ask_question"))
    assert payload == {"knowledge_doc": "g1", "knowledge_facet": "documents"}
    english = choices([("Birth certificate", "g1")], True, Facet.DOCUMENTS, instead=True)
    assert english.text == "Or is your question about one of these?"
