"""The trained NLU on messages outside its training data: intents, entities and bad input.

Asks the real Rasa server (`/model/parse`) of the project's model; the pipeline and the data
are chosen in docs/nlu.md. Bad input must end in `nlu_fallback` (the fallback path), never in
a confident wrong intent or an error.
"""

from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from tests.services import Service, rasa_headers

CHALLENGE = Path(__file__).parent / "nlu" / "challenge.yml"


def parse(rasa_server: Service, text: str) -> dict:
    response = httpx.post(
        f"{rasa_server.url}/model/parse", json={"text": text}, headers=rasa_headers(), timeout=30
    )
    assert response.status_code == 200
    return response.json()


def entities(parsed: dict) -> dict[str, str]:
    return {e["entity"]: e["value"] for e in parsed["entities"]}


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Servus mitanand", "greet"),
        ("Vielen Dank, das war sehr hilfreich", "thank"),
        ("Ich brauche einen neuen Perso", "ask_question"),
        ("Darf ich Solarmodule auf mein Dach schrauben?", "pv_advice"),
        ("Die Laterne in der Amselstraße ist kaputt", "report_damage"),
        ("Wie weit ist meine Meldung MM-2026-000999?", "check_status"),
        ("Können Sie mich bitte mit einer Person verbinden?", "request_human"),
        ("Das hilft mir überhaupt nicht weiter, so ein Mist", "complain"),
        ("Can I talk to a real person?", "request_human"),
        ("Hello, I have a question", "greet"),
    ],
)
def test_intents_of_unseen_messages(rasa_server: Service, text: str, intent: str) -> None:
    assert parse(rasa_server, text)["intent"]["name"] == intent


def test_case_number_postal_code_and_email_are_extracted(rasa_server: Service) -> None:
    found = entities(parse(rasa_server, "Status MM-2026-000321, PLZ 80331, Mail lena@example.org"))
    assert found["case_number"] == "MM-2026-000321"
    assert found["postal_code"] == "80331"
    assert found["email"] == "lena@example.org"


def test_damage_category_is_mapped_to_its_canonical_value(rasa_server: Service) -> None:
    found = entities(parse(rasa_server, "Die Straßenlaterne in der Goethestraße ist kaputt"))
    assert found["damage_category"] == "strassenbeleuchtung"


def test_places_and_categories_are_tagged_only_in_damage_reports(rasa_server: Service) -> None:
    """bot/entity_tagger.py: the neural tagger runs when report_damage is a likely intent."""
    report = parse(rasa_server, "Schlagloch in der Goethestraße 12")
    assert report["intent"]["name"] == "report_damage"
    extractors = {e["entity"]: e["extractor"] for e in report["entities"]}
    assert extractors.get("location") == "IntentGatedEntityTagger", report["entities"]
    question = parse(rasa_server, "Was kostet ein Reisepass?")
    ranked = [r["name"] for r in question["intent_ranking"][:2]]
    assert "report_damage" not in ranked, ranked
    assert not [e for e in question["entities"] if e["extractor"] == "IntentGatedEntityTagger"]


def test_gibberish_falls_back(rasa_server: Service) -> None:
    assert parse(rasa_server, "qwxz plmk vbnt")["intent"]["name"] == "nlu_fallback"


# DIET alone is sure of short gibberish (affirm 0.84-0.99); bot/unknown_words.py caps the
# confidence of messages without a single known word, so they fall back.
@pytest.mark.parametrize("text", ["xkcd", "hjkl", "🙂🙂", "asdf jklö", "aaaaaa", "???"])
def test_short_gibberish_falls_back(rasa_server: Service, text: str) -> None:
    assert parse(rasa_server, text)["intent"]["name"] == "nlu_fallback"


@pytest.mark.parametrize("text", ["Hallo", "ja", "danke", "MM-2026-000123", "lena@example.org"])
def test_known_words_and_regex_entities_keep_their_intent(rasa_server: Service, text: str) -> None:
    assert parse(rasa_server, text)["intent"]["name"] != "nlu_fallback"


def test_an_invalid_case_number_is_no_case_number(rasa_server: Service) -> None:
    assert "case_number" not in entities(parse(rasa_server, "MM-12"))


def test_a_4000_character_message_is_parsed(rasa_server: Service) -> None:
    text = ("Ich habe eine Frage zu meinem Antrag. " * 120)[:4000]
    assert parse(rasa_server, text)["intent"]["name"]


def challenge_set() -> list[tuple[str, str]]:
    data = yaml.safe_load(CHALLENGE.read_text())
    return [
        (line.strip()[2:], block["intent"])
        for block in data["nlu"]
        for line in block["examples"].splitlines()
        if line.strip().startswith("- ")
    ]


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    """Macro-averaged F1 over the expected intents of (expected, predicted) pairs."""
    right = Counter(want for want, got in pairs if want == got)
    expected = Counter(want for want, _ in pairs)
    predicted = Counter(got for _, got in pairs)
    scores = [2 * right[i] / (expected[i] + predicted[i]) for i in expected]
    return sum(scores) / len(scores)


def test_the_challenge_set_is_recognised(rasa_server: Service) -> None:
    """Messages written apart from the training data (docs/nlu.md): a regression floor."""
    pairs = []
    for text, intent in challenge_set():
        ranking = [
            r for r in parse(rasa_server, text)["intent_ranking"] if r["name"] != "nlu_fallback"
        ]
        pairs.append((intent, ranking[0]["name"]))
    wrong = [(want, got) for want, got in pairs if want != got]
    assert macro_f1(pairs) >= 0.95, wrong
