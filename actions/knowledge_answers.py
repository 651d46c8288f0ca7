"""What the bot says about a service: the overview, a facet, the offices, the choices.

Pure composition from the catalogue's records (no tracker, no dispatcher), so every
answer's wording is testable on its own. Every answer about a service carries the
service's link; a facet the source does not state is said to be missing, never guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from knowledge_index.documents import Document, SectionKind
from knowledge_index.facets import Facet, FacetPassage, sentences_saying

MAX_ANSWER_CHARS = 420
# A passage that introduces a list may run this long to keep the list whole.
LIST_ANSWER_CHARS = 2 * MAX_ANSWER_CHARS
OVERVIEW_CHARS = 320
# One service's part of a facet answered for each service offered.
ACROSS_CHARS = 280
# A summary of fewer words is a lead-in ("Antrag", "Neuantrag"), not what a service is.
GIST_MIN_WORDS = 4
SENTENCE_ENDS = (".", "!", "?", "…", ":", ")")

# The quick replies of an overview, in this order, and their titles (German, English).
FACET_BUTTONS: tuple[tuple[Facet, str, str], ...] = (
    (Facet.COST, "Kosten", "Cost"),
    (Facet.DOCUMENTS, "Unterlagen", "Documents"),
    (Facet.PLACE, "Wo / Termin", "Where / appointment"),
    (Facet.ONLINE, "Online erledigen?", "Online?"),
)
_FACET_HEADINGS: dict[Facet, tuple[str, str]] = {
    Facet.COST: ("Kosten", "Fees"),
    Facet.DOCUMENTS: ("Unterlagen", "Documents"),
    Facet.PLACE: ("Wo Sie das erledigen", "Where to go"),
    Facet.ONLINE: ("Online", "Online"),
    Facet.APPOINTMENT: ("Termin", "Appointment"),
    Facet.DURATION: ("Dauer", "Duration"),
    Facet.REQUIREMENTS: ("Voraussetzungen", "Requirements"),
}
_MISSING: dict[Facet, str] = {
    Facet.COST: "Eine Gebühr ist in den Informationen zu „{title}“ nicht angegeben.",
    Facet.DOCUMENTS: "Welche Unterlagen Sie für „{title}“ brauchen, steht in den Informationen "
    "nicht im Einzelnen.",
    Facet.PLACE: "Eine zuständige Stelle ist in den Informationen zu „{title}“ nicht genannt.",
    Facet.ONLINE: "Ein Online-Verfahren ist in den Informationen zu „{title}“ nicht beschrieben.",
    Facet.APPOINTMENT: "Ob Sie für „{title}“ einen Termin brauchen, steht in den Informationen "
    "nicht.",
    Facet.DURATION: "Wie lange „{title}“ dauert, steht in den Informationen nicht.",
    Facet.REQUIREMENTS: "Besondere Voraussetzungen für „{title}“ sind in den Informationen nicht "
    "genannt.",
}
_MISSING_EN = "The city's information on “{title}” does not say this."
_SEE_LINK = " Alle Einzelheiten finden Sie auf der Seite der Dienstleistung."


@dataclass
class Reply:
    """One bot message: text, optional links and quick replies."""

    text: str
    links: list[dict[str, str]] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)
    # Quick replies beside links travel as a message of their own, under this prompt.
    prompt: str = ""

    def messages(self) -> list[dict[str, Any]]:
        """The reply as `utter_message` arguments: the text with its links, then the buttons."""
        if not self.links:
            return [{"text": self.text, "buttons": self.buttons}]
        said: list[dict[str, Any]] = [{"json_message": {"text": self.text, "links": self.links}}]
        if self.buttons:
            said.append({"text": self.prompt, "buttons": self.buttons})
        return said


def doc_payload(doc_id: str, facet: Facet | None = None) -> str:
    """The button payload that asks about `doc_id` (and one of its facets) directly."""
    entities = {"knowledge_doc": doc_id}
    if facet is not None:
        entities["knowledge_facet"] = facet.value
    return "/ask_question" + json.dumps(entities)


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


def link_to(title: str, url: str) -> list[dict[str, str]]:
    """The links of an answer about one service: its page, when it has one."""
    return [{"title": title, "url": url}] if url else []


def service_link(document: Document) -> list[dict[str, str]]:
    return link_to(document.title, document.url)


def titled(title: str, text: str) -> str:
    """A passage under its service's title, unless it already starts with it."""
    return text if text.startswith(title) else f"{title}: {text}"


