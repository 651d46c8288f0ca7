"""Advisor "Photovoltaik – brauche ich eine Genehmigung?".

The rules follow the Musterstadt articles `photovoltaikanlage-genehmigung` and
`balkonkraftwerk-anmelden` (state building code: solar on roofs and façades is
exempt from permits; listed buildings need a heritage permit; plug-in systems up
to 800 W only need registering). A listed building, or a free-standing system
too large for the exemption, is a case the building authority must judge: the
advisor offers a person from the Bauamt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import ask_feedback, is_english
from actions.form_answers import AnswerReadingForm, Reply
from actions.handover import offer_handover

PV_URL = "https://www.musterstadt.example/dienstleistungen/photovoltaikanlage-genehmigung"
BALCONY_URL = "https://www.musterstadt.example/dienstleistungen/balkonkraftwerk-anmelden"
HERITAGE_URL = "https://www.musterstadt.example/dienstleistungen/denkmalrechtliche-erlaubnis"
# The advisor's answers, in the order `advise` and `summary` take them.
PV_SLOTS = ("pv_mounting", "pv_building", "pv_listed", "pv_size_kwp")
UNKNOWN = "unbekannt"
# Module area per kWp with today's modules (about 400 Wp on 2 m²).
SQUARE_METRES_PER_KWP = 5.0
# Free-standing systems up to 3 m high and 9 m long are exempt: about this many kWp.
FREE_STANDING_EXEMPT_KWP = 4.0

MOUNTINGS = (
    ("balkon", re.compile(r"balkon|stecker|mini[- ]?pv|plug[- ]?in|balcony")),
    ("freistehend", re.compile(r"frei ?steh|freifl|garten|im hof|boden|aufständer|carport")),
    ("dach", re.compile(r"dach|fassade|aufdach|hauswand|außenwand|roof")),
)
BUILDINGS = (
    (
        "mehrfamilienhaus",
        re.compile(r"mehrfamilien|wohnung|miete|vermiet|eigentümergemeinschaft|weg\b"),
    ),
    ("gewerbe", re.compile(r"gewerb|halle|landwirt|scheune|stall|firma|betrieb|büro|lager")),
    (
        "einfamilienhaus",
        re.compile(
            r"einfamilien|doppelhaus|reihenhaus|eigenheim|bungalow|bauernhaus|landhaus|villa|"
            r"wohnhaus|mein haus"
        ),
    ),
)
HERITAGE = re.compile(r"denkmal|ensemble|altstadt")
HERITAGE_NEGATED = re.compile(
    r"(nicht|kein\w*)\s+(\w+\s+){0,2}(denkmal|ensemble|unter denkmal)|nicht (im|in der) altstadt"
)
YES = re.compile(r"^\s*(ja|jap|jo|genau|richtig|stimmt|yes)\b")
NO = re.compile(r"^\s*(nein|nee|nö|no|nicht|kein)\b")
DONT_KNOW = re.compile(
    r"weiß (ich )?nicht|weiss (ich )?nicht|keine ahnung|unsicher|unbekannt|noch nicht|don'?t know"
)
KWP = re.compile(r"(\d+(?:[.,]\d+)?)\s*(kwp|kw\b|kilowatt)")
WATT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(wp|w\b|watt)")
NUMBER = re.compile(r"^\D*(\d+(?:[.,]\d+)?)\D*$")


def _first(patterns: tuple[tuple[str, re.Pattern[str]], ...], words: str) -> str | None:
    return next((value for value, pattern in patterns if pattern.search(words)), None)


def read_listed(reply: Reply, asked: bool) -> str | None:
    """ "ja", "nein", "unbekannt" or None; a mention of Denkmal counts even unasked."""
    words = reply.words
    if HERITAGE.search(words):
        return "nein" if HERITAGE_NEGATED.search(words) else "ja"
    if not asked:
        return None
    if DONT_KNOW.search(words):
        return UNKNOWN
    if reply.intent == "affirm" or YES.search(words):
        return "ja"
    if reply.intent == "deny" or NO.search(words):
        return "nein"
    return None


def read_size_kwp(reply: Reply, asked: bool) -> float | str | None:
    """kWp as a number ("8,5 kWp", "600 Watt"; a bare number when asked) or "unbekannt"."""
    words = reply.words
    for pattern, scale in ((KWP, 1.0), (WATT, 0.001)):
        match = pattern.search(words)
        if match:
            return _plausible(float(match.group(1).replace(",", ".")) * scale)
    if not asked:
        return None
    if DONT_KNOW.search(words):
        return UNKNOWN
    match = NUMBER.match(words)
    return _plausible(float(match.group(1).replace(",", "."))) if match else None


def _plausible(kwp: float) -> float | None:
    return round(kwp, 2) if 0 < kwp <= 10_000 else None


class ValidatePvAdviceForm(AnswerReadingForm):
    started_by = "pv_advice"
    hints: ClassVar[dict[str, str]] = {
        "pv_mounting": "Bitte wählen Sie: auf dem Dach, freistehend oder Balkonkraftwerk.",
        "pv_building": "Bitte wählen Sie: Einfamilienhaus, Mehrfamilienhaus oder Gewerbegebäude.",
        "pv_listed": "Bitte antworten Sie mit „ja“, „nein“ oder „weiß ich nicht“.",
        "pv_size_kwp": "Bitte nennen Sie eine Zahl in kWp (z. B. „8“) oder schreiben Sie "
        "„weiß nicht“.",
    }

    def name(self) -> str:
        return "validate_pv_advice_form"

    def read(self, slot: str, reply: Reply, asked: bool) -> Any:
        if slot == "pv_mounting":
            return _first(MOUNTINGS, reply.words)
        if slot == "pv_building":
            return _first(BUILDINGS, reply.words)
        if slot == "pv_listed":
            return read_listed(reply, asked)
        if slot == "pv_size_kwp":
            return read_size_kwp(reply, asked)
        return None

    def needed(self, slot: str, tracker: Tracker) -> bool:
        if tracker.get_slot("pv_listed") == "ja":
            return slot == "pv_listed"  # the Bauamt decides; nothing else changes the answer
        if slot == "pv_size_kwp":
            return tracker.get_slot("pv_mounting") in ("dach", "freistehend")
        return True


@dataclass
class Advice:
    """The advisor's personal answer; `offer` names a handover reason when a person must judge."""

    paragraphs: list[str] = field(default_factory=list)
    link: tuple[str, str] = ("Photovoltaikanlage – Genehmigung und Anmeldung", PV_URL)
    offer: str | None = None


