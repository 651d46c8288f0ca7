"""`action_answer_from_knowledge`: answer a service question from the knowledge index.

The index is loaded once, when the action server imports this module; a missing
or broken index is logged and every question then gets the honest "no answer".
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import ask_feedback, is_english, last_citizen_text
from actions.handover import hand_over
from actions.pv_advice import PV_SLOTS
from handover.settings import get_settings

logger = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 420
# A passage that introduces a list may run this long to keep the list whole.
LIST_ANSWER_CHARS = 2 * MAX_ANSWER_CHARS
SENTENCE_ENDS = (".", "!", "?", "…", ":", ")")
NO_ANSWER_DE = (
    "Dazu habe ich in den Informationen der Stadtverwaltung leider keine passende Antwort "
    "gefunden. Können Sie Ihre Frage bitte anders formulieren, zum Beispiel mit dem Namen der "
    "Dienstleistung? Persönlich hilft Ihnen der Bürgerservice unter der Behördennummer 115 "
    "(Montag bis Freitag, 8 bis 18 Uhr)."
)
NO_ANSWER_EN = (
    "I'm sorry, I could not find an answer to that in the city's information. Please try "
    "rephrasing your question, for example with the name of the service. You can also call "
    "the public service number 115 (Monday to Friday, 8 am to 6 pm)."
)
OUT_OF_SCOPE_EN = (
    "I'm sorry, I can't help with that. I answer questions about the services of the city, "
    "for example about ID cards, registering an address or bulky waste."
)


def _load_index() -> Any:
    """The configured index, or None (logged) when it has not been built."""
    from knowledge_index.search import cached_index
    from knowledge_index.store import CURRENT, index_root

    settings = get_settings()
    path = index_root(settings.knowledge_dir, settings.knowledge_source) / CURRENT
    if not path.exists():
        logger.error("No knowledge index at %s; run `make knowledge`.", path)
        return None
    try:
        return cached_index(Path(path).resolve())
    except Exception:
        logger.exception("Knowledge index at %s cannot be loaded", path)
        return None


INDEX = _load_index()
# Loading torch/transformers asks multiprocessing for its start method, which fixes
# it to "fork"; Sanic (the action server) then refuses to set its own. Unset it again.
multiprocessing.set_start_method(None, force=True)


def shorten(text: str, limit: int = MAX_ANSWER_CHARS) -> str:
    """The passage cut at a sentence or line end before `limit` characters."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("\n"), cut.rfind("! "), cut.rfind("? "))
    if end <= limit // 3:
        return cut.rsplit(" ", 1)[0] + " …"
    kept = cut[: end + 1].strip()
    if kept.endswith(SENTENCE_ENDS):
        return kept
    # "Eine Genehmigung brauchen Sie, wenn" means nothing without the list that follows.
    items = text[len(kept) :].strip().split("\n")
    extended = kept
    for item in items:
        if not item.startswith("- ") or len(extended) + len(item) + 1 > LIST_ANSWER_CHARS:
            break
        extended += "\n" + item
    if extended != kept:
        return extended
    intro = kept.rfind("\n")
    return kept[:intro].strip() if intro > 0 else kept


def _doc_payload(doc_id: str) -> str:
    return "/ask_question" + json.dumps({"knowledge_doc": doc_id})


# The advisor "Photovoltaik – brauche ich eine Genehmigung?" starts from these articles
# of the city's own knowledge base (when another catalogue is configured it searches).
PV_ARTICLE = "photovoltaikanlage-genehmigung"
BALCONY_ARTICLE = "balkonkraftwerk-anmelden"
BALCONY_WORDS = ("balkon", "stecker", "mini-pv", "mini pv")


def category_of(doc_id: str | None) -> str:
    """The catalogue category of a document ("" when unknown)."""
    if INDEX is None or not doc_id:
        return ""
    return next((d.category for d in INDEX.documents if d.id == doc_id), "")


def previous_turn_missed(tracker: Tracker) -> bool:
    """Whether the citizen's previous message also found no answer (slot set in that turn)."""
    users_seen = 0
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            users_seen += 1
            if users_seen == 2:
                return False
        elif (
            users_seen == 1
            and event.get("event") == "slot"
            and event.get("name") == "knowledge_miss"
        ):
            return bool(event.get("value"))
    return False


