"""English questions in the catalogue's German words, from the Ding dictionary.

The catalogue is German; a citizen who writes English ("Which residence permit do I
need as a researcher?") shares few words with it, and the encoder is an English model
fine-tuned on German text. Each English word or phrase of the question (longest first:
"residence permit" before "residence") is looked up in Ding (Debian's `trans-de-en`,
GPL, 200,000 entries), and its German translations that the catalogue itself uses are
added to the question, the most usual first. Only words the index knows are added, so a
dictionary sense the catalogue never uses cannot pull a service in. Without the file (a
warning when the index is built), English questions are searched as written.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Container
from functools import lru_cache
from pathlib import Path

from knowledge_index.analysis import head_terms

logger = logging.getLogger(__name__)

DEBIAN_FILE = Path("/usr/share/trans/de-en")
# German words added per English word or phrase: the one the dictionary gives most often
# (1, 2 or 3 chosen by leave-one-out mrr@10 on 47 English questions; docs/knowledge.md).
MAX_TRANSLATIONS = 1
# Longest English phrase looked up, in words ("permanent residence permit").
MAX_PHRASE = 3
_NOTES = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)|<[^>]*>|/[^/]*/")
_GERMAN_WORD = re.compile(r"[A-Za-zÄÖÜäöüß][A-Za-zÄÖÜäöüß-]+")
_ENGLISH_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# English words that say nothing about a service: looked up only inside a phrase.
_FILLER = frozenset(
    "a an the i i'm i've i'd my me we our us you your he she it its they their them his her "
    "is am are was were be been being do does did have has had can could will would shall "
    "should may might must to of in on at for from with by about into as and or but if so "
    "not no this that these those there here what which who whom how when where why "
    "just only also still already some any all get got need want like please thanks hello "
    "hi one ever last next new now then".split()
)


def _clean(side: str) -> str:
    return " ".join(_NOTES.sub(" ", side).split())


def _english_key(phrase: str) -> str:
    words = _ENGLISH_WORD.findall(phrase.lower())
    if words[:1] == ["to"]:  # verbs: "to refund"
        words = words[1:]
    return " ".join(words)


def dictionary(path: Path = DEBIAN_FILE) -> dict[str, Counter[str]]:
    """English word or phrase (lower case) → single German words, counted over entries."""
    if not path.exists():
        logger.warning("No Ding dictionary at %s: English questions are not translated", path)
        return {}
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or " :: " not in line:
            continue
        german_side, english_side = line.split(" :: ", 1)
        german_groups, english_groups = german_side.split(" | "), english_side.split(" | ")
        if len(german_groups) != len(english_groups):  # not aligned: the headwords only
            german_groups, english_groups = german_groups[:1], english_groups[:1]
        for german, english in zip(german_groups, english_groups, strict=True):
            words = [_clean(w) for w in german.split(";")]
            single = [w for w in words if _GERMAN_WORD.fullmatch(w)]
            if not single:
                continue
            for phrase in english.split(";"):
                key = _english_key(_clean(phrase))
                if key and key.count(" ") < MAX_PHRASE:
                    found[key].update(single)
    return dict(found)


def catalogue_table(term_ids: Container[str], path: Path = DEBIAN_FILE) -> dict[str, list[str]]:
    """English word or phrase → the German words of its translations the catalogue uses.

    A German word is used when its first index term is one of the catalogue's `term_ids`
    (as `BM25Index.uses` decides). Built with the index, so a search only looks words up.
    """
    entries, heads = _analysed_dictionary(path, _stamp(path))
    used = {word for word, head in heads.items() if head is not None and head in term_ids}
    table = {
        english: [word for word, _ in counts.most_common() if word in used]
        for english, counts in entries.items()
    }
    return {english: german for english, german in sorted(table.items()) if german}


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


@lru_cache(maxsize=2)
def _analysed_dictionary(
    path: Path, stamp: tuple[int, int] | None
) -> tuple[dict[str, Counter[str]], dict[str, str | None]]:
    """Ding's entries, and the index term each of their German words analyses to.

    Parsing Ding and analysing its 290,000 German words takes about ten seconds and is
    the same for every catalogue: a process that builds several indexes (the tests) does
    it once. `stamp` (size, mtime) makes a changed file count as another.
    """
    entries = dictionary(path)
    return entries, head_terms(word for counts in entries.values() for word in counts)


def save_table(path: Path, table: dict[str, list[str]]) -> None:
    path.write_text(json.dumps(table, ensure_ascii=False))


def load_table(path: Path) -> dict[str, list[str]]:
    """The table saved with an index; an index built without it translates nothing."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


# A search-box query of at most this many words can be English without English function
# words ("passport renewal", "dog tax"), which `expansion.looks_english` needs.
MAX_KEYWORDS = 4


def is_english_keywords(
    text: str, table: dict[str, list[str]], uses: Callable[[str], bool]
) -> bool:
    """A few words the catalogue does not use, half of them at least English words of Ding.

    "Handy verloren" is not English ("verloren" is a word of the catalogue), nor "Bank" (the
    catalogue uses it), nor "Radl Westpark" (no English word), nor anything with a German letter.
    """
    if not text.isascii():
        return False
    words = _ENGLISH_WORD.findall(text.lower())
    content = [w for w in words if w not in _FILLER]
    if not content or len(words) > MAX_KEYWORDS:
        return False
    if any(uses(w) for w in content):
        return False
    # Half of them at least must be words the table translates: an English word whose
    # translations the catalogue never uses ("plate": Teller, Platte) is missing from it.
    return 2 * sum(w in table for w in content) >= len(content)


def translate(text: str, table: dict[str, list[str]], limit: int = MAX_TRANSLATIONS) -> list[str]:
    """German words for the English words and phrases of `text`, longest phrase first."""
    words = _ENGLISH_WORD.findall(text.lower())
    extra: list[str] = []
    start = 0
    while start < len(words):
        for size in range(min(MAX_PHRASE, len(words) - start), 0, -1):
            phrase = " ".join(words[start : start + size])
            german = table.get(phrase)
            if german and not (size == 1 and phrase in _FILLER):
                extra.extend(german[:limit])
                start += size
                break
        else:
            start += 1
    return list(dict.fromkeys(extra))
