"""Forms that read every answer they can from each message the citizen writes.

A citizen rarely answers one question at a time: "8 kWp aufs Dach meines
denkmalgeschützten Hauses" answers three. Each form reads all of its slots from
every message; an answer it cannot read gets a short hint and the question again;
asking for a person, complaining or saying goodbye leaves the form to the rules
(Rasa rejects the form's turn when nothing was read).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

# Intents that end the form's turn instead of answering its question, when the reply
# is no answer: a person, a complaint, goodbye, "nein"/"abbrechen" to a question that has
# no such answer (data/bot/rules.yml takes over)...
LEAVING_INTENTS = frozenset({"request_human", "complain", "goodbye", "deny"})
# ...or another concern, said in a sentence: a bare "lena at example" is a mistyped
# answer (the NLU calls bare e-mails check_status), not a new request.
OTHER_CONCERNS = frozenset({"ask_question", "pv_advice", "report_damage", "check_status"})
# A short reply of these stops a form even where any text is an answer ("Nein", "Tschüss").
STOPPING_INTENTS = frozenset({"deny", "goodbye"})
CONCERN_MIN_WORDS = 4
UNCLEAR_DE = "Das habe ich leider nicht verstanden."


@dataclass(frozen=True)
class Reply:
    """One citizen message as the forms see it."""

    text: str
    intent: str
    entities: dict[str, str]

    @classmethod
    def latest(cls, tracker: Tracker) -> Reply:
        message = tracker.latest_message or {}
        entities: dict[str, str] = {}
        for entity in message.get("entities") or []:
            entities.setdefault(str(entity.get("entity")), str(entity.get("value")))
        return cls(
            text=str(message.get("text") or "").strip(),
            intent=str((message.get("intent") or {}).get("name") or ""),
            entities=entities,
        )

    @property
    def words(self) -> str:
        """Lower-case text padded with spaces, for whole-word matching."""
        return f" {self.text.lower()} "


class AnswerReadingForm(FormValidationAction, ABC):  # type: ignore[misc]
    """Base of the forms: subclasses say how to read each slot from a reply."""

    # The intent that starts the form: repeating it inside the form is no change of topic.
    started_by: ClassVar[str] = ""
    # What to say when the answer to a question could not be read.
    hints: ClassVar[dict[str, str]] = {}
    # Slots whose question any text answers (a place, a description).
    any_text_answers: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def read(self, slot: str, reply: Reply, asked: bool) -> Any:
        """The value of `slot` in `reply`, or None. `asked`: it answers this slot's question."""
        raise NotImplementedError

    async def get_extraction_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        reply = Reply.latest(tracker)
        if reply.intent == "request_human":
            return []
        requested = tracker.get_slot("requested_slot")
        if requested in self.any_text_answers and self._no_answer(reply):
            return []
        values: dict[str, Any] = {}
        for slot in self.domain_slots(domain):
            asked = slot == requested
            # Unasked mentions fill gaps; they never overwrite an answer already given.
            if not asked and tracker.get_slot(slot) is not None:
                continue
            value = self.read(slot, reply, asked)
            if value is not None:
                values[slot] = value
        if requested and requested not in values:
            if self._leaves(reply):
                return []
            dispatcher.utter_message(text=self.hints.get(requested, UNCLEAR_DE))
            values[requested] = None
        tracker.slots.update(values)
        return [SlotSet(slot, value) for slot, value in values.items()]

    def _no_answer(self, reply: Reply) -> bool:
        """Whether a reply to a question any text answers (a place) is still none: one that
        leaves, and plainly so: a question about another matter ("Was kostet eigentlich ein
        Reisepass?"), a button of another question, a short "Nein" or "Tschüss"."""
        short = len(reply.text.split()) < CONCERN_MIN_WORDS
        plainly = (
            reply.text.endswith("?")
            or reply.text.startswith("/")
            or (short and reply.intent in STOPPING_INTENTS)
        )
        return plainly and self._leaves(reply)

    def _leaves(self, reply: Reply) -> bool:
        if reply.text.startswith("/") or reply.intent in LEAVING_INTENTS:
            return True
        other = reply.intent in OTHER_CONCERNS and reply.intent != self.started_by
        return other and len(reply.text.split()) >= CONCERN_MIN_WORDS

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[str]:
        return [slot for slot in domain_slots if self.needed(slot, tracker)]

    def needed(self, slot: str, tracker: Tracker) -> bool:
        """Whether the form still has to ask for `slot`, given the answers so far."""
        return True
