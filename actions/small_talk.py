"""`action_small_talk`: greetings, thanks, goodbyes and feedback that never win over a concern.

"Servus, ich bin umgezogen und muss mich anmelden" is classified as a greeting by its first
word, and "Kann ich den Verlust auch online melden?" after "Hat Ihnen das geholfen?" as
feedback. Whenever such a message also holds a concern the catalogue knows (or a facet
of the conversation's topic), the concern is answered; otherwise the intent's reply.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import catalogue
from actions.knowledge import CatalogueTurn
from actions.topic import TOPIC_SLOT
from knowledge_index.facets import concern_of, facet_of
from knowledge_index.search import Band

RESPONSE_OF_INTENT = {
    "greet": "utter_greet",
    "goodbye": "utter_goodbye",
    "thank": "utter_thank",
    "chitchat": "utter_chitchat",
    "feedback": "utter_feedback",
    "affirm": "utter_feedback_yes",
    "deny": "utter_feedback_no",
    "bot_challenge": "utter_bot_challenge",
}
# Greeting, thanks and politeness formulas: words that never name a concern.
_COURTESY = re.compile(
    r"\b(hallo|hallöchen|servus|moin|grüß gott|grüezi|guten (?:tag|morgen|abend)|hi|hey|"
    r"tschüss|tschüs|ciao|bye|auf wiedersehen|(?:vielen |herzlichen )?dank\w*|merci|super|"
    r"toll|prima|perfekt|klasse|schön|gut|liebe grüße|mfg|hello|good (?:morning|afternoon|"
    r"evening)|thanks?|thank you|great|nice|cheers|lg)\b",
    re.I,
)
# A concern needs this many words of its own: "Guten Tag, Frau Müller" holds none.
MIN_CONCERN_WORDS = 2
# "Meinen Sie …?" choices instead of the small-talk reply only for a concern this long.
MIN_CHOICE_WORDS = 4


def holds_concern(text: str, topic: str | None) -> bool:
    """Whether a small-talk message also asks something the catalogue should answer."""
    if not text or text.startswith("/") or catalogue.INDEX is None:
        return False
    facet = facet_of(text)
    if facet is not None and (topic or text.rstrip().endswith("?")):
        # A facet question is never small talk, with a topic or without (then: which one?).
        return True
    words = concern_of(_COURTESY.sub(" ", text)).split()
    if len(words) < MIN_CONCERN_WORDS:
        return False
    # By the catalogue's own text: citizens' example phrasings make short courtesies look
    # like a service ("Vielen Dank, das hat mir geholfen" → a counselling service).
    band = catalogue.INDEX.search(" ".join(words)).band_by_catalogue
    if band is Band.ANSWER:
        return True
    return band is Band.SUGGEST and len(words) >= MIN_CHOICE_WORDS


class ActionSmallTalk(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_small_talk"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        text = str(tracker.latest_message.get("text") or "")
        if holds_concern(text, tracker.get_slot(TOPIC_SLOT)):
            turn = CatalogueTurn(dispatcher, tracker, text=_COURTESY.sub(" ", text))
            return turn.read_and_answer()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        response = RESPONSE_OF_INTENT.get(str(intent), "utter_default")
        dispatcher.utter_message(response=response, city=catalogue.city_phrase())
        return []
