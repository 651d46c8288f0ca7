"""`action_offer_handover`: a complaint gets an apology and the offer of a person.

The classifier hears frustration in some questions ("Was zahlt man da, er ist ja noch
minderjährig?", "Warum kostet das so viel?"). When such a question asks a facet of the
topic, or of a service just offered, it gets that answer first; the offer of a person
follows either way, so a citizen who did complain is not brushed off with a fee. Inside a
form a complaint only offers the person (rules.yml then leaves the form).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import is_english
from actions.handover import offer_handover, queue_for_article
from actions.knowledge import CatalogueTurn
from actions.topic import TOPIC_SLOT

APOLOGY = (
    "Das tut mir leid – ich konnte Ihnen bisher nicht so helfen, wie Sie es brauchen. "
    "Möchten Sie, dass ich Sie mit einer Mitarbeiterin oder einem Mitarbeiter verbinde?",
    "I'm sorry that I couldn't help you so far. Would you like me to connect you with a "
    "member of staff?",
)
AFTER_ANSWER = (
    "Wenn Ihnen das nicht weiterhilft, verbinde ich Sie gern mit einer Mitarbeiterin oder "
    "einem Mitarbeiter. Möchten Sie das?",
    "If that does not help you, I can connect you with a member of staff. Would you like that?",
)


class ActionOfferHandover(Action):  # type: ignore[misc]
    """A complaint: apologise (or answer the question in it), and offer a person."""

    def name(self) -> str:
        return "action_offer_handover"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        queue = queue_for_article(tracker.get_slot(TOPIC_SLOT))
        if not tracker.active_loop_name:
            turn = CatalogueTurn(dispatcher, tracker)
            answered = turn.facet_question()
            if answered is not None:
                text = AFTER_ANSWER[turn.english]
                return answered + offer_handover(dispatcher, tracker, text, "complaint", queue)
        text = APOLOGY[is_english(tracker)]
        return offer_handover(dispatcher, tracker, text, "complaint", queue)
