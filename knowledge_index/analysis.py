"""German lexical analysis: spaCy lookup lemmas, a light stemmer, compound splitting.

German glues nouns together ("Nummernschilder", "Anwohnerparkausweis"), so a
query word often appears in the catalogue only as part of a compound or the other
way round. Splitting compounds into parts the corpus knows makes BM25 match them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import spacy
from spacy.lang.de.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.tokens import Doc

_WORD = re.compile(r"[a-zäöüß0-9]+")
_FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "s"})
_SUFFIXES = ("ern", "em", "en", "er", "es", "e", "n", "s")
_EXTRA_STOP = {"muss", "musst", "brauche", "brauchen", "bekomme", "bekommen", "moechte",
               "mochte", "will", "wollen", "kann", "koennen", "konnen", "darf", "mein", "meine",
               "meinen", "meinem", "meiner", "ich", "wir", "wie", "was", "wo", "wann", "welche",
               "neu", "neue", "neuen"}  # fmt: skip
STOP = {w.translate(_FOLD) for w in STOP_WORDS} | _EXTRA_STOP
MIN_PART = 4


@lru_cache(maxsize=1)
def lemmatizer() -> Language:
    nlp = spacy.blank("de")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


def fold(word: str) -> str:
    return word.lower().translate(_FOLD)


def stem(word: str) -> str:
    """Strip one inflectional suffix; words stay at least four letters long."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_PART:
            return word[: -len(suffix)]
    return word


# Separable verb particles: "Wie melde ich ein Gewerbe an?" asks about "anmelden".
_PARTICLES = {"an", "ab", "um", "aus", "ein", "zu", "auf", "nach", "zurück", "weg", "vor"}


@lru_cache(maxsize=256)
def lemmas(text: str) -> tuple[str, ...]:
    """Lower-cased, umlaut-folded lemmas of the words in `text`, stop words removed.

    A clause-final separable particle is joined to the clause's verbs ("melde … an"
    adds "anmelden"), since the catalogue names services by the joined verb.
    Cached: a query is analysed by two BM25 indexes (body and names) in a row.
    """
    return _lemmas_of(lemmatizer()(text[:20_000]))


def head_terms(words: Iterable[str]) -> dict[str, str | None]:
    """Each word's first index term (`terms(word)[0]`, the same in every corpus), or None.

    For many words at once (a dictionary's): spaCy's batched pipe is three times faster.
    """
    unique = list(dict.fromkeys(words))
    heads: dict[str, str | None] = {}
    for word, doc in zip(unique, lemmatizer().pipe(unique, batch_size=2000), strict=True):
        found = _lemmas_of(doc)
        heads[word] = stem(found[0]) if found else None
    return heads


def _lemmas_of(doc: Doc) -> tuple[str, ...]:
    out: list[str] = []
    verbs: list[str] = []
    for i, token in enumerate(doc):
        if token.is_punct or token.is_space:
            verbs = []
            continue
        lowered = token.lower_
        verb_like = lowered.endswith(("e", "st", "t", "en")) and token.lemma_.endswith("en")
        if verb_like and i > 0 and fold(lowered) not in STOP and fold(token.lemma_) not in STOP:
            verbs.append(token.lemma_.lower())
        following = doc[i + 1] if i + 1 < len(doc) else None
        if lowered in _PARTICLES and verbs and (following is None or following.is_punct):
            out.extend(fold(lowered + verb) for verb in verbs[:2])
        lemma = fold(token.lemma_ or token.text)
        for word in _WORD.findall(lemma):
            if word not in STOP and len(word) > 1:
                out.append(word)
    return tuple(out)


def terms(text: str, vocabulary: frozenset[str] | None = None) -> list[str]:
    """Index terms: stemmed lemmas plus the parts of compounds the corpus knows."""
    out: list[str] = []
    for lemma in lemmas(text):
        stemmed = stem(lemma)
        out.append(stemmed)
        if vocabulary is not None and len(lemma) >= 2 * MIN_PART:
            out.extend(split_compound(lemma, vocabulary))
    return out


def split_compound(word: str, vocabulary: frozenset[str]) -> list[str]:
    """Stems of the two parts of a compound when both are known words (with linking -s-/-n-)."""
    best: list[str] = []
    for i in range(MIN_PART, len(word) - MIN_PART + 1):
        left, right = word[:i], word[i:]
        right_stem = stem(right)
        if right_stem not in vocabulary:
            continue
        for candidate in (left, left[:-1] if left[-1:] in ("s", "n") else None):
            if candidate and len(candidate) >= MIN_PART - 1 and stem(candidate) in vocabulary:
                parts = [stem(candidate), right_stem]
                if len("".join(best)) < len("".join(parts)):
                    best = parts
    return best


def vocabulary_of(texts: Iterable[str]) -> frozenset[str]:
    """Stems long enough to be a compound part."""
    return frozenset(stem(w) for text in texts for w in lemmas(text) if len(w) >= MIN_PART)
