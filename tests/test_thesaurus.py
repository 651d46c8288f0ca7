"""OpenThesaurus synonyms: only for nouns the catalogue does not use, only into its vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_index.thesaurus import DEBIAN_FILE, expand_unknown, synonym_sets

CATALOGUE = {"fahrrad", "geldbörse", "fundbüro", "verloren"}


def known(word: str) -> bool:
    return word.lower() in CATALOGUE


@pytest.fixture
def thesaurus(tmp_path: Path) -> Path:
    path = tmp_path / "openthesaurus.txt"
    path.write_text(
        "# comment\n"
        "Zweirad;Rad;Drahtesel (ugs.);Fahrrad;Radl (ugs., bair.)\n"
        "Portmonee;Geldbörse;Geldbeutel\n"
        "Täschelkraut (ugs.);Geldbeutel (ugs.);Hirtentäschel\n"
        "kennen;wissen\n",
        encoding="utf-8",
    )
    return path


def test_an_unknown_noun_gets_the_synonyms_the_catalogue_knows(thesaurus: Path) -> None:
    text = "Ich habe mein Radl und meinen Geldbeutel verloren"
    assert expand_unknown(text, known, thesaurus) == ["Fahrrad", "Geldbörse"]


def test_known_words_verbs_and_a_missing_file_expand_nothing(
    thesaurus: Path, tmp_path: Path
) -> None:
    assert expand_unknown("Wo ist das Fundbüro mit dem Fahrrad?", known, thesaurus) == []
    assert expand_unknown("Ich will kennen", known, thesaurus) == []
    assert expand_unknown("Mein Radl", known, tmp_path / "missing.txt") == []


@pytest.mark.skipif(not DEBIAN_FILE.exists(), reason="Debian's openthesaurus-de-text missing")
def test_the_debian_thesaurus_is_read() -> None:
    sets = synonym_sets(DEBIAN_FILE)
    assert "Fahrrad" in sets["radl"] and "Personalausweis" in sets["perso"]
