"""Topic memory: a message read against the conversation's current service (actions/topic.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from actions.topic import Move, Reading, read_turn, turns_away
from knowledge_index.documents import Chunk, SectionKind
from knowledge_index.facets import Facet, concern_of
from knowledge_index.search import Band, Hit, SearchResult


def result(
    band: Band,
    *ranked: tuple[str, float],
    query: str = "Berufskraftfahrer Weiterbildung grad abgeschlossen",
) -> SearchResult:
    chunk = Chunk(id="x#0", doc_id="x", title="x", section="", kind=SectionKind.TEXT, text="")
    hits = [Hit(doc_id, doc_id, "", score, chunk) for doc_id, score in ranked]
    return SearchResult(query=query, band=band, confidence=0.5, hits=hits, ranking=ranked)


def test_a_facet_with_nothing_else_is_a_follow_up_on_the_topic() -> None:
    assert read_turn("ausweis", Facet.COST, False, None) == Reading(
        Move.FOLLOW_UP, "ausweis", Facet.COST
    )


def test_a_follow_up_before_any_topic_asks_which_service_and_never_guesses() -> None:
    assert read_turn(None, Facet.COST, False, None).move is Move.ASK_WHICH


def test_a_facet_question_that_names_another_service_switches_the_topic() -> None:
    found = result(Band.ANSWER, ("reisepass", 0.9), ("ausweis", 0.3))
    assert read_turn("ausweis", Facet.COST, True, found) == Reading(
        Move.NEW_TOPIC, "reisepass", Facet.COST
    )


def test_a_facet_question_that_fits_the_topic_about_as_well_stays_on_it() -> None:
    found = result(Band.ANSWER, ("gewerbe-ab", 0.9), ("gewerbe-an", 0.85))
    reading = read_turn("gewerbe-an", Facet.ONLINE, True, found)
    assert reading == Reading(Move.FOLLOW_UP, "gewerbe-an", Facet.ONLINE)


def test_a_facet_question_never_answers_for_a_doubtful_other_service() -> None:
    # The topic's facet, and the service the rest may mean offered to choose instead.
    found = result(Band.SUGGEST, ("fqn", 0.6), ("fuehrerschein", 0.2))
    assert read_turn("fuehrerschein", Facet.DOCUMENTS, True, found) == Reading(
        Move.FOLLOW_UP, "fuehrerschein", Facet.DOCUMENTS, ("fqn",)
    )
    weak = result(Band.NONE, ("fqn", 0.2), ("fuehrerschein", 0.05))
    assert read_turn("fuehrerschein", Facet.DOCUMENTS, True, weak) == Reading(
        Move.FOLLOW_UP, "fuehrerschein", Facet.DOCUMENTS
    )


def test_an_elliptical_switch_borrows_the_previous_facet() -> None:
    found = result(Band.ANSWER, ("reisepass", 0.9), ("ausweis", 0.4))
    assert read_turn("ausweis", None, True, found, Facet.COST) == Reading(
        Move.NEW_TOPIC, "reisepass", Facet.COST
    )


def test_a_message_that_fits_nothing_leaves_the_topic_alone() -> None:
    weak = result(Band.NONE, ("pub", 0.1))
    assert read_turn("ausweis", None, True, weak).move is Move.NONE


def test_a_new_concern_without_a_topic_is_answered_or_offered() -> None:
    assert read_turn(None, None, True, result(Band.ANSWER, ("a", 0.9))).move is Move.NEW_TOPIC
    assert read_turn(None, None, True, result(Band.SUGGEST, ("a", 0.5))).move is Move.CHOICES
    assert read_turn(None, None, True, result(Band.NONE, ("a", 0.1))).move is Move.NONE


OFFERED = ("gewerbe-an", "gewerbe-ab", "gewerbe-um")


def test_a_follow_up_after_choices_asks_which_of_them_unless_it_names_one_surely() -> None:
    # "Meinen Sie …?" offered services; "Was zahlt man für so eine Genehmigung?" is about
    # one of them, even though "Genehmigung" alone finds other services or nothing.
    for band in (Band.SUGGEST, Band.NONE):
        found = result(band, ("other", 0.4), ("another", 0.3))
        assert read_turn(None, Facet.COST, True, found, offered=OFFERED).move is Move.ASK_WHICH
        assert read_turn(None, Facet.COST, True, found).move is not Move.ASK_WHICH
    # So is a new concern told beside it with only "Meinen Sie …?" confidence ("Und wie sieht
    # es mit einem Taxi aus, was kostet da die Genehmigung?"): a follow-up is far likelier.
    taxi = result(Band.SUGGEST, ("taxi", 0.5), query="sieht es mit einem Taxi aus Genehmigung")
    assert read_turn(None, Facet.COST, True, taxi, offered=OFFERED).move is Move.ASK_WHICH
    sure = result(Band.ANSWER, ("reisepass", 0.9), ("ausweis", 0.3))
    assert read_turn(None, Facet.COST, True, sure, offered=OFFERED) == Reading(
        Move.NEW_TOPIC, "reisepass", Facet.COST
    )
    # Sure by the catalogue's own text, a choice by the examples: one of those offered is
    # taken ("Geht die Abmeldung damit übers Netz?"), another is offered anew.
    for top, move in (("gewerbe-ab", Move.NEW_TOPIC), ("reisepass", Move.CHOICES)):
        found = replace(result(Band.SUGGEST, (top, 0.5)), catalogue_band=Band.ANSWER)
        assert read_turn(None, Facet.ONLINE, True, found, offered=OFFERED).move is move


def test_a_few_words_of_circumstance_beside_a_facet_do_not_leave_the_topic() -> None:
    # "Ich wohn in Haidhausen – wo ist da die nächste Stelle?" leaves "wohn Haidhausen":
    # too little to leave the topic on "Meinen Sie …?" confidence, but a sure match does.
    thin = result(Band.SUGGEST, ("mietspiegel", 0.5), query="wohn Haidhausen wo")
    assert read_turn("beglaubigung", Facet.PLACE, True, thin) == Reading(
        Move.FOLLOW_UP, "beglaubigung", Facet.PLACE
    )
    sure = result(Band.ANSWER, ("reisepass", 0.9), query="Reisepass")
    whole = result(Band.ANSWER, ("reisepass", 0.8), query="Was kostet ein Reisepass?")
    assert read_turn("ausweis", Facet.COST, True, sure, whole=lambda: whole).move is (
        Move.NEW_TOPIC
    )


def test_an_english_question_s_function_words_are_no_concern_of_their_own() -> None:
    # After "Parkausweis für Handelsvertretungen", "What would a permit for one year cost me?"
    # leaves "permit one year" (and "Can I do the whole thing online …?" leaves "whole thing
    # show up at office"): circumstance, as "für ein Jahr" is in German, not new choices.
    for query in ("permit one year", "whole thing show up at office"):
        found = replace(result(Band.SUGGEST, ("taxi", 0.5), query=query), english=True)
        assert read_turn("parkausweis", Facet.COST, True, found) == Reading(
            Move.FOLLOW_UP, "parkausweis", Facet.COST
        )
    # English function words do not thin a German remainder: "Name" is one in English.
    three = result(Band.SUGGEST, ("namensrecht", 0.5), query="Name Kind Geburtsurkunde")
    assert read_turn("parkausweis", Facet.COST, True, three).others == ("namensrecht",)


def test_one_word_beside_a_facet_leaves_the_topic_only_if_the_whole_question_names_it() -> None:
    # After "Bewohnerparkausweis – Neuantrag nach Verlust", "Was zahle ich für den Ersatz?"
    # leaves "Ersatz", which alone matches "… Urkunden-Änderung oder Ersatz" surely; the
    # whole question does not, so it asks about the topic's replacement.
    ersatz = result(Band.ANSWER, ("urkunden-ersatz", 0.9), query="Ersatz")
    whole = result(Band.SUGGEST, ("urkunden-ersatz", 0.5), query="Was zahle ich für den Ersatz?")
    for checked in (lambda: whole, None):
        assert read_turn("parkausweis", Facet.COST, True, ersatz, whole=checked) == Reading(
            Move.FOLLOW_UP, "parkausweis", Facet.COST
        )
    elsewhere = result(Band.ANSWER, ("gewerbe", 0.8), query="Was zahle ich für den Ersatz?")
    assert read_turn("parkausweis", Facet.COST, True, ersatz, whole=lambda: elsewhere).move is (
        Move.FOLLOW_UP
    )


def test_a_facet_question_leaves_its_topic_only_on_the_catalogue_s_own_certainty() -> None:
    # Sure only by citizens' example phrasings ("so eine Parkerlaubnis" in another parking
    # permit's examples): the catalogue's own text merely suggests it, so the topic stays.
    by_examples = replace(
        result(Band.ANSWER, ("parken-soziale-dienste", 0.9), ("parken-beschicker", 0.4),
               query="Parkerlaubnis eigentlich Markt"),
        catalogue_band=Band.SUGGEST,
    )  # fmt: skip
    assert read_turn("parken-beschicker", Facet.COST, True, by_examples) == Reading(
        Move.FOLLOW_UP, "parken-beschicker", Facet.COST, ("parken-soziale-dienste",)
    )
    unknown = replace(by_examples, catalogue_band=Band.NONE)
    assert read_turn("parken-beschicker", Facet.COST, True, unknown) == Reading(
        Move.FOLLOW_UP, "parken-beschicker", Facet.COST
    )
    sure = replace(by_examples, catalogue_band=Band.ANSWER)
    assert read_turn("parken-beschicker", Facet.COST, True, sure) == Reading(
        Move.NEW_TOPIC, "parken-soziale-dienste", Facet.COST
    )
    # After "Meinen Sie …?", the same: which of those, not a service of the examples' choosing.
    assert read_turn(None, Facet.COST, True, by_examples, offered=OFFERED).move is Move.ASK_WHICH
    # Without example questions there is no second band: the band itself decides.
    assert result(Band.ANSWER).band_by_catalogue is Band.ANSWER


def test_a_facet_question_that_points_back_stays_unless_the_catalogue_is_sure() -> None:
    # "Kann ich das per E-Mail beantragen? Ich komme tagsüber schlecht von der Arbeit weg":
    # its circumstances suggest other services, but "das" is the topic.
    circumstances = result(Band.SUGGEST, ("arbeitszeit", 0.5), ("haushalt", 0.2),
                           query="Mail beantragen komme tagsüber schlecht Arbeit weg")  # fmt: skip
    assert read_turn("haushalt", Facet.ONLINE, True, circumstances, points_back=True) == Reading(
        Move.FOLLOW_UP, "haushalt", Facet.ONLINE
    )
    # Without the pointer back, another concern is likelier: offered beside the answer.
    assert read_turn("haushalt", Facet.ONLINE, True, circumstances).others == ("arbeitszeit",)
    # Sure of another service, the pointer does not hold it: "Was brauche ich dafür?"
    # after a new concern told in the same message.
    sure = replace(circumstances, band=Band.ANSWER)
    assert read_turn("haushalt", Facet.ONLINE, True, sure, points_back=True).move is (
        Move.NEW_TOPIC
    )


@pytest.mark.parametrize(
    ("text", "away"),
    [
        ("Und wie sieht es mit einem Taxi aus, was kostet da die Genehmigung?", True),
        ("Außerdem möchte ich mir eine eigene Repetierbüchse kaufen. Was brauche ich dafür?", True),
        ("Und wenn ich schon dabei bin: Ich hab meinen Führerschein noch nicht abgeholt.", True),
        ("Noch was anderes: kann man alte Jagdgewehre bei der Stadt abgeben?", True),
        ("By the way, how do I register my dog?", True),
        ("Kurze andere Frage: wo gibt es am Viktualienmarkt guten Kaffee?", True),
        ("Ganz anderes Thema, wo melde ich meinen Hund an?", True),
        ("A different question: where do I register my dog?", True),
        # A marker without a new matter beside the facet, or a matter without a marker.
        ("Außerdem: was kostet das?", False),
        ("Und wie sieht es mit den Kosten aus?", False),
        ("Reichen die Geburtsurkunden der Kinder als Nachweis?", False),
        ("Und beim Reisepass?", False),
    ],
)
def test_a_message_that_turns_to_another_matter_is_read_without_the_topic(
    text: str, away: bool
) -> None:
    assert turns_away(text, concern_of(text)) is away
