"""How the forms read citizens' answers, and what the PV advisor concludes from them."""

from __future__ import annotations

import pytest

from actions.case_status import read_case_number, read_verifier
from actions.damage_report import read_category, read_email, read_location
from actions.form_answers import Reply
from actions.pv_advice import MOUNTINGS, _first, advise, read_listed, read_size_kwp


def reply(text: str, intent: str = "nlu_fallback", **entities: str) -> Reply:
    return Reply(text, intent, entities)


@pytest.mark.parametrize(
    ("text", "mounting"),
    [
        ("Auf dem Dach", "dach"),
        ("Module an der Fassade", "dach"),
        ("ein Balkonkraftwerk mit 800 Watt", "balkon"),
        ("Steckersolargerät", "balkon"),
        ("freistehend im Garten", "freistehend"),
        ("weiß nicht", None),
    ],
)
def test_the_mounting_is_read_from_the_citizens_words(text: str, mounting: str | None) -> None:
    assert _first(MOUNTINGS, reply(text).words) == mounting


@pytest.mark.parametrize(
    ("text", "intent", "asked", "listed"),
    [
        ("Mein Haus steht unter Denkmalschutz", "nlu_fallback", False, "ja"),
        ("Das Haus ist nicht denkmalgeschützt", "nlu_fallback", False, "nein"),
        ("kein Denkmal", "deny", True, "nein"),
        ("Ja", "affirm", True, "ja"),
        ("nein", "deny", True, "nein"),
        ("Weiß ich nicht", "nlu_fallback", True, "unbekannt"),
        ("Ja", "affirm", False, None),  # an unasked "ja" answers something else
    ],
)
def test_a_listed_building_is_recognised_asked_or_not(
    text: str, intent: str, asked: bool, listed: str | None
) -> None:
    assert read_listed(reply(text, intent), asked) == listed


@pytest.mark.parametrize(
    ("text", "asked", "size"),
    [("8", True, 8.0), ("etwa 9,5 kWp", False, 9.5), ("600 Watt", False, 0.6),
     ("8", False, None), ("weiß nicht", True, "unbekannt"), ("0", True, None)],
)  # fmt: skip
def test_the_size_is_read_in_kwp(text: str, asked: bool, size: float | str | None) -> None:
    assert read_size_kwp(reply(text), asked) == size


def test_a_listed_building_always_leads_to_the_building_authority() -> None:
    for mounting in ("dach", "balkon", "freistehend", None):
        advice = advise(mounting, "einfamilienhaus", "ja", 8.0)
        assert advice.offer == "listed_building"
        assert "denkmalrechtliche Erlaubnis" in advice.paragraphs[0]


def test_a_roof_system_needs_no_permit_but_registration() -> None:
    advice = advise("dach", "einfamilienhaus", "nein", 8.0)
    text = " ".join(advice.paragraphs)
    assert advice.offer is None
    assert "keine Baugenehmigung" in text and "Marktstammdatenregister" in text


def test_a_large_free_standing_system_is_offered_to_the_building_authority() -> None:
    assert advise("freistehend", "einfamilienhaus", "nein", 3.0).offer is None
    large = advise("freistehend", "einfamilienhaus", "nein", 12.0)
    assert large.offer == "advisor_unclear" and "60 m²" in " ".join(large.paragraphs)


def test_a_balcony_system_in_a_flat_needs_consent_and_mentions_an_unknown_listing() -> None:
    advice = advise("balkon", "mehrfamilienhaus", "unbekannt", None)
    text = " ".join(advice.paragraphs)
    assert "800 Watt" in text and "Zustimmung" in text and "Denkmalliste" in text
    assert advice.link[1].endswith("/balkonkraftwerk-anmelden")


@pytest.mark.parametrize(
    ("text", "category"),
    [("Die Straßenlaterne ist kaputt", "strassenbeleuchtung"), ("Schlagloch", "schlagloch"),
     ("Jemand hat Sperrmüll abgestellt", "muell"), ("Graffiti an der Schule", "graffiti"),
     ("Die Schaukel ist kaputt", "spielplatz")],
)  # fmt: skip
def test_damage_categories_are_read_from_words(text: str, category: str) -> None:
    assert read_category(reply(text), asked=False) == category


def test_an_entity_wins_and_other_is_only_accepted_when_asked() -> None:
    assert read_category(reply("Licht", damage_category="graffiti"), False) == "graffiti"
    assert read_category(reply("etwas anderes"), asked=False) is None
    assert read_category(reply("etwas anderes"), asked=True) == "sonstiges"


def test_a_street_is_found_in_a_first_message_and_any_text_is_a_location_when_asked() -> None:
    first = reply("Graffiti am Spielplatz neben der Lindenstraße 3")
    assert read_location(first, asked=False) == "Lindenstraße 3"
    assert read_location(reply("hinter dem Rathaus"), asked=True) == "hinter dem Rathaus"


def test_an_email_or_no_email() -> None:
    assert read_email(reply("schreiben Sie an lena@example.org bitte"), True) == "lena@example.org"
    assert read_email(reply("Ohne E-Mail"), True) == "-"
    assert read_email(reply("lena at example"), True) is None


def test_case_numbers_are_normalised_and_wrong_formats_refused() -> None:
    assert read_case_number(reply("Stand von mm-2026-000123?")) == "MM-2026-000123"
    assert read_case_number(reply("MM 2026 000123")) == "MM-2026-000123"
    assert read_case_number(reply("MM-12")) is None
    assert read_verifier(reply("Lena@Example.org")) == "lena@example.org"
    assert read_verifier(reply("80331")) == "80331"
