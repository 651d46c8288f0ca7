"""Facets: which aspect of a service a question asks about, and where a source says it.

A facet question ("Was kostet das?", "Brauche ich einen Termin?", "How long does it
take?") is answered from the part of the service that holds that aspect: a typed
section (Kosten, Unterlagen, Zuständige Stelle …), a structured catalogue field
(DLDB appointment link, appointment duration), or else the passage of the service
whose words say it. The question types are a closed set; their cue words are the
ordinary German and English ways to ask for them, kept here in one place.

`concern_of` strips the facet's cue words and conversational filler from a question, so
what remains names the concern ("Was kostet ein Personalausweis?" → "Personalausweis");
an empty remainder is a follow-up that names no service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from knowledge_index.analysis import STOP, fold
from knowledge_index.documents import Chunk, SectionKind


class Facet(StrEnum):
    COST = "cost"
    DOCUMENTS = "documents"
    PLACE = "place"
    ONLINE = "online"
    APPOINTMENT = "appointment"
    DURATION = "duration"
    REQUIREMENTS = "requirements"


# German and English forms of asking for each facet. Order matters only for ties:
# the earlier facet wins ("Wie viel kostet …" is a cost, not a duration, question).
_CUES: dict[Facet, str] = {
    # German cue words also end compounds ("Versicherungsnachweis", "Verwaltungsgebühr").
    Facet.COST: r"kost\w*|gebühr\w*|preis\w*|\bteuer\w*|bezahl\w*|\bzahl(?:t|en|e)?\b|verlang\w*|"
    r"\beuro\b|€|\bcost\w*|\bfees?\b|\bprice\w*|\bhow much\b|\bpay\b|\bpaying\b|"
    r"\bcharge\w*|\bset me back\b|\bumsonst\b|\bgratis\b|\bfor free\b|"
    r"\b(?:is|are) (?:it|this|that|they) free\b",
    Facet.DURATION: r"\bwie lange\b|dauer\b|\bdauert|\bwie schnell\b|\bwie viel zeit\b|"
    r"bearbeitungszeit|\beinplanen\b|\bin der hand\b|\bhow long\b|\bhow quickly\b|"
    r"\bhow fast\b|\bprocessing time\b|\bhow soon\b|\bfertig\b|\bready\b",
    Facet.ONLINE: r"\bonline|\binternet|\bübers netz\b|\bim netz\b|\bdigital\w*|"
    r"\bper (?:e-?mail|mail|post)\b|\belektronisch\w*|\bvon zu ?hause\b|\bbayern-?id\b|"
    r"\bbund-?id\b|\bpersönlich (?:erscheinen|vorbei\w*|kommen)|\bby (?:e-?mail|post|mail)\b|"
    r"\bin person\b|\bfrom home\b",
    Facet.APPOINTMENT: r"termin\w*|\bvereinbar\w*|\bvorbei ?kommen|\beinfach (?:so )?vorbei|"
    r"\bohne anmeldung\b|\bwartezeit\w*|\bappointment\w*|\bbook\w*|\bslot\b|\bdrop by\b|"
    r"\bwalk[- ]?in\b",
    Facet.DOCUMENTS: r"unterlagen|\bmitbring\w*|\bmitnehm\w*|nachweis\w*|dokument\w*|"
    r"\beinreich\w*|formular\w*|attest\w*|\bpapiere\b|\bwas brauch\w* ich\b|"
    r"\bbrauch\w* ich (?:dafür|da)\b|\bvorleg\w*|\bvorzeig\w*|\bdocuments?\b|\bpaperwork\b|"
    r"\bpapers\b|\bbring\b|\bwhat do i need\b",
    Facet.PLACE: r"^\s*wo\b|\bwo (?:kann|muss|ist|sitzt|genau|bekomm|krieg|gibt)|\bwohin\b|"
    r"\badresse\b|\banschrift\b|\bwelche[mnrs]? (?:amt|stelle|behörde|büro|dienststelle|"
    r"bürgerbüro)|\bzuständig\w*|\bhingeh\w*|\bhin ?kann\b|\bhin\?|\bums eck\b|"
    r"\bin der nähe\b|\bnächste[nr]? (?:stelle|amt|bürgerbüro)|\bwhere\b|\bwhich office\b|"
    r"\bthe address\b|\baddress of\b",
    Facet.REQUIREMENTS: r"voraussetzung\w*|\bbedingung\w*|\bdarf ich\b|\bdürfen wir\b|"
    r"\bberechtigt|\banspruch\b|\brequirements?\b|\beligib\w*|\bam i allowed\b",
}
_PATTERNS = {facet: re.compile(rf"(?:{cue})", re.I) for facet, cue in _CUES.items()}

# Words that carry no concern of their own in a follow-up ("Und was muss ich dafür …").
_FILLER = re.compile(
    r"\b(und|oder|aber|auch|noch|denn|eigentlich|dann|da|dafür|dazu|damit|davon|das|dies\w*|"
    r"sowas|so etwas|es|man|ich|wir|mir|mich|uns|sie|ihnen|du|dir|was|wie|wer|wann|welche\w*|"
    r"muss|müssen|kann|können|könnte|soll|sollte\w*|brauch\w*|habe|hab|hat|ist|sind|wird|werden|"
    r"gibt|gibts|bitte|ungefähr|genau|eine?[mnrs]?|der|die|den|dem|des|für|bei|mit|zu|zum|zur|"
    r"im|in|am|an|auf|von|vom|hier|jetzt|gleich|extra|so|nur|ja|nein|ok|okay|alles klar|danke|"
    r"and|or|but|also|what|how|who|when|which|is|are|do|does|did|i|we|you|it|that|this|for|"
    r"with|to|the|a|an|of|in|on|can|could|must|need|have|has|there|please|about|then|so|"
    r"does it|will|would|me|my|"
    # Doing a procedure, in general: these name no service ("den Antrag online stellen").
    r"antrag\w*|beantrag\w*|stellen|mach(?:e|en|t|st)?|erledigen|abgeben|hol(?:e|en|t|st)?|"
    r"bekomm\w*|krieg\w*|"
    r"geht|gehen|lassen|apply|application|get|do)\b",
    re.I,
)
# A word that points back at what was said before: a pronoun ("Wie teuer ist der für ein
# Jahr?", "Was kostet das?") or a demonstrative ("that card", "diese Genehmigung"). German
# der/die/das/den/dem count only without a noun after them. Not "es"/"it" ("Gibt es …?",
# "Is it safe …?") nor "so ein" ("so einen 28-Zoll-Reifen"): they need no subject.
_BACK_REFERENCE = re.compile(
    r"(?i:\b(?:dafür|dazu|damit|davon|dabei|darauf|dies\w*|that|this|these|those|them)\b)"
    r"|(?i:\b(?:der|die|das|den|dem)\b)(?!\s+[A-ZÄÖÜ0-9])"
)
# A question that only asks about "the same" with another subject: "Und für Kinder?"
_ELLIPSIS = re.compile(r"^\s*(und|and|what about|wie ist es|wie sieht es)\b", re.I)

# Words whose presence in a passage says it holds the facet.
_PASSAGE_CUES: dict[Facet, re.Pattern[str]] = {
    Facet.COST: re.compile(
        r"\d+(?:,\d\d)?\s*(?:€|euro|eur)\b|gebühr|kostenlos|kostenfrei|"
        r"gebührenfrei",
        re.I,
    ),
    Facet.DURATION: re.compile(
        r"\d+\s*(?:minuten|stunden|tage\w*|wochen|monate\w*|werktage\w*)|"
        r"dauer|sofort|bearbeitungszeit",
        re.I,
    ),
    # "Sie müssen persönlich erscheinen" answers "Geht das online?" too: no.
    Facet.ONLINE: re.compile(
        r"online|internet|digital|per e-mail|per post|elektronisch|bayernid|"
        r"bundid|portal|persönlich (?:erscheinen|vorsprechen|vorbei)|"
        r"nur persönlich",
        re.I,
    ),
    Facet.APPOINTMENT: re.compile(r"termin|vereinbar|ohne anmeldung|vorsprache|persönlich", re.I),
    Facet.DOCUMENTS: re.compile(
        r"unterlagen|mitbringen|nachweis|vorlegen|dokument|formular|"
        r"bescheinigung|ausweis|lichtbild|foto",
        re.I,
    ),
    Facet.PLACE: re.compile(r"straße|str\.|platz|\b\d{5}\b|bürgerbüro|amt\b|stelle", re.I),
    Facet.REQUIREMENTS: re.compile(r"voraussetz|müssen|nur wenn|berechtigt|anspruch", re.I),
}

# Passages that state the facet outright rank before those that merely mention it
# ("Sie können den Antrag online stellen" before "die Online-Ausweisfunktion").
_STATED: dict[Facet, re.Pattern[str]] = {
    Facet.ONLINE: re.compile(r"online[- ](?:beantrag|stell|anmeld|abmeld|erledig|meld|bestell|"
                             r"reservier|buch|antrag|dienst|verfahren|formular|service)|"
                             r"persönlich (?:erscheinen|vorsprechen)|nur persönlich", re.I),
    Facet.DURATION: re.compile(r"dauert|dauer\b|bearbeitungszeit|innerhalb von", re.I),
    Facet.APPOINTMENT: re.compile(r"termin (?:vereinbar|buch|reservier)|ohne termin|"
                                  r"terminvereinbarung", re.I),
}  # fmt: skip

# The typed section that holds a facet, where the source has one.
SECTION_OF: dict[Facet, SectionKind] = {
    Facet.COST: SectionKind.FEES,
    Facet.DOCUMENTS: SectionKind.DOCUMENTS,
    Facet.PLACE: SectionKind.OFFICE,
    Facet.ONLINE: SectionKind.ONLINE,
    Facet.REQUIREMENTS: SectionKind.REQUIREMENTS,
}


def facet_of(text: str) -> Facet | None:
    """The facet a message asks about, or None for a question about the service itself.

    Only its questions count when it has any: in "Die Familienkasse verlangt eine
    Bestätigung. Wer stellt die aus?" the story mentions a demand, the question no fee.
    """
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    questions = [s for s in sentences if s.rstrip().endswith("?")]
    return _facet_in(" ".join(questions) if questions else text)


def _facet_in(text: str) -> Facet | None:
    best: tuple[int, int] | None = None
    chosen: Facet | None = None
    for rank, (facet, pattern) in enumerate(_PATTERNS.items()):
        hits = len(pattern.findall(text))
        if hits and (best is None or hits > best[0]):
            best, chosen = (hits, -rank), facet
    return chosen


def concern_of(text: str) -> str:
    """What is left of a question once the facet's cue words and filler are gone."""
    rest = text
    for pattern in _PATTERNS.values():
        rest = pattern.sub(" ", rest)
    rest = _FILLER.sub(" ", rest)
    rest = re.sub(r"[^\w\s-]", " ", rest)
    # German function words name nothing either ("wenn", "schon", "dabei").
    return " ".join(
        w for w in rest.split() if len(w) > 1 and not w.isdigit() and fold(w) not in STOP
    )