def passage_reply(title: str, url: str, passage: str) -> Reply:
    """A passage of a service, under its title and with its link."""
    return Reply(text=titled(title, shorten(passage)), links=link_to(title, url))


def _english_intro(title: str) -> str:
    return (
        f"The city's information on this is only available in German. The most relevant "
        f"service is “{title}”:\n\n"
    )


def overview(document: Document, facets: list[Facet], english: bool = False) -> Reply:
    """The first answer about a service: what it is, the facets to ask next, the link."""
    gist = shorten(_gist(document), OVERVIEW_CHARS)
    if english:
        text = _english_intro(document.title) + gist
    else:
        text = titled(document.title, gist)
    buttons = [
        {"title": en if english else de, "payload": doc_payload(document.id, facet)}
        for facet, de, en in FACET_BUTTONS
        if facet in facets
    ]
    prompt = "What else would you like to know?" if english else "Was möchten Sie dazu wissen?"
    return Reply(text=text, links=service_link(document), buttons=buttons, prompt=prompt)


def _words(line: str) -> int:
    return len(line.strip().lstrip("-–• ").split())


def _gist(document: Document) -> str:
    """What the service is in the catalogue's words: its summary, unless that is a lead-in.

    DLDB descriptions often open with a bold "Antrag" or "Visumverfahren:", which the
    summary then is ("Jagdschein beantragen: Antrag"); the description's first line of
    GIST_MIN_WORDS words or more says it. Without one, the summary as it is (a service
    with no description shows its fee).
    """
    if _words(document.summary) >= GIST_MIN_WORDS:
        return document.summary
    for section in document.sections:
        if section.kind in (SectionKind.TEXT, SectionKind.PROCEDURE, SectionKind.REQUIREMENTS):
            line = next((li for li in section.text.split("\n") if _words(li) >= GIST_MIN_WORDS), "")
            if line:
                return line.strip()
    return document.summary or _first_body_text(document)


def _first_body_text(document: Document) -> str:
    body = [s for s in document.sections if s.kind is not SectionKind.OVERVIEW and s.text]
    return body[0].text if body else document.title


def facet_reply(
    document: Document,
    facet: Facet,
    passage: FacetPassage | None,
    english: bool = False,
    offices: str = "",
) -> Reply:
    """The answer to one facet of a service, from its own section, its fields or its text.

    `offices` lists the offices that offer the service (one "- Name, Adresse" line each);
    a place question is answered with them when the catalogue has them.
    """
    heading = _FACET_HEADINGS[facet][english]
    parts: list[str] = []
    if facet is Facet.PLACE and offices:
        parts.append(offices)
    elif passage is not None:
        text = (
            passage.chunk.text
            if passage.from_section
            else sentences_saying(passage.chunk.text, facet)
        )
        parts.append(shorten(text, LIST_ANSWER_CHARS if passage.from_section else MAX_ANSWER_CHARS))
    if facet in (Facet.APPOINTMENT, Facet.PLACE) and document.appointment_url:
        parts.append(
            "You can book an appointment online (link below)."
            if english
            else "Einen Termin buchen Sie online über den Link unten."
        )
    if facet in (Facet.DURATION, Facet.APPOINTMENT) and document.duration_min:
        parts.append(
            f"Plan about {document.duration_min} minutes for the appointment."
            if english
            else f"Für den Termin sollten Sie etwa {document.duration_min} Minuten einplanen."
        )
    if not parts:
        missing = _MISSING_EN if english else _MISSING[facet] + _SEE_LINK
        return Reply(text=missing.format(title=document.title), links=service_link(document))
    body = "\n".join(parts)
    if english:
        text = f"{heading} – “{document.title}” (in German):\n{body}"
    else:
        text = f"{heading} – {document.title}:\n{body}"
    links = service_link(document)
    if facet in (Facet.APPOINTMENT, Facet.PLACE) and document.appointment_url:
        if document.appointment_url != document.url:
            title = "Book an appointment" if english else "Termin buchen"
            links.append({"title": title, "url": document.appointment_url})
    return Reply(text=text, links=links)


