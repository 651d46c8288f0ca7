"""`action_answer_from_knowledge`: answer a citizen's concern from the city's catalogue.

Every turn is read against the conversation's topic (actions/topic.py): a follow-up is
answered from the topic's facet, a new concern gets the service's overview (or the facet
it asked for) and becomes the topic, a doubtful one gets choices, and nothing fitting
gets an honest answer. Offices are answered from their own records. A missing or broken
index is logged by actions/catalogue.py and every question then gets the honest answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import catalogue
from actions.conversation import ask_feedback, citizen_texts, is_english, last_citizen_text
from actions.handover import offer_handover, queue_for_article
from actions.knowledge_answers import (
    Reply,
    choices,
    facet_across,
    facet_reply,
    facets_of,
    overview,
    passage_reply,
    which_service,
)
from actions.pv_advice import PV_SLOTS
from actions.topic import (
    CANDIDATES_SLOT,
    FACET_SLOT,
    OFFICE_SLOT,
    TOPIC_SLOT,
    TOPIC_TITLE_SLOT,
    Move,
    Reading,
    read_turn,
    turns_away,
)
from handover.agents.service_hours import BERLIN, ServiceHours
from handover.settings import get_settings
from knowledge_index.documents import Document
from knowledge_index.facets import Facet, concern_of, facet_of, is_elliptical, refers_back
from knowledge_index.office_answers import describe, describe_list
from knowledge_index.offices import Office
from knowledge_index.search import Band, SearchResult

logger = logging.getLogger(__name__)

OUT_OF_SCOPE_EN = (
    "I'm sorry, I can't help with that. I answer questions about the services of the city, "
    "for example about ID cards, registering an address or bulky waste."
)

# The advisor "Photovoltaik – brauche ich eine Genehmigung?" starts from these articles
# of the city's own knowledge base (when another catalogue is configured it searches).
PV_ARTICLE = "photovoltaikanlage-genehmigung"
BALCONY_ARTICLE = "balkonkraftwerk-anmelden"
BALCONY_WORDS = ("balkon", "stecker", "mini-pv", "mini pv")
# Offices whose match is this close to the best one are all named ("das Bürgerbüro").
OFFICE_TIE = 0.05
# "Ist es jetzt offen?" refers to the office talked about; a longer question names its own.
OFFICE_FOLLOW_UP_WORDS = 6
# A first message this long is a story; its answer is the overview, whatever it mentions.
FACET_FIRST_WORDS = 12
# The classifier's "out of scope" below this confidence, against a catalogue more likely
# right than not about its first service, gets the catalogue's choices, not a refusal; at
# or above it, a catalogue sure of a service gets no further than choices either.
# Chosen by `python -m benchmarks.out_of_scope_doubt` on the Munich example questions the
# classifier takes for out of scope (92 of 2,870) and its own out-of-scope examples
# classified out of fold: 26 of the 92 get their service among the choices, 2.4 % of the
# out-of-scope verdicts get choices (cross-validated: 24.5 % and 3.2 %).
OUT_OF_SCOPE_UNSURE = 0.7
OUT_OF_SCOPE_OFFER = 0.55


def no_answer_text(english: bool) -> str:
    """The honest "no answer", with the city's contact from the configuration."""
    contact = get_settings().city_contact
    if english:
        return (
            "I'm sorry, I could not find an answer to that in the city's information. Please "
            "try rephrasing your question, for example with the name of the service. In "
            "person, the citizen service helps you via the public service number 115."
        )
    return (
        "Dazu habe ich in den Informationen der Stadtverwaltung leider keine passende Antwort "
        "gefunden. Können Sie Ihre Frage bitte anders formulieren, zum Beispiel mit dem Namen "
        f"der Dienstleistung? Persönlich hilft Ihnen der Bürgerservice über {contact}."
    )


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


def _facet(value: object) -> Facet | None:
    """A facet from a button's entity or a slot; anything else (forged, stale) is none."""
    try:
        return Facet(str(value)) if value else None
    except ValueError:
        return None


def service_hours_open(now: datetime | None = None) -> bool:
    """Whether the citizen service takes chats now (a handover then reaches a person)."""
    return ServiceHours(get_settings().service_hours).open_at(now or datetime.now(BERLIN))


