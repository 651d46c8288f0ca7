"""Status look-up of a damage report: case number plus the e-mail or postal code given with it.

The gateway answers a wrong pair exactly like an unknown number and throttles
repeated failures per client; the bot only relays that, so it can reveal
nothing either. The client is the citizen's client key from the message
metadata (the gateway puts it there), so chatting counts like calling the API.
A number whose check character is wrong is a typo: the form asks again before
any look-up is spent.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.case_api import CaseApiUnavailable, look_up_case
from actions.damage_report import CATEGORY_NAMES, EMAIL, POSTAL_CODE
from actions.form_answers import AnswerReadingForm, Reply
from handover.cases.numbers import EXAMPLE, IN_TEXT, find_case_number

logger = logging.getLogger(__name__)

STATUS_NAMES = {
    "eingegangen": "eingegangen",
    "in_bearbeitung": "in Bearbeitung",
    "erledigt": "erledigt",
    "abgelehnt": "abgelehnt",
}


def read_case_number(reply: Reply) -> str | None:
    """The case number in the reply (old or new form), canonical; None for a typo."""
    entity = reply.entities.get("case_number")
    return (find_case_number(entity) if entity else None) or find_case_number(reply.text)


def client_key(tracker: Tracker) -> str | None:
    """The citizen's client key the gateway sent with the latest message, if any."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    key = metadata.get("client_key") if isinstance(metadata, dict) else None
    return key if isinstance(key, str) and 0 < len(key) <= 64 else None


def read_verifier(reply: Reply) -> str | None:
    """The e-mail address or postal code the citizen gave with the report."""
    text = reply.text
    for pattern in (EMAIL, POSTAL_CODE):
        match = pattern.search(text)
        if match:
            return match.group(0).strip().lower()
    return None


class ValidateCaseStatusForm(AnswerReadingForm):
    started_by = "check_status"
    hints: ClassVar[dict[str, str]] = {
        "case_number": f"Die Vorgangsnummer hat das Format {EXAMPLE} (MM, Jahr und zweimal "
        "vier Zeichen aus Ziffern und Buchstaben). Bitte prüfen Sie die Nummer.",
        "case_verifier": "Bitte geben Sie die E-Mail-Adresse oder die fünfstellige Postleitzahl "
        "an, die Sie bei der Meldung genannt haben.",
    }

    def name(self) -> str:
        return "validate_case_status_form"

    def read(self, slot: str, reply: Reply, asked: bool) -> Any:
        if slot == "case_number":
            return read_case_number(reply)
        if slot == "case_verifier":
            # A postal code inside a case number is no verifier; read the rest of the text.
            rest = IN_TEXT.sub(" ", reply.text)
            return (
                read_verifier(Reply(rest, reply.intent, {}))
                if asked or rest != reply.text
                else None
            )
        return None


class ActionCaseStatus(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_case_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        number = str(tracker.get_slot("case_number") or "")
        verifier = str(tracker.get_slot("case_verifier") or "")
        forget = [SlotSet("case_number", None), SlotSet("case_verifier", None)]
        try:
            result = await look_up_case(number, verifier, tracker.sender_id, client_key(tracker))
        except CaseApiUnavailable as error:
            logger.warning("Case status not available: %s", error)
            dispatcher.utter_message(
                text="Den Stand kann ich gerade leider nicht abrufen. Bitte versuchen Sie es "
                "später noch einmal oder rufen Sie die Behördennummer 115 an."
            )
            return forget
        if result.retry_after_s is not None:
            dispatcher.utter_message(
                text="Es gab zu viele erfolglose Abfragen. Bitte versuchen Sie es "
                f"{_in(result.retry_after_s)} noch einmal."
            )
        elif not result.found or result.case is None:
            dispatcher.utter_message(
                text="Zu dieser Vorgangsnummer und dieser Angabe habe ich keine Meldung gefunden. "
                "Bitte prüfen Sie die Nummer und die E-Mail-Adresse bzw. Postleitzahl."
            )
        else:
            dispatcher.utter_message(text=describe(result.case))
        return forget


def describe(case: dict[str, Any]) -> str:
    """The case's status and history in German."""
    status = STATUS_NAMES.get(str(case.get("status")), str(case.get("status")))
    category = CATEGORY_NAMES.get(str(case.get("category")), str(case.get("category")))
    lines = [f"Ihre Meldung {case.get('case_number')} ({category}) ist {status}.", "Verlauf:"]
    for entry in case.get("history") or []:
        when = _date(str(entry.get("ts") or ""))
        note = f" – {entry['note']}" if entry.get("note") else ""
        lines.append(
            f"• {when}: {STATUS_NAMES.get(str(entry.get('status')), entry.get('status'))}{note}"
        )
    return "\n".join(lines)


def _in(seconds: int) -> str:
    """'in 30 Sekunden', 'in 1 Minute', 'in 15 Minuten'."""
    if seconds < 60:
        return f"in {seconds} Sekunde{'n' if seconds != 1 else ''}"
    minutes = round(seconds / 60)
    return f"in {minutes} Minute{'n' if minutes != 1 else ''}"


def _date(ts: str) -> str:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).strftime("%d.%m.%Y")
    except ValueError:
        return ts