def advise(mounting: str | None, building: str | None, listed: str | None, size: Any) -> Advice:
    """What this citizen's project needs, in German."""
    advice = Advice()
    say = advice.paragraphs.append
    if listed == "ja":
        say(
            "Weil Ihr Gebäude ein Baudenkmal ist oder im Denkmalbereich „Altstadt“ liegt, brauchen "
            "Sie für eine Solaranlage eine denkmalrechtliche Erlaubnis – auch für sichtbare "
            "Balkonkraftwerke. Ob und wie die Anlage möglich ist (z. B. auf einer von der Straße "
            "nicht sichtbaren Dachfläche oder mit roten Modulen), entscheidet die Untere "
            "Denkmalschutzbehörde im Einzelfall."
        )
        advice.link = ("Denkmalrechtliche Erlaubnis", HERITAGE_URL)
        advice.offer = "listed_building"
        return advice
    if mounting == "balkon":
        advice.link = ("Balkonkraftwerk anmelden", BALCONY_URL)
        say(
            "Für ein Balkonkraftwerk (Steckersolargerät bis 800 Watt Wechselrichterleistung und "
            "2.000 Watt Modulleistung) brauchen Sie keine Baugenehmigung. Registrieren Sie es "
            "innerhalb eines Monats nach Inbetriebnahme im Marktstammdatenregister der "
            "Bundesnetzagentur; eine Anmeldung beim Netzbetreiber ist nicht mehr nötig."
        )
        if building == "mehrfamilienhaus":
            say(
                "In einer Miet- oder Eigentumswohnung brauchen Sie die Zustimmung der Vermieterin "
                "oder des Vermieters bzw. einen Beschluss der Eigentümergemeinschaft. Sie darf "
                "nur aus wichtigen Gründen verweigert werden."
            )
    elif mounting == "freistehend":
        say(
            "Freistehende Solaranlagen sind bis 3 m Höhe und 9 m Gesamtlänge verfahrensfrei, "
            "also ohne Baugenehmigung möglich."
        )
        if isinstance(size, int | float):
            area = round(size * SQUARE_METRES_PER_KWP)
            if size > FREE_STANDING_EXEMPT_KWP:
                say(
                    f"Eine Anlage mit {_kwp(size)} braucht rund {area} m² Modulfläche und "
                    "überschreitet diese Grenzen wahrscheinlich: Dann ist ein Bauantrag nötig, "
                    "den das Bauamt prüft."
                )
                advice.offer = "advisor_unclear"
            else:
                say(
                    f"Eine Anlage mit {_kwp(size)} (rund {area} m² Modulfläche) passt in der Regel "
                    "in diese Grenzen."
                )
        else:
            say(
                "Für größere Anlagen ist ein Bauantrag nötig; die Bauberatung hilft bei der "
                "Einschätzung."
            )
        _grid(say, size)
    else:
        say(
            "Eine Solaranlage auf dem Dach oder an der Fassade ist verfahrensfrei: Sie brauchen "
            "keine Baugenehmigung."
        )
        if building == "gewerbe":
            say(
                "Bei Gewerbe- und landwirtschaftlichen Gebäuden achten Sie besonders auf den "
                "Brandschutz (Abstand zu Brandwänden); bei Hochhäusern ist die Anlage "
                "genehmigungspflichtig."
            )
        elif building == "mehrfamilienhaus":
            say(
                "In einer Eigentümergemeinschaft braucht die Anlage auf dem gemeinsamen Dach "
                "einen Beschluss der Eigentümerversammlung."
            )
        _grid(say, size)
    if listed == UNKNOWN:
        say(
            "Prüfen Sie vorher, ob Ihr Haus in der Denkmalliste steht oder im Denkmalbereich "
            "„Altstadt“ liegt – dann bräuchten Sie eine denkmalrechtliche Erlaubnis."
        )
    return advice