def _say(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    for message in reply.messages():
        dispatcher.utter_message(**message)


def _service_offices(doc_id: str, query: str) -> list[Office]:
    """The offices that offer a service, those the question names ("Ich wohne in Pasing") first."""
    offices = getattr(catalogue.INDEX, "offices", None)
    if offices is None:
        return []
    score = {office.id: value for office, value in offices.find(query)} if query else {}
    return sorted(offices.offices_for(doc_id), key=lambda office: -score.get(office.id, 0.0))


def _documents(ids: Iterable[str]) -> list[Document]:
    """The documents of `ids` the index holds, in order (slots may name stale ids)."""
    index = catalogue.INDEX
    assert index is not None
    return [document for doc_id in ids if (document := index.document(doc_id)) is not None]


def _named_offices(found: list[tuple[Office, float]]) -> list[Office]:
    """The offices a question names: the best match and those about as good (six Bürgerbüros)."""
    if not found:
        return []
    best = found[0][1]
    return [office for office, value in found if value >= best - OFFICE_TIE]


# Intents by which the classifier says a message asks about a service, or is unsure.
SERVICE_INTENTS = frozenset({"ask_question", "nlu_fallback"})


class CatalogueTurn:
    """One turn answered from the catalogue; the events it returns update the topic."""

    def __init__(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, text: str | None = None
    ) -> None:
        self.dispatcher = dispatcher
        self.tracker = tracker
        self.text = text if text is not None else str(tracker.latest_message.get("text") or "")
        intent = tracker.latest_message.get("intent") or {}
        self.intent = intent.get("name")
        self.intent_confidence = float(intent.get("confidence") or 0.0)
        self.english = is_english(tracker)
        self.topic: str | None = tracker.get_slot(TOPIC_SLOT)
        # The services the last answer offered ("Meinen Sie …?"), until one is answered.
        self.candidates = [str(c) for c in tracker.get_slot(CANDIDATES_SLOT) or []]

    def run(self) -> list[dict[str, Any]]:
        index = catalogue.INDEX
        events: list[dict[str, Any]] = [SlotSet("offer", None)]
        if index is None:
            if self.intent == "out_of_scope":
                return [*events, *self.out_of_scope()]
            return events + self.no_answer()
        if self.intent == "pv_advice":
            return events + self.advisor_intro()
        chosen = next(self.tracker.get_latest_entity_values("knowledge_doc"), None)
        if chosen is not None and index.document(str(chosen)) is not None:
            reading = Reading(
                Move.NEW_TOPIC,
                str(chosen),
                _facet(next(self.tracker.get_latest_entity_values("knowledge_facet"), None)),
            )
            return events + self.answer(reading, query=last_citizen_text(self.tracker))
        return events + self.read_and_answer()

    def read_and_answer(self) -> list[dict[str, Any]]:
        index = catalogue.INDEX
        assert index is not None
        facet = facet_of(self.text)
        office_answer = self.office_turn(facet)
        if office_answer is not None:
            return office_answer
        long_story = len(self.text.split()) > FACET_FIRST_WORDS
        if not self.topic and not self.candidates and facet is not None and long_story:
            # A citizen's story that mentions a fee or a form gets the overview first.
            facet = None
        if not self.topic and facet is not None:
            answered = self.answer_chosen(facet)
            if answered is not None:
                return answered
        reading, result, concern = self.read(facet)
        if (
            reading.move is Move.NEW_TOPIC
            and self.intent not in SERVICE_INTENTS
            and result is not None
            and (result.band_by_catalogue is not Band.ANSWER or self.surely_out_of_scope())
        ):
            # The classifier took this for something else than a service question (out of
            # scope, small talk): a new service then needs the catalogue's own text to be
            # sure, not only citizens' example phrasings ("Ja bitte", "Rezept für …"); and
            # where the classifier is sure it is none of the city's business, the catalogue's
            # certainty gets no further than choices ("Wo kann ich ein Fahrrad kaufen?").
            reading = Reading(Move.CHOICES, facet=reading.facet)
        if self.intent == "out_of_scope" and not (
            reading.move in (Move.NEW_TOPIC, Move.ASK_WHICH)
            # "Und was kostet das?" follows the topic; "Was kostet ein Kasten Bier?" does not.
            or (reading.move is Move.FOLLOW_UP and facet and not self.names_other(concern, result))
            or (reading.move is Move.CHOICES and self.maybe_the_citys(result))
        ):
            # The classifier took this for no matter of the city's, and the catalogue agrees.
            return self.out_of_scope()
        if reading.move in (Move.FOLLOW_UP, Move.NEW_TOPIC):
            return self.answer(reading, query=self.text)
        if reading.move is Move.ASK_WHICH:
            # After "Meinen Sie …?", "Was kostet das?" asks about one of those: the facet of
            # each, side by side; before any choices, which service she means.
            offered = _documents(self.candidates)
            if offered and facet is not None:
                answers = [
                    (d, self.facet_answer(d, facet, self.text, _service_offices(d.id, self.text)))
                    for d in offered
                ]
                reply = facet_across(answers, facet, self.english)
            else:
                reply = which_service(self.english)
            _say(self.dispatcher, reply)
            return [SlotSet("knowledge_miss", False)]
        if reading.move is Move.CHOICES and result is not None:
            shown = [(hit.title, hit.doc_id) for hit in result.hits[:3]]
            _say(self.dispatcher, choices(shown, self.english, reading.facet))
            return [
                SlotSet("knowledge_miss", False),
                SlotSet(CANDIDATES_SLOT, [doc_id for _, doc_id in shown]),
            ]
        return self.no_answer()

    def read(self, facet: Facet | None) -> tuple[Reading, SearchResult | None, str]:
        """How the message reads against the topic; also its concern and that concern's search."""
        index = catalogue.INDEX
        assert index is not None
        concern = concern_of(self.text)
        # "Außerdem möchte ich …", "Und wie sieht es mit einem Taxi aus, was kostet …?": a
        # new matter, read as a first question; the topic stays in memory until it is answered.
        topic = None if self.topic and turns_away(self.text, concern) else self.topic
        borrowed = (
            _facet(self.tracker.get_slot(FACET_SLOT))
            if topic and is_elliptical(self.text)
            else None
        )
        # Against a topic, only the words beyond the facet can name another service.
        query = concern if facet is not None and topic else self.text
        result = index.search(query) if concern else None
        self.english = self.english or bool(result and result.english)
        reading = read_turn(
            topic,
            facet,
            bool(concern),
            result,
            borrowed,
            tuple(self.candidates),
            whole=lambda: index.search(self.text),
            points_back=refers_back(self.text),
        )
        return reading, result, concern

    def surely_out_of_scope(self) -> bool:
        return self.intent == "out_of_scope" and self.intent_confidence >= OUT_OF_SCOPE_UNSURE

    def maybe_the_citys(self, result: SearchResult | None) -> bool:
        """Whether a message the classifier took for out of scope may be the city's after all.

        The catalogue's own text is sure of a service, or the classifier is unsure and the
        catalogue more likely right than not: "Urlaub in Thailand, mein Pass läuft bald ab"
        gets the passport among choices; "Erzähl mir einen Witz über Beamte" is declined.
        """
        if result is None:
            return False
        if result.band_by_catalogue is Band.ANSWER:
            return True
        return not self.surely_out_of_scope() and result.confidence >= OUT_OF_SCOPE_OFFER

    def names_other(self, concern: str, result: SearchResult | None) -> bool:
        """Whether a facet question names something the catalogue knows nothing of.

        Words beyond the facet are left that the catalogue's own text does not know, and the
        message does not point back at the topic: "Was kostet ein Kasten Bier?", not "Wie
        teuer ist der für ein Jahr?".
        """
        unknown_rest = bool(concern) and (result is None or result.band_by_catalogue is Band.NONE)
        return unknown_rest and not refers_back(self.text)

    def facet_question(self) -> list[dict[str, Any]] | None:
        """Answer a facet of the topic, or of a service just offered, if the message asks one.

        For a message the classifier took for a complaint: "Was zahlt man da, er ist ja noch
        minderjährig?" asks the fee as much as it sighs. Only a question counts ("Das dauert
        ewig" is none), only about what the conversation is on, and no feedback question
        follows (the caller offers a person). None when the message is no such question.
        """
        facet = facet_of(self.text)
        if catalogue.INDEX is None or facet is None or "?" not in self.text:
            return None
        if not self.topic:
            return self.answer_chosen(facet, close=False)
        reading, result, concern = self.read(facet)
        if (
            reading.move is not Move.FOLLOW_UP
            or reading.doc_id != self.topic
            # "Was kostet ein Kasten Bier, ich bin ja noch Student?" is not about the topic.
            or self.names_other(concern, result)
        ):
            return None
        return self.answer(reading, self.text, close=False)

    def answer_chosen(self, facet: Facet, close: bool = True) -> list[dict[str, Any]] | None:
        """After "Meinen Sie …?", answer `facet` of the service offered it is about, if clear.

        The concern and the follow-up together say more than either alone: the service the
        catalogue is confident of for both, when it is one of those offered.
        """
        index = catalogue.INDEX
        if index is None or not self.candidates:
            return None
        context = " ".join([*citizen_texts(self.tracker)[-2:-1], self.text])
        result = index.search(context)
        if result.band is not Band.ANSWER or not result.hits:
            return None
        chosen = str(result.hits[0].doc_id)
        if chosen not in self.candidates:
            return None
        return self.answer(Reading(Move.NEW_TOPIC, chosen, facet), self.text, close)

    def office_turn(self, facet: Facet | None) -> list[dict[str, Any]] | None:
        """Answer a question about an office ("Hat das Bürgerbüro am Samstag offen?"), if it is one.

        With a topic, "Wo …?" asks where to do the topic's service: that is its place facet,
        answered with the offices that offer it, not an office question.
        """
        offices = getattr(catalogue.INDEX, "offices", None)
        if offices is None or not len(offices):
            return None
        now = datetime.now(BERLIN)
        ask = offices.office_question(self.text, now)
        if ask is None or (facet is not None and (facet is not Facet.PLACE or self.topic)):
            return None
        named = _named_offices(offices.find(self.text))
        if not named and len(self.text.split()) <= OFFICE_FOLLOW_UP_WORDS:
            # "Ist es jetzt offen?": the office talked about, else the topic's first office.
            last = offices.get(str(self.tracker.get_slot(OFFICE_SLOT) or ""))
            topic_offices = offices.offices_for(self.topic) if self.topic else []
            named = [last] if last is not None else topic_offices[:1]
        if not named:
            return None
        result = catalogue.INDEX.search(self.text)
        top = result.hits[0] if result.band is Band.ANSWER and result.hits else None
        offered = top is not None and any(top.doc_id in office.services for office in named)
        if top is not None and not offered and len(self.text.split()) > FACET_FIRST_WORDS:
            # "Ich hab mich schon im Bürgerbüro umgemeldet. Muss im Fahrzeugschein auch die
            # neue Adresse stehen?": a story that passes an office asks about a service the
            # office does not offer.
            return None
        english = self.english or ask.english
        if len(named) > 3:
            heading = "These offices match:" if english else "Diese Stellen kommen infrage:"
            text = heading + "\n" + describe_list(named, english=english)
        else:
            text = "\n\n".join(describe(office, ask, now, english=english) for office in named)
        links = [{"title": o.display_name, "url": o.url} for o in named[:3] if o.url]
        events: list[dict[str, Any]] = [
            SlotSet("knowledge_miss", False),
            SlotSet(OFFICE_SLOT, named[0].id),
        ]
        if top is not None and offered:
            # "Ich habe meinen Schlüssel verloren. Wo ist das Fundbüro?": the service too.
            if top.url:
                links.insert(0, {"title": top.title, "url": top.url})
            events += [SlotSet(TOPIC_SLOT, top.doc_id), SlotSet(TOPIC_TITLE_SLOT, top.title)]
        _say(self.dispatcher, Reply(text=text, links=links))
        return events

    def answer(self, reading: Reading, query: str, close: bool = True) -> list[dict[str, Any]]:
        """Answer `reading.doc_id`: its facet, the passage for a topic question, or overview.

        A facet's answer closes with the feedback question, or the services the message may
        mean instead; not when `close` is false (the caller has its own question).
        """
        index = catalogue.INDEX
        assert index is not None and reading.doc_id is not None
        document = index.document(reading.doc_id)
        assert document is not None
        offices = _service_offices(document.id, query)
        facet = reading.facet
        if facet is not None:
            _say(self.dispatcher, self.facet_answer(document, facet, query, offices))
            others = [(d.title, d.id) for d in _documents(reading.others)] if close else []
            if others:
                _say(self.dispatcher, choices(others, self.english, facet, instead=True))
            elif close:
                ask_feedback(self.dispatcher, self.english)
        elif reading.move is Move.FOLLOW_UP:
            hit = index.hit_for(document.id, query)
            assert hit is not None  # the index holds `document`
            _say(self.dispatcher, passage_reply(document.title, document.url, hit.passage.text))
            ask_feedback(self.dispatcher, self.english)
        else:
            _say(
                self.dispatcher,
                overview(document, facets_of(document, bool(offices)), self.english),
            )
        return [
            SlotSet("knowledge_miss", False),
            SlotSet(OFFICE_SLOT, offices[0].id if offices else None),
            SlotSet(TOPIC_SLOT, document.id),
            SlotSet(TOPIC_TITLE_SLOT, document.title),
            SlotSet(FACET_SLOT, facet.value if facet is not None else None),
            SlotSet(CANDIDATES_SLOT, None),
        ]

    def facet_answer(
        self, document: Document, facet: Facet, query: str, offices: list[Office]
    ) -> Reply:
        """One facet of `document`; `offices` (those offering it) answer where to go."""
        index = catalogue.INDEX
        assert index is not None
        passage = index.facet_passage(document.id, facet, query)
        listed = describe_list(offices, english=self.english) if offices else ""
        return facet_reply(document, facet, passage, self.english, listed)

    def out_of_scope(self) -> list[dict[str, Any]]:
        """Not a miss: the bot understood the request, the city just does not do it."""
        if self.english:
            self.dispatcher.utter_message(text=OUT_OF_SCOPE_EN)
        else:
            self.dispatcher.utter_message(
                response="utter_out_of_scope", city=catalogue.city_phrase()
            )
        return [SlotSet("knowledge_miss", False)]

    def no_answer(self) -> list[dict[str, Any]]:
        """Ask to rephrase; the second miss in a row offers a person, if one is at work."""
        if previous_turn_missed(self.tracker) and service_hours_open():
            text = (
                "I could not answer your question twice in a row. Would you like me to connect "
                "you with a member of staff?"
                if self.english
                else "Ich konnte Ihre Frage leider zweimal nicht beantworten. Möchten Sie, dass "
                "ich Sie mit einer Mitarbeiterin oder einem Mitarbeiter verbinde?"
            )
            return [
                SlotSet("knowledge_miss", False),
                *offer_handover(
                    self.dispatcher,
                    self.tracker,
                    text,
                    "not_understood",
                    queue_for_article(self.topic),
                ),
            ]
        self.dispatcher.utter_message(text=no_answer_text(self.english))
        return [SlotSet("knowledge_miss", True)]

    def advisor_intro(self) -> list[dict[str, Any]]:
        """The general answer first; the advisor form then asks about the citizen's project."""
        index = catalogue.INDEX
        assert index is not None
        lowered = self.text.lower()
        doc_id = BALCONY_ARTICLE if any(w in lowered for w in BALCONY_WORDS) else PV_ARTICLE
        hit = index.hit_for(doc_id, self.text)
        if hit is None:
            result = index.search(self.text)
            hit = result.hits[0] if result.band.value == "answer" and result.hits else None
        # A new advice starts from scratch: the form reads this question, then asks.
        events: list[dict[str, Any]] = [SlotSet("knowledge_miss", False)]
        events += [SlotSet(slot, None) for slot in PV_SLOTS]
        if hit is not None:
            _say(self.dispatcher, passage_reply(hit.title, hit.url, hit.passage.text))
            events += [SlotSet(TOPIC_SLOT, hit.doc_id), SlotSet(TOPIC_TITLE_SLOT, hit.title)]
        self.dispatcher.utter_message(
            text="I can check this for your project in particular: a few short questions."
            if self.english
            else "Ob Sie eine Genehmigung brauchen, kann ich für Ihr Vorhaben genauer prüfen. "
            "Dazu ein paar kurze Fragen."
        )
        return events


class ActionAnswerFromKnowledge(Action):  # type: ignore[misc]
    """Answer, offer close candidates, or admit there is no answer.

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
        return CatalogueTurn(dispatcher, tracker).run()


__all__ = [
    "ActionAnswerFromKnowledge",
    "CatalogueTurn",
    "no_answer_text",
    "previous_turn_missed",
    "service_hours_open",
]
