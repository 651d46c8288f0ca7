"""Facet questions: which aspect a message asks, what names its concern, which passage says it."""

from __future__ import annotations

import pytest

from knowledge_index.documents import Chunk, SectionKind
from knowledge_index.facets import (
    Facet,
    concern_of,
    facet_of,
    is_elliptical,
    passage_for,
    refers_back,
)


@pytest.mark.parametrize(
    ("text", "facet"),
    [
        ("Was kostet das?", Facet.COST),
        ("Wie hoch ist die Gebühr?", Facet.COST),
        ("Und was zahlt man dafür ungefähr?", Facet.COST),
        ("What does it cost?", Facet.COST),
        ("How much will the permit set me back?", Facet.COST),
        ("Und was muss ich mitbringen?", Facet.DOCUMENTS),
        ("Welchen Versicherungsnachweis braucht man dafür?", Facet.DOCUMENTS),
        ("Which documents do I have to bring?", Facet.DOCUMENTS),
        ("Wo kann ich das machen?", Facet.PLACE),
        ("Bei welchem Amt reiche ich das ein?", Facet.PLACE),
        ("Where do I have to go?", Facet.PLACE),
        ("Geht das auch online?", Facet.ONLINE),
        ("Kann ich das per E-Mail beantragen?", Facet.ONLINE),
        ("Can I do this online?", Facet.ONLINE),
        ("Brauche ich einen Termin?", Facet.APPOINTMENT),
        ("Kann ich einfach vorbeikommen?", Facet.APPOINTMENT),
        ("Do I have to book an appointment?", Facet.APPOINTMENT),
        ("Wie lange dauert das?", Facet.DURATION),
        ("How long does it take?", Facet.DURATION),
        ("Ist das umsonst?", Facet.COST),
        ("Is it free?", Facet.COST),
        ("Is there a free appointment?", Facet.APPOINTMENT),
        ("Was muss ich vorlegen?", Facet.DOCUMENTS),
        ("What papers do I need?", Facet.DOCUMENTS),
        ("Bis wann ist das fertig?", Facet.DURATION),
        ("How soon will it be ready?", Facet.DURATION),
        ("Ich brauche einen neuen Personalausweis", None),
        ("Und beim Reisepass?", None),
    ],
)
def test_the_facet_of_a_question_in_german_and_english(text: str, facet: Facet | None) -> None:
    assert facet_of(text) is facet


def test_only_the_question_of_a_story_names_the_facet() -> None:
    story = "Die Familienkasse verlangt eine Bestätigung vom Amt. Wer stellt die aus?"
    assert facet_of(story) is None
    assert facet_of("Die Familienkasse will eine Bestätigung. Was kostet die?") is Facet.COST


@pytest.mark.parametrize(
    ("text", "concern"),
    [
        ("Was kostet das?", ""),
        ("Und was muss ich dafür mitbringen?", ""),
        ("Brauche ich einen Termin?", ""),
        ("What does it cost?", ""),
        ("Was kostet ein Personalausweis?", "Personalausweis"),
        ("Wo ist das Bürgerbüro?", "Bürgerbüro"),
        # Function words and doing a procedure name nothing, conjugated or not.
        ("Was kostet das, wenn ich es online mache?", ""),
        ("Wo hol ich den ab, wenn er fertig ist?", ""),
        (
            "Und wenn ich schon dabei bin: Ich hab meine neue Fahrerlaubnis nach der Prüfung "
            "noch nicht abgeholt. Wo hol ich die ab?",
            "Fahrerlaubnis Prüfung abgeholt",
        ),
    ],
)
def test_what_is_left_of_a_follow_up_names_the_concern(text: str, concern: str) -> None:
    assert concern_of(text) == concern


def test_a_short_and_question_borrows_the_previous_aspect() -> None:
    assert is_elliptical("Und beim Reisepass?")
    assert is_elliptical("and for children?")
    assert not is_elliptical(
        "Und wenn ich meinen Ausweis im Urlaub in Spanien verloren habe, was dann?"
    )


def _chunk(i: int, kind: SectionKind, text: str) -> Chunk:
    return Chunk(id=f"d#{i}", doc_id="d", title="T", section=kind.value, kind=kind, text=text)


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("Wie teuer ist der für ein Jahr?", True),
        ("Was kostet das?", True),
        ("Kostet die was?", True),
        ("Was muss ich dafür mitbringen?", True),
        ("Was kostet diese Genehmigung?", True),
        ("What's the fee for that card?", True),
        ("Do I need an appointment for this?", True),
        ("Was kostet die Genehmigung?", False),  # an article before its noun
        ("Was kostet eigentlich ein Kasten Bier im Supermarkt?", False),
        ("Wie viel Luftdruck gehört in so einen 28-Zoll-Reifen?", False),
        ("Gibt es in der Nähe vom Marienplatz ein gutes Café?", False),
        ("Is it safe to swim in the Isar?", False),
    ],
)
def test_a_question_that_points_back_at_the_subject(text: str, back: bool) -> None:
    assert refers_back(text) is back


def test_a_facet_is_answered_from_its_own_section_first() -> None:
    chunks = [
        _chunk(0, SectionKind.OVERVIEW, "T. Ausweis, Kosten 10 Euro"),
        _chunk(1, SectionKind.TEXT, "Die Bearbeitung kostet nichts extra, 5 Euro Porto."),
        _chunk(2, SectionKind.FEES, "- ab 24 Jahren: 46,00 €"),
    ]
    found = passage_for(chunks, Facet.COST, [0.9, 0.8, 0.1])
    assert found is not None and found.from_section and found.chunk.kind is SectionKind.FEES


def test_without_its_section_a_facet_comes_from_the_passage_that_states_it() -> None:
    chunks = [
        _chunk(0, SectionKind.OVERVIEW, "T. Führung, 90 Minuten"),
        _chunk(1, SectionKind.TEXT, "Die Feuerwache zeigt Gruppen ihre Fahrzeuge."),
        _chunk(2, SectionKind.TEXT, "Eine Führung dauert etwa 90 Minuten."),
    ]
    found = passage_for(chunks, Facet.DURATION, [0.5, 0.9, 0.2])
    assert found is not None and not found.from_section and "90 Minuten" in found.chunk.text
    assert passage_for(chunks[:2], Facet.DURATION, [0.5, 0.9]) is None
