"""Topic memory: is a message a follow-up on the conversation's service, or a new concern?

The conversation's current service (slot `knowledge_topic`) is set by every answer about
a service and kept through forms, small talk, out-of-scope turns, handovers and hand-backs.
A message is read against it:

- a facet question that names nothing else ("Was kostet das?", "and do I need an
  appointment?") is a follow-up on the topic; before any topic it gets a question back,
  and after "Meinen Sie …?" the facet of each service offered;
- a message whose concern the catalogue places clearly on another service ("Und beim
  Reisepass?") switches the topic; an elliptical one borrows the previous facet;
- a message that turns to another matter ("Außerdem …", "Und wie sieht es mit … aus?") is
  read as if there were no topic;
- otherwise the topic stays, and a facet question never answers for another service (those
  the rest of it may mean are offered beside the topic's answer).

A facet question leaves its topic (or the services just offered) only when the catalogue's
own text is sure of another service (`SearchResult.band_by_catalogue`): a few words beside a
facet ("so eine Parkerlaubnis", "den zusätzlichen Schein") can match one service's example
questions by chance, and for a follow-up that is far likelier about the topic.

`read_turn` is a pure function of the search result, so the rules are tested without Rasa.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import StrEnum

from spacy.lang.en.stop_words import STOP_WORDS

from knowledge_index.analysis import STOP, fold
from knowledge_index.facets import Facet
from knowledge_index.search import Band, SearchResult

# The topic stays when its fused score is at least this share of the best service's: a
# message that fits the topic about as well as anything else is about the topic.
STAY_RATIO = 0.8
# With only "Meinen Sie …?" confidence, the topic stays when it is among these candidates.
CHOICES = 3
# Beside a facet, a remainder of this many content words or fewer ("wohn Haidhausen",
# "reich … ein") is circumstance, not another concern, unless the catalogue is sure of one.
THIN_CONCERN_WORDS = 2
# After "Außerdem …", this many content words name a new matter ("Taxi Genehmigung"); one
# is what a follow-up's "wie sieht es … aus" or "für Kinder" leaves.
AWAY_CONCERN_WORDS = 2

# An English question's remainder discounts English function words too ("one", "whole").
STOP_WITH_ENGLISH = frozenset(STOP | STOP_WORDS)

# A message that opens with one of these turns to another matter ("Außerdem …", "Noch was
# anderes: …", "Und wie sieht es mit einem Taxi aus?"): what it names is not the topic. "Eine
# andere Frage" may come with a word or two of its own ("Kurze andere Frage: …").
_ANOTHER_MATTER = re.compile(
    r"^\W*(?:und\s+|also\s+|ach\s+ja,?\s+)?(?:außerdem|ausserdem|übrigens|zudem|"
    r"noch\s+(?:et)?was(?:\s+anderes)?|noch\s+eine\s+frage|"
    r"(?:\w+\s+){0,2}andere[rns]?\s+(?:frage|sache|thema|anliegen)|"
    r"wie\s+(?:sieht|ist)\s+es\s+(?:mit|bei)|was\s+ist\s+(?:mit|bei)|"
    r"wenn\s+ich\s+schon\s+dabei\s+bin|"
    r"by\s+the\s+way|(?:\w+\s+){0,2}(?:another|different|other)\s+(?:question|matter|topic)|"
    r"one\s+more\s+thing|what\s+about|how\s+about)\b",
    re.IGNORECASE,
)

TOPIC_SLOT = "knowledge_topic"
TOPIC_TITLE_SLOT = "knowledge_topic_title"
FACET_SLOT = "knowledge_facet"
OFFICE_SLOT = "knowledge_office"
# The services last offered with "Meinen Sie …?", until one of them is answered.
CANDIDATES_SLOT = "knowledge_candidates"


class Move(StrEnum):
    FOLLOW_UP = "follow_up"  # answer `facet` (or the best passage) of the topic
    NEW_TOPIC = "new_topic"  # answer the search's top service
    CHOICES = "choices"  # offer the top services
    ASK_WHICH = "ask_which"  # a follow-up with no topic: each offered service's facet, or ask
    NONE = "none"  # nothing fits


@dataclass(frozen=True)
class Reading:
    move: Move
    doc_id: str | None = None
    facet: Facet | None = None
    # Services the message may mean instead of the topic, offered beside its answer.
    others: tuple[str, ...] = ()


def _content_words(text: str, stop: AbstractSet[str]) -> list[str]:
    return [w for w in re.findall(r"\w+", text) if fold(w) not in stop]


def _thin(result: SearchResult) -> bool:
    """Whether a facet question's remainder is only a word or two of circumstance.

    An English question's function words count as nothing too: "What would a permit for
    one year cost me?" leaves "permit one year", as thin as the German "für ein Jahr".
    """
    stop = STOP_WITH_ENGLISH if result.english else STOP
    return len(_content_words(result.query, stop)) <= THIN_CONCERN_WORDS


def turns_away(text: str, concern: str) -> bool:
    """Whether a message turns to another matter and names it: read without the topic.

    "Und wie sieht es mit einem Taxi aus, was kostet da die Genehmigung?" asks the fee of
    something new; "Außerdem: was kostet das?" still asks about the topic.
    """
    named = _content_words(concern, STOP_WITH_ENGLISH)
    return bool(_ANOTHER_MATTER.match(text)) and len(named) >= AWAY_CONCERN_WORDS


def _names_surely(whole: Callable[[], SearchResult] | None, doc_id: str) -> bool:
    """Whether the whole message, facet words and all, is surely about `doc_id` too."""
    if whole is None:
        return False
    found = whole()
    return (
        found.band_by_catalogue is Band.ANSWER
        and bool(found.hits)
        and found.hits[0].doc_id == doc_id
    )


def _stays(result: SearchResult, topic: str) -> bool:
    if not result.hits:
        return True
    top = result.hits[0]
    if top.doc_id == topic:
        return True
    return top.score <= 0 or result.score_of(topic) >= STAY_RATIO * top.score


def read_turn(
    topic: str | None,
    facet: Facet | None,
    names_concern: bool,
    result: SearchResult | None,
    borrowed_facet: Facet | None = None,
    offered: tuple[str, ...] = (),
    whole: Callable[[], SearchResult] | None = None,
    points_back: bool = False,
) -> Reading:
    """How to answer a message, given the topic, its facet and the search of its concern.

    `names_concern` is whether anything is left of the message once its facet words and
    filler are gone; `result` searches that remainder (None when nothing is left).
    `borrowed_facet` is the previous turn's facet, for an elliptical "Und beim …?".
    `offered` are the services the last answer offered ("Meinen Sie …?"), if it did.
    `whole` searches the whole message, called only when a thin remainder beside a facet
    is sure enough to leave the topic: it must then be sure of the whole message too.
    `points_back` is whether the message points back at its subject ("das", "dafür").
    """
    if facet is not None and (not names_concern or result is None):
        return Reading(Move.FOLLOW_UP, topic, facet) if topic else Reading(Move.ASK_WHICH)
    if result is None or not result.hits:
        return Reading(Move.FOLLOW_UP, topic, facet) if topic and facet else Reading(Move.NONE)
    top = result.hits[0].doc_id
    if not topic and facet is not None and offered:
        if result.band_by_catalogue is not Band.ANSWER:
            # After "Meinen Sie …?", "Was zahlt man für so eine Genehmigung?" asks about one
            # of those: the facet of each, not new choices or "no answer" for its few words.
            return Reading(Move.ASK_WHICH)
        if top in offered:
            # "Geht die Abmeldung damit übers Netz?": the catalogue's own text is sure of one
            # of the services offered, though the examples leave it a choice.
            return Reading(Move.NEW_TOPIC, top, facet)
    if topic:
        stays = _stays(result, topic)
        if facet is not None:
            band = result.band_by_catalogue
            if stays or band is Band.NONE:
                return Reading(Move.FOLLOW_UP, topic, facet)
            if _thin(result) and not (band is Band.ANSWER and _names_surely(whole, top)):
                # "Was zahle ich für den Ersatz?": one word beside a facet matched a title
                # ("… Urkunden-Änderung oder Ersatz") surely on its own, but the question is
                # about the topic's replacement; "Was kostet ein Reisepass?" is surely about
                # the passport as a whole, too.
                return Reading(Move.FOLLOW_UP, topic, facet)
            if band is Band.ANSWER:
                return Reading(Move.NEW_TOPIC, top, facet)
            if points_back:
                # "Kann ich das per E-Mail beantragen? Ich komme tagsüber schlecht weg": the
                # catalogue merely suggests another service for the circumstances, and "das"
                # is the topic: its facet, not choices.
                return Reading(Move.FOLLOW_UP, topic, facet)
            # "Reichen die Geburtsurkunden der Kinder als Nachweis?": the catalogue merely
            # suggests other services for the rest. The topic's facet, never another's, and
            # those services to choose instead.
            others = tuple(hit.doc_id for hit in result.hits[:CHOICES] if hit.doc_id != topic)
            return Reading(Move.FOLLOW_UP, topic, facet, others[: CHOICES - 1])
        if result.band is Band.ANSWER:
            if stays:
                return Reading(Move.FOLLOW_UP, topic, None)
            return Reading(Move.NEW_TOPIC, top, borrowed_facet)
        if result.band is Band.SUGGEST:
            if topic in [hit.doc_id for hit in result.hits[:CHOICES]]:
                return Reading(Move.FOLLOW_UP, topic, None)
            return Reading(Move.CHOICES, facet=borrowed_facet)
        return Reading(Move.NONE)
    if result.band is Band.ANSWER:
        return Reading(Move.NEW_TOPIC, top, facet)
    if result.band is Band.SUGGEST:
        return Reading(Move.CHOICES, facet=facet)
    return Reading(Move.NONE)
