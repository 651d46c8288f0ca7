"""Handing the conversation to a person: the bot's structured handover event.

The event is a bot message whose `custom.handover` the gateway acts on (see
handover/rasa/client.py): it carries the reason, the target queue, the language and
a one-line summary for the agent. The message text tells the citizen why.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.catalogue import category_of
from actions.conversation import citizen_texts, is_english, last_citizen_text, one_line
from actions.topic import TOPIC_SLOT

# Queues of the city's departments, chosen by the topic the conversation was about.
QUEUE_OF_CATEGORY = {
    "Bauen und Wohnen": "bauamt",
    "Verkehr und Fahrzeuge": "kfz",
    "Ausweise und Dokumente": "buergerbuero",
    "Meldewesen und Wahlen": "buergerbuero",
    "Standesamt und Urkunden": "buergerbuero",
}
# No topic: "" lets the gateway choose its configured default queue (DEFAULT_QUEUE).
DEFAULT_QUEUE = ""

# Why the bot hands over, in the citizen's words (German, English).
WHY: dict[str, tuple[str, str]] = {
    "citizen_request": (
        "Gern verbinde ich Sie mit einer Mitarbeiterin oder einem Mitarbeiter des Bürgerservice.",
        "I'll gladly connect you with a member of the citizen service team.",
    ),
    "not_understood": (
        "Ich verbinde Sie mit einer Mitarbeiterin oder einem Mitarbeiter, die oder der Ihre "
        "Frage persönlich beantwortet.",
        "I'm connecting you with a member of staff who will answer your question personally.",
    ),
    "complaint": (
        "Ich verbinde Sie mit einer Mitarbeiterin oder einem Mitarbeiter, die oder der sich "
        "persönlich um Ihr Anliegen kümmert.",
        "I'm connecting you with a member of staff who will look after your concern personally.",
    ),
    "listed_building": (
        "Ob und wie Sie auf einem Baudenkmal eine Solaranlage bauen dürfen, entscheidet das "
        "Bauamt im Einzelfall. Ich verbinde Sie mit der Bauberatung.",
        "Whether a solar installation is allowed on a listed building is decided case by case "
        "by the building authority. I'm connecting you with its advisory service.",
    ),
    "advisor_unclear": (
        "Ihr Vorhaben muss das Bauamt im Einzelfall prüfen. Ich verbinde Sie mit der Bauberatung.",
        "The building authority has to check your project individually. I'm connecting you "
        "with its advisory service.",
    ),
    "case_api_unavailable": (
        "Ich konnte Ihre Meldung gerade nicht speichern. Ich verbinde Sie mit einer Mitarbeiterin "
        "oder einem Mitarbeiter, die oder der sie aufnimmt.",
        "I could not save your report just now. I'm connecting you with a member of staff "
        "who will take it down.",
    ),
}
OFFER_WITHDRAWN = [
    SlotSet(slot, None) for slot in ("offer", "offer_reason", "offer_queue", "offer_summary")
]
HISTORY_NOTE = (
    " Ihr bisheriger Chatverlauf wird übergeben – Sie müssen nichts wiederholen.",
    " Your conversation so far is passed on – you won't have to repeat anything.",
)


def queue_for_article(doc_id: str | None) -> str:
    """The department queue for the last article the citizen was shown."""
    if not doc_id:
        return DEFAULT_QUEUE
    return QUEUE_OF_CATEGORY.get(category_of(doc_id), DEFAULT_QUEUE)


def hand_over(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    reason: str,
    queue: str | None = None,
    summary: str | None = None,
) -> list[dict[str, Any]]:
    """Tell the citizen why, and emit the handover event the gateway queues."""
    english = is_english(tracker)
    why = WHY.get(reason, WHY["citizen_request"])[english] + HISTORY_NOTE[english]
    event = {
        "reason": reason,
        "queue": queue or queue_for_article(tracker.get_slot(TOPIC_SLOT)),
        "language": "en" if english else "de",
        "summary": summary or one_line(last_citizen_text(tracker)),
    }
    dispatcher.utter_message(json_message={"text": why, "handover": event})
    return list(OFFER_WITHDRAWN)


def offer_handover(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    text: str,
    reason: str,
    queue: str,
    summary: str | None = None,
) -> list[dict[str, Any]]:
    """Ask whether the citizen wants a person; the next yes/no decides (rules.yml)."""
    english = is_english(tracker)
    buttons = (
        [
            {"title": "Yes, please", "payload": "/affirm"},
            {"title": "No, thanks", "payload": "/deny"},
        ]
        if english
        else [
            {"title": "Ja, bitte verbinden", "payload": "/affirm"},
            {"title": "Nein, danke", "payload": "/deny"},
        ]
    )
    dispatcher.utter_message(text=text, buttons=buttons)
    return [
        SlotSet("offer", "handover"),
        SlotSet("offer_reason", reason),
        SlotSet("offer_queue", queue),
        SlotSet("offer_summary", summary),
    ]


class ActionHandover(Action):  # type: ignore[misc]
    """The citizen asked for a person, or accepted the bot's offer of one."""

    def name(self) -> str:
        return "action_handover"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        offered = tracker.get_slot("offer") == "handover"
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if offered and intent == "affirm":
            return hand_over(
                dispatcher,
                tracker,
                str(tracker.get_slot("offer_reason") or "citizen_request"),
                tracker.get_slot("offer_queue"),
                summary=tracker.get_slot("offer_summary") or _offer_summary(tracker),
            )
        return hand_over(dispatcher, tracker, "citizen_request")


class ActionDeclineHandover(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_decline_handover"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_handover_declined")
        return list(OFFER_WITHDRAWN)


def _offer_summary(tracker: Tracker) -> str:
    """For an accepted offer the citizen's "ja" says nothing; the question before it does."""
    texts = citizen_texts(tracker)
    meaningful = [t for t in texts if len(t.split()) > 2]
    return one_line(meaningful[-1] if meaningful else (texts[-1] if texts else ""))
