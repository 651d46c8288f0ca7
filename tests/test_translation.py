"""English questions in the catalogue's words: Ding translations, only words the catalogue uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_index.analysis import head_terms
from knowledge_index.lexical import BM25Index
from knowledge_index.translation import (
    DEBIAN_FILE,
    catalogue_table,
    dictionary,
    is_english_keywords,
    translate,
)

CATALOGUE = {"aufenthaltserlaubnis", "erlaubnis", "genehmigung", "wohnsitz", "kennzeichen",
             "schweizer", "erstattung"}  # fmt: skip
# The catalogue's index terms, as its BM25 index has them.
used = BM25Index().fit([" ".join(word.title() for word in sorted(CATALOGUE))]).term_ids


@pytest.fixture
def ding(tmp_path: Path) -> Path:
    path = tmp_path / "de-en"
    path.write_text(
        "# Version :: 1.9\n"
        "Aufenthaltserlaubnis {f}; Aufenthaltstitel {m} [adm.] | Aufenthaltserlaubnisse {pl} "
        ":: residence permit; permission to stay | residence permits\n"
        "Erlaubnis {f}; Genehmigung {f} | Erlaubnisse {pl} :: permit; permission | permits\n"
        "Genehmigung {f}; Bewilligung {f} :: permit; approval\n"
        "Wohnsitz {m}; Residenz {f} :: residence; domicile\n"
        "Nummernschild {n}; Kennzeichen {n} [auto] :: number plate [Br.]; license plate [Am.]\n"
        "Schweizer {m}; Schweizerin {f} | die Schweizer {pl} :: Swiss | the Swiss\n"
        "erstatten; rückerstatten {vt} | erstattend | erstattet :: to refund | refunding | "
        "refunded\n"
        "Erstattung {f}; Rückerstattung {f} | Erstattungen {pl} :: refund | refunds\n"
        "Das ist doch nicht möglich. :: That really isn't possible.\n"
        "Ding {n} | Dinge {pl} :: thing | things | stuff\n",
        encoding="utf-8",
    )
    return path


def test_phrases_come_before_their_words_and_only_catalogue_words_are_added(ding: Path) -> None:
    table = catalogue_table(used, ding)
    question = "I'm Swiss. Which residence permit do I need, and a permit for my number plate?"
    assert translate(question, table) == ["Schweizer", "Aufenthaltserlaubnis", "Genehmigung",
                                          "Kennzeichen"]  # fmt: skip
    # The translation most entries give first ("Genehmigung": two); more when asked.
    assert translate("a permit", table, limit=2) == ["Genehmigung", "Erlaubnis"]
    # A verb is looked up without its "to": "to refund" and "a refund" are one key.
    assert translate("How do I refund it?", table) == ["Erstattung"]


def test_words_the_catalogue_does_not_use_and_fillers_add_nothing(
    ding: Path, tmp_path: Path
) -> None:
    table = catalogue_table(used, ding)
    assert "thing" not in table and "that really isn't possible" not in table
    assert translate("Where do I get this thing?", table) == []
    assert catalogue_table(used, tmp_path / "missing") == {}
    assert translate("residence permit", {}) == []


def test_a_few_words_the_catalogue_does_not_use_half_of_them_english_are_english(
    ding: Path,
) -> None:
    table = catalogue_table(used, ding) | {"passport": ["Reisepass"], "export": ["Ausfuhr"]}

    def catalogue_uses(word: str) -> bool:
        return word.lower() in CATALOGUE | {"bank", "verloren"}

    assert is_english_keywords("the residence permit", table, catalogue_uses)
    # "plates" is no key of the table (the catalogue uses none of its translations).
    assert is_english_keywords("export plates", table, catalogue_uses)
    # A word the catalogue uses, no English word, a German letter, too many words: German.
    assert not is_english_keywords("Passport verloren", table, catalogue_uses)
    assert not is_english_keywords("Radl Westpark", table, catalogue_uses)
    assert not is_english_keywords("Führerschein", table, catalogue_uses)
    assert not is_english_keywords("export export export export passport", table, catalogue_uses)
    assert not is_english_keywords("the", table, catalogue_uses)


@pytest.mark.skipif(not DEBIAN_FILE.exists(), reason="Debian's trans-de-en missing")
def test_the_debian_dictionary_is_read() -> None:
    entries = dictionary(DEBIAN_FILE)
    assert "Aufenthaltserlaubnis" in entries["residence permit"]
    assert "Führerschein" in entries["driving licence"]


def test_a_dictionary_word_is_used_as_the_index_decides_it_for_that_word() -> None:
    # The table is built from all Ding words at once (batched); each must come out as the
    # index's own analysis of the word alone says (`BM25Index.uses`).
    words = ["Kennzeichen", "Aufenthaltserlaubnisse", "erstatten", "Wohnsitzes", "E-Mail",
             "Häuser", "und", "zurückgeben", "Anwohnerparkausweis", "ab"]  # fmt: skip
    index = BM25Index().fit(["Das Kennzeichen, die E-Mail und das Haus zurückgeben. Wohnsitz"])
    heads = head_terms(words)
    for word in words:
        analysed = index.analyse(word)
        assert heads[word] == (analysed[0] if analysed else None), word
        assert (heads[word] in index.term_ids) == index.uses(word), word
