"""Mängelmeldung: a citizen reports damage to public infrastructure; the gateway stores the case."""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.case_api import CaseApiUnavailable, create_case
from actions.conversation import is_english
from actions.form_answers import AnswerReadingForm, Reply
from actions.handover import hand_over

logger = logging.getLogger(__name__)

NONE_GIVEN = "-"
CATEGORIES = (
    ("strassenbeleuchtung", re.compile(r"later|beleucht|licht|lampe|leuchte")),
    ("spielplatz", re.compile(r"spielplatz|schaukel|rutsche|sandkasten|klettergerüst|wippe")),
    ("graffiti", re.compile(r"graffiti|schmiererei|gesprüht|sprayer|beschmiert")),
    ("muell", re.compile(r"müll|abfall|unrat|dreck|ablagerung|sperrmüll|flaschen|scherben")),
    (
        "schlagloch",
        re.compile(r"schlagloch|loch|straßenschaden|asphalt|fahrbahn|gehweg|radweg|pflaster"),
    ),
)
OTHER = re.compile(r"etwas anderes|anderes|sonstig|andere")
CATEGORY_NAMES = {
    "schlagloch": "Schlagloch / Straßenschaden",
    "strassenbeleuchtung": "Straßenbeleuchtung",
    "muell": "Müll / wilde Ablagerung",
    "graffiti": "Graffiti",
    "spielplatz": "Spielplatz",
    "sonstiges": "Sonstiger Mangel",
}
STREET = re.compile(
    r"\b([A-ZÄÖÜ][\wäöüß.-]*(?:straße|str\.|weg|platz|allee|gasse|ring|damm|ufer|brücke|park)"
    r"(?:\s+\d+\s?[a-z]?\b)?)"
)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,}")
POSTAL_CODE = re.compile(r"\b(\d{5})\b")
NO_CONTACT = re.compile(r"^\s*(nein|nö|ohne|keine?|nicht|no)\b|ohne e-?mail|möchte ich nicht")
# A first message this long describes the damage well enough to skip the question.
DESCRIBING_WORDS = 8
MAX_LOCATION_CHARS = 300
MAX_DESCRIPTION_CHARS = 2000


def read_category(reply: Reply, asked: bool) -> str | None:
    entity = reply.entities.get("damage_category")
    if entity in CATEGORY_NAMES:
        return entity
    found = next((c for c, pattern in CATEGORIES if pattern.search(reply.words)), None)
    if found is None and asked and OTHER.search(reply.words):
        return "sonstiges"
    return found


def read_location(reply: Reply, asked: bool) -> str | None:
    if asked and reply.text:
        return reply.text[:MAX_LOCATION_CHARS]
    if "location" in reply.entities:
        return reply.entities["location"][:MAX_LOCATION_CHARS]
    # "Graffiti am Spielplatz in der Lindenstraße 3": the one with a number, else the last.
    places: list[str] = STREET.findall(reply.text)
    numbered = [p for p in places if any(ch.isdigit() for ch in p)]
    return (numbered or places)[-1] if places else None


def read_email(reply: Reply, asked: bool) -> str | None:
    return _read_contact(reply, asked, "email", EMAIL)


def read_postal_code(reply: Reply, asked: bool) -> str | None:
    return _read_contact(reply, asked, "postal_code", POSTAL_CODE)


def _read_contact(reply: Reply, asked: bool, entity: str, pattern: re.Pattern[str]) -> str | None:
    """The contact detail, "-" when the citizen declines to give one, or None."""
    match = pattern.search(reply.entities.get(entity) or reply.text)
    if match:
        return match.group(match.lastindex or 0)
    if asked and (reply.intent == "deny" or NO_CONTACT.search(reply.words)):
        return NONE_GIVEN
    return None


class ValidateDamageReportForm(AnswerReadingForm):
    started_by = "report_damage"
    hints: ClassVar[dict[str, str]] = {
        "damage_category": "Bitte wählen Sie eine der Arten von Mängeln.",
        "contact_email": "Das sieht nicht wie eine E-Mail-Adresse aus. Bitte geben Sie eine "
        "Adresse wie name@beispiel.de an oder wählen Sie „Ohne E-Mail“.",
        "contact_postal_code": "Bitte geben Sie eine fünfstellige Postleitzahl an, oder „keine“.",
    }
    any_text_answers = frozenset({"damage_location", "damage_description"})

    def name(self) -> str:
        return "validate_damage_report_form"

    def read(self, slot: str, reply: Reply, asked: bool) -> Any:
        if slot == "damage_category":
            return read_category(reply, asked)
        if slot == "damage_location":
            return read_location(reply, asked)
        if slot == "damage_description":
            if asked and reply.text:
                return reply.text[:MAX_DESCRIPTION_CHARS]
            starts_report = reply.intent == "report_damage"
            return (
                reply.text
                if starts_report and len(reply.text.split()) >= DESCRIBING_WORDS
                else None
            )
        if slot == "contact_email":
            return read_email(reply, asked)
        if slot == "contact_postal_code":
            return (
                read_postal_code(reply, asked)
                if asked or EMAIL.search(reply.text) is None
                else None
            )
        return None

    def needed(self, slot: str, tracker: Tracker) -> bool:
        if slot == "contact_postal_code":
            return bool(tracker.get_slot("contact_email") == NONE_GIVEN)
        return True


FORM_SLOTS = (
    "damage_category",
    "damage_location",
    "damage_description",
    "contact_email",
    "contact_postal_code",
)


class ActionSubmitDamageReport(Action):  # type: ignore[misc]
    """Create the case; the citizen keeps the case number to look up its status."""

    def name(self) -> str:
        return "action_submit_damage_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        category, location, description, email, postal_code = (
            tracker.get_slot(slot) for slot in FORM_SLOTS
        )
        report: dict[str, Any] = {
            "category": category or "sonstiges",
            "location": location,
            "description": description,
            "conversation_id": tracker.sender_id,
            "language": "en" if is_english(tracker) else "de",
        }
        if email and email != NONE_GIVEN:
            report["email"] = email
        if postal_code and postal_code != NONE_GIVEN:
            report["postal_code"] = postal_code
        try:
            case = await create_case(report)
        except CaseApiUnavailable as error:
            logger.warning("Damage report not stored: %s", error)
            what = CATEGORY_NAMES.get(str(category), "Mangel")
            summary = f"Mängelmeldung ({what}) konnte nicht gespeichert werden"
            return hand_over(dispatcher, tracker, "case_api_unavailable", "", summary)
        number = case["case_number"]
        can_look_up = "email" in report or "postal_code" in report
        lines = [
            f"Vielen Dank! Ihre Meldung ist eingegangen. Ihre Vorgangsnummer: {number}",
            f"Art: {CATEGORY_NAMES.get(str(category), category)} · Ort: {location}",
        ]
        if can_look_up:
            lines.append(
                "Den Stand können Sie jederzeit hier im Chat abfragen („Status meiner Meldung“) – "
                "mit der Vorgangsnummer und der E-Mail-Adresse oder Postleitzahl, die Sie "
                "angegeben haben."
            )
        else:
            lines.append(
                "Da Sie weder E-Mail-Adresse noch Postleitzahl angegeben haben, kann ich Ihnen "
                "den Stand später leider nicht nennen."
            )
        dispatcher.utter_message(text="\n".join(lines))
        # The case holds the data now; the conversation need not keep the contact details.
        return [SlotSet(slot, None) for slot in FORM_SLOTS]