def _grid(say: Any, size: Any) -> None:
    say(
        "Melden Sie die Anlage vor der Installation beim Netzbetreiber an (das übernimmt meist "
        "der Installationsbetrieb) und registrieren Sie sie innerhalb eines Monats nach "
        "Inbetriebnahme im Marktstammdatenregister."
    )
    if isinstance(size, int | float) and size > 100:
        say(f"Bei {_kwp(size)} müssen Sie den Strom direkt vermarkten (Pflicht ab 100 kWp).")
    elif isinstance(size, int | float) and size > 30:
        say(
            f"Bei {_kwp(size)} prüft der Netzbetreiber den Netzanschluss genauer als bei "
            "kleinen Anlagen."
        )


def _kwp(size: float) -> str:
    return f"{size:g} kWp".replace(".", ",")


def summary(mounting: Any, building: Any, listed: Any, size: Any) -> str:
    """One line for the agent's queue: what the citizen told the advisor."""
    parts = [
        {
            "dach": "Dachanlage",
            "freistehend": "freistehende Anlage",
            "balkon": "Balkonkraftwerk",
        }.get(str(mounting), "Anlage"),
        str(building or "Gebäude unbekannt"),
        f"Denkmalschutz: {listed or 'unbekannt'}",
    ]
    if isinstance(size, int | float):
        parts.append(_kwp(size))
    return "PV-Berater: " + ", ".join(parts)


class ActionPvAdviceResult(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_pv_advice_result"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        answers = [tracker.get_slot(slot) for slot in PV_SLOTS]
        advice = advise(*answers)
        title, url = advice.link
        dispatcher.utter_message(
            json_message={
                "text": "\n\n".join(advice.paragraphs),
                "links": [{"title": title, "url": url}],
            }
        )
        english = is_english(tracker)
        if advice.offer is None:
            ask_feedback(dispatcher, english)
            return [SlotSet("offer", None)]
        question = "Möchten Sie, dass ich Sie mit der Bauberatung des Bauamts verbinde?"
        return offer_handover(
            dispatcher, tracker, question, advice.offer, "bauamt", summary(*answers)
        )