def choices(
    titles_and_ids: list[tuple[str, str]],
    english: bool,
    facet: Facet | None,
    instead: bool = False,
) -> Reply:
    """ "Meinen Sie …?" with the candidates as buttons (the facet asked travels along).

    `instead`: offered beside an answer about the topic, as what the question may mean.
    """
    if instead:
        prompt = (
            "Or is your question about one of these?"
            if english
            else "Oder ist Ihre Frage zu einer dieser Dienstleistungen?"
        )
    elif facet is None:
        prompt = "Did you mean one of these?" if english else "Meinen Sie …?"
    else:
        prompt = (
            "Which of these services is your question about?"
            if english
            else "Zu welcher dieser Dienstleistungen ist Ihre Frage?"
        )
    buttons = [
        {"title": title, "payload": doc_payload(doc_id, facet)} for title, doc_id in titles_and_ids
    ]
    return Reply(text=prompt, buttons=buttons)


def _clip(text: str, limit: int) -> str:
    """`text` cut at a line or sentence end before `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind("\n"), cut.rfind(". "))
    return (cut[: end + 1] if end > limit // 3 else cut.rsplit(" ", 1)[0]).rstrip() + " …"


def facet_across(
    answers: list[tuple[Document, Reply]], facet: Facet, english: bool = False
) -> Reply:
    """One facet of each service offered with "Meinen Sie …?", side by side.

    "Was kostet das?" after the choices asks about one of them without saying which; a
    clerk answers "that depends: for A …, for B …" rather than asking again. Each service
    keeps its link, and its button gives that service's whole answer and makes it the topic.
    """
    intro = (
        "That depends on which of these services you mean:"
        if english
        else "Das hängt davon ab, welche dieser Dienstleistungen Sie meinen:"
    )
    parts = [intro]
    links: list[dict[str, str]] = []
    for document, reply in answers:
        parts.append(_clip(reply.text.removesuffix(_SEE_LINK), ACROSS_CHARS))
        links += service_link(document)
    buttons = [
        {"title": document.title, "payload": doc_payload(document.id, facet)}
        for document, _ in answers
    ]
    prompt = "Which one is yours?" if english else "Welche davon meinen Sie?"
    return Reply(text="\n\n".join(parts), links=links, buttons=buttons, prompt=prompt)


def which_service(english: bool) -> Reply:
    """A follow-up before any topic: ask back instead of guessing."""
    return Reply(
        text="Which service is your question about? Please name it, for example "
        "“ID card” or “registering an address”."
        if english
        else "Zu welcher Dienstleistung ist Ihre Frage? Nennen Sie sie mir bitte, zum Beispiel "
        "„Personalausweis“ oder „Wohnsitz anmelden“."
    )


def facets_of(document: Document, has_offices: bool) -> list[Facet]:
    """The facets this service has something to say about (its overview's quick replies)."""
    kinds = {s.kind for s in document.sections}
    text = " ".join(s.text for s in document.sections).lower()
    available: list[Facet] = []
    if SectionKind.FEES in kinds:
        available.append(Facet.COST)
    if SectionKind.DOCUMENTS in kinds or re.search(r"unterlagen|mitbringen|nachweis", text):
        available.append(Facet.DOCUMENTS)
    if has_offices or SectionKind.OFFICE in kinds or document.appointment_url:
        available.append(Facet.PLACE)
    if SectionKind.ONLINE in kinds or re.search(r"\bonline|internet", text):
        available.append(Facet.ONLINE)
    return available