class ActionAnswerFromKnowledge(Action):  # type: ignore[misc]
    """Answer, offer close candidates, or admit there is no answer (hand over the second time).

    Also runs for out-of-scope requests: the intent classifier's idea of what the city does
    is learnt from examples, the catalogue is the authority. A request the catalogue answers
    confidently ("Ich habe mein Handy in der U-Bahn verloren" → Fundbüro) gets the answer;
    anything else the polite refusal.
    """

    def name(self) -> str:
        return "action_answer_from_knowledge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        text = str(tracker.latest_message.get("text") or "")
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        english = is_english(tracker)
        events: list[dict[str, Any]] = [SlotSet("offer", None)]
        if INDEX is None:
            if intent == "out_of_scope":
                return [*events, *self._out_of_scope(dispatcher, english)]
            return events + self._no_answer(dispatcher, tracker, english)
        if intent == "pv_advice":
            return events + self._advisor_intro(dispatcher, text, english)
        chosen = next(tracker.get_latest_entity_values("knowledge_doc"), None)
        if chosen is not None:
            hit = INDEX.hit_for(str(chosen), last_citizen_text(tracker))
            if hit is not None:
                return events + self._answer(dispatcher, hit, english=english)
        result = INDEX.search(text)
        english = english or result.english
        if result.band.value == "answer" and result.hits:
            return events + self._answer(dispatcher, result.hits[0], english=english)
        if intent == "out_of_scope":
            # The classifier took this for no matter of the city's, and the catalogue agrees.
            return [*events, *self._out_of_scope(dispatcher, english)]
        if result.band.value == "suggest" and result.hits:
            buttons = [
                {"title": hit.title, "payload": _doc_payload(hit.doc_id)} for hit in result.hits[:3]
            ]
            prompt = "Did you mean one of these?" if english else "Meinen Sie …?"
            dispatcher.utter_message(text=prompt, buttons=buttons)
            return [*events, SlotSet("knowledge_miss", False)]
        return events + self._no_answer(dispatcher, tracker, english)

    @staticmethod
    def _out_of_scope(dispatcher: CollectingDispatcher, english: bool) -> list[dict[str, Any]]:
        """Not a miss: the bot understood the request, the city just does not do it."""
        if english:
            dispatcher.utter_message(text=OUT_OF_SCOPE_EN)
        else:
            dispatcher.utter_message(response="utter_out_of_scope")
        return [SlotSet("knowledge_miss", False)]

    @staticmethod
    def _no_answer(
        dispatcher: CollectingDispatcher, tracker: Tracker, english: bool
    ) -> list[dict[str, Any]]:
        if previous_turn_missed(tracker):
            return [
                SlotSet("knowledge_miss", False),
                *hand_over(dispatcher, tracker, "not_understood"),
            ]
        dispatcher.utter_message(text=NO_ANSWER_EN if english else NO_ANSWER_DE)
        return [SlotSet("knowledge_miss", True)]

    def _advisor_intro(
        self, dispatcher: CollectingDispatcher, text: str, english: bool
    ) -> list[dict[str, Any]]:
        """The general answer first; the advisor form then asks about the citizen's project."""
        assert INDEX is not None
        doc_id = BALCONY_ARTICLE if any(w in text.lower() for w in BALCONY_WORDS) else PV_ARTICLE
        hit = INDEX.hit_for(doc_id, text)
        if hit is None:
            result = INDEX.search(text)
            hit = result.hits[0] if result.band.value == "answer" and result.hits else None
        # A new advice starts from scratch: the form reads this question, then asks.
        events: list[dict[str, Any]] = [SlotSet("knowledge_miss", False)]
        events += [SlotSet(slot, None) for slot in PV_SLOTS]
        if hit is not None:
            events += self._answer(dispatcher, hit, english=english, feedback=False)
        dispatcher.utter_message(
            text="I can check this for your project in particular: a few short questions."
            if english
            else "Ob Sie eine Genehmigung brauchen, kann ich für Ihr Vorhaben genauer prüfen. "
            "Dazu ein paar kurze Fragen."
        )
        return events

    @staticmethod
    def _answer(
        dispatcher: CollectingDispatcher, hit: Any, english: bool, feedback: bool = True
    ) -> list[dict[str, Any]]:
        passage = shorten(hit.passage.text)
        if english:
            text = (
                f"The city's information on this is only available in German. The most relevant "
                f"service is “{hit.title}”; here is the passage from it:\n\n{passage}"
            )
        else:
            text = f"{hit.title}: {passage}" if not passage.startswith(hit.title) else passage
        links = [{"title": hit.title, "url": hit.url}] if hit.url else []
        dispatcher.utter_message(json_message={"text": text, "links": links})
        if feedback:
            ask_feedback(dispatcher, english)
        return [SlotSet("knowledge_miss", False), SlotSet("last_article", hit.doc_id)]


__all__ = ["ActionAnswerFromKnowledge", "category_of", "previous_turn_missed", "shorten"]
