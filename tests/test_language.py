"""Which language a citizen writes: English replies and translated searches depend on it."""

from __future__ import annotations

import pytest

from knowledge_index.expansion import looks_english


@pytest.mark.parametrize(
    "text",
    [
        "I need a birth certificate",
        "How do I register my new address?",
        # No question word of the marker list; more English than German function words.
        "Who won the Bundesliga last season?",
        "What's the weather going to be like in Munich this weekend?",
        "Which mobile phone contract has the best coverage in Bavaria?",
        "Is the citizens' office at Ruppertstraße open on Saturdays?",
    ],
)
def test_english_is_recognised(text: str) -> None:
    assert looks_english(text)


@pytest.mark.parametrize(
    "text",
    [
        "Was kostet das?",
        "Ich brauche einen neuen Personalausweis",
        "Wie wird das Wetter am Wochenende in München?",
        "Und beim Reisepass?",
        "Handy verloren",
        "Ist das Bürgerbüro am Samstag offen?",
    ],
)
def test_german_is_not_taken_for_english(text: str) -> None:
    assert not looks_english(text)