def refers_back(text: str) -> bool:
    """Whether a question points back at the conversation's subject instead of naming one."""
    return bool(_BACK_REFERENCE.search(text))


def is_elliptical(text: str) -> bool:
    """ "Und beim Reisepass?": a short question that borrows the previous one's aspect."""
    return bool(_ELLIPSIS.match(text)) and len(text.split()) <= 6


@dataclass(frozen=True)
class FacetPassage:
    chunk: Chunk
    # True when the passage comes from the facet's own section (the source states it).
    from_section: bool


def passage_for(chunks: list[Chunk], facet: Facet, relevance: list[float]) -> FacetPassage | None:
    """The passage of one service (its `chunks`) that answers `facet`, if the source has one.

    `relevance` is each chunk's score for the question; among passages of the facet's own
    section the most relevant is taken, otherwise the most relevant passage that says it.
    """
    kind = SECTION_OF.get(facet)
    own = [i for i, c in enumerate(chunks) if kind is not None and c.kind is kind]
    if own:
        best = max(own, key=lambda i: relevance[i])
        return FacetPassage(chunks[best], True)
    cue = _PASSAGE_CUES[facet]
    # The office's contact lines say "E-Mail" and "Straße"; they answer only where to go.
    skipped = {SectionKind.OVERVIEW} | ({SectionKind.OFFICE} if facet is not Facet.PLACE else set())
    saying = [i for i, c in enumerate(chunks) if c.kind not in skipped and cue.search(c.text)]
    if not saying:
        return None
    stated = _STATED.get(facet)

    def rank(i: int) -> tuple[bool, float, int]:
        says_it = stated is not None and stated.search(chunks[i].text) is not None
        return (says_it, relevance[i], len(cue.findall(chunks[i].text)))

    best = max(saying, key=rank)
    return FacetPassage(chunks[best], False)


def sentences_saying(text: str, facet: Facet, limit: int = 3) -> str:
    """The sentences (or list items) of a passage that state the facet, in order."""
    cue = _PASSAGE_CUES[facet]
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n", text) if p.strip()]
    kept = [p for p in parts if cue.search(p)][:limit]
    return "\n".join(kept) if kept else text
