"""Synonyms from OpenThesaurus for words the catalogue does not use ("Radl" → Fahrrad).

Citizens say "Geldbeutel", "Radl" or "Perso" where the catalogue says Geldbörse, Fahrrad and
Personalausweis. A query noun the index does not know is looked up in OpenThesaurus
(Debian's `openthesaurus-de-text`, LGPL), and the single-word synonyms of its synsets that
the index *does* know are added to the query's word matching. Only unknown nouns are
expanded, and only into the catalogue's own vocabulary, so a word the catalogue uses keeps
its meaning and an ambiguous synset cannot pull in words no service contains. Without the
file, nothing is expanded (logged once).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

DEBIAN_FILE = Path("/usr/share/openthesaurus-de/openthesaurus.txt")
# Synonyms added per unknown word: the first ones the catalogue knows, in synset order.
MAX_SYNONYMS = 3
_WORD = re.compile(r"[A-Za-zÄÖÜäöüß][A-Za-zÄÖÜäöüß-]+")
_NOTE = re.compile(r"\s*\([^)]*\)")


def _nouns(text: str) -> list[str]:
    """German nouns by their capital letter, a sentence's first word excepted.

    Nouns name what a service is about; verbs and adjectives have synonyms in too many
    senses ("kennen" → wissen, "klein" → gering) to help a search.
    """
    found: list[str] = []
    for sentence in re.split(r"(?<=[.!?:;–])\s+", text):
        words = _WORD.findall(sentence)
        found.extend(w for w in words[1:] if w[0].isupper())
    return found


@lru_cache(maxsize=2)
def synonym_sets(path: Path = DEBIAN_FILE) -> dict[str, tuple[str, ...]]:
    """Lower-cased single word → the single words of every synset it belongs to."""
    if not path.exists():
        logger.warning("No OpenThesaurus at %s: queries are not expanded with synonyms", path)
        return {}
    sets: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        words = [_NOTE.sub("", entry).strip() for entry in line.split(";")]
        single = [w for w in words if _WORD.fullmatch(w)]
        for word in single:
            sets.setdefault(word.lower(), []).extend(s for s in single if s.lower() != word.lower())
    return {word: tuple(dict.fromkeys(found)) for word, found in sets.items()}


def expand_unknown(text: str, known: Callable[[str], bool], path: Path = DEBIAN_FILE) -> list[str]:
    """Synonyms, known to the index, of the words of `text` that the index does not know."""
    sets = synonym_sets(path)
    if not sets:
        return []
    extra: list[str] = []
    for word in dict.fromkeys(_nouns(text)):
        if len(word) < 4 or known(word):
            continue
        found = [s for s in sets.get(word.lower(), ()) if known(s)]
        extra.extend(found[:MAX_SYNONYMS])
    return list(dict.fromkeys(extra))
