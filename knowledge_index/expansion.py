"""Query expansion: English and colloquial words to the catalogue's German terms.

The catalogue is German and formal; citizens write "Perso", "Handy" or English.
A small, general glossary of administrative vocabulary (not of any question set)
adds the catalogue's words to the query for the lexical index.
"""

from __future__ import annotations

import re

from spacy.lang.de.stop_words import STOP_WORDS as GERMAN_STOP_WORDS
from spacy.lang.en.stop_words import STOP_WORDS as ENGLISH_STOP_WORDS

# Function words of one language only (spaCy's lists; "in", "was", "also" are both).
_ENGLISH_ONLY = frozenset(ENGLISH_STOP_WORDS - GERMAN_STOP_WORDS)
_GERMAN_ONLY = frozenset(GERMAN_STOP_WORDS - ENGLISH_STOP_WORDS)

# Frequent English words that are not also German words ("was", "an", "will" are both).
_EN_MARKERS = {"the", "my", "i", "is", "what", "how", "do", "does", "need", "where", "can",
               "to", "a", "of", "for", "get", "should", "which", "when", "apply", "you", "it",
               "have", "are", "and", "with"}  # fmt: skip

GLOSSARY: dict[str, str] = {
    # English → German
    "register": "anmelden Anmeldung",
    "registration": "Anmeldung",
    "deregister": "abmelden Abmeldung",
    "address": "Wohnsitz Wohnung Adresse",
    "move": "Umzug ummelden",
    "moving": "Umzug",
    "id card": "Personalausweis",
    "identity card": "Personalausweis",
    "passport": "Reisepass",
    "stolen": "gestohlen Diebstahl",
    "lost": "verloren Verlust",
    "lose": "verloren Verlust",
    "certificate of good conduct": "Führungszeugnis",
    "criminal record": "Führungszeugnis",
    "driving licence": "Führerschein",
    "driver's license": "Führerschein",
    "driving license": "Führerschein",
    "car": "Fahrzeug Kfz",
    "vehicle": "Fahrzeug",
    "licence plate": "Kennzeichen",
    "license plate": "Kennzeichen",
    "residence permit": "Aufenthaltserlaubnis Aufenthaltstitel",
    "visa": "Visum",
    "citizenship": "Staatsangehörigkeit Einbürgerung",
    "naturalisation": "Einbürgerung",
    "naturalization": "Einbürgerung",
    "marriage": "Eheschließung heiraten",
    "marry": "heiraten",
    "birth certificate": "Geburtsurkunde",
    "birth": "Geburt",
    "death": "Sterbefall",
    "business": "Gewerbe",
    "trade": "Gewerbe",
    "dog": "Hund",
    "parking": "Parken Parkausweis",
    "permit": "Erlaubnis Genehmigung",
    "fee": "Gebühr Kosten",
    "cost": "Kosten Gebühr",
    "costs": "Kosten Gebühr",
    "found": "gefunden Fundsache",
    "tax": "Steuer",
    "fishing": "Fischerei",
    "weapon": "Waffe",
    "gun": "Waffe",
    "tree": "Baum",
    "building": "Bau",
    "church": "Kirche",
    "certificate": "Bescheinigung Urkunde",
    "appointment": "Termin",
    "pension": "Rente",
    # colloquial German → catalogue German
    "perso": "Personalausweis",
    "handy": "Mobiltelefon",
    "geklaut": "gestohlen Diebstahl",
    "nummernschild": "Kennzeichen",
    "nummernschilder": "Kennzeichen",
    "auto": "Fahrzeug Kfz",
    "umziehen": "Umzug ummelden",
    "gezogen": "Umzug anmelden Zuzug",
    "ziehe": "Umzug",
    "heiraten": "Eheschließung",
    "staatsbürgerschaft": "Einbürgerung Staatsangehörigkeit",
    "anwohnerparkausweis": "Bewohnerparkausweis",
    "selbstständig": "Gewerbe",
    "ausweis": "Personalausweis",
    "verloren": "Verlust",
    "firma": "Gewerbe Betrieb",
}
_PATTERNS = sorted(GLOSSARY, key=len, reverse=True)
_WORDS = re.compile(r"[\w'-]+")


def looks_english(text: str) -> bool:
    """English by its question words ("I need a birth certificate") or by more English than
    German function words ("Who won the Bundesliga last season?")."""
    words = [w.lower() for w in _WORDS.findall(text)]
    hits = sum(w in _EN_MARKERS for w in words)
    if len(words) >= 2 and hits >= 2 and hits / len(words) >= 0.25:
        return True
    english = sum(w in _ENGLISH_ONLY for w in words)
    return english >= 2 and english > sum(w in _GERMAN_ONLY for w in words)


def expand(text: str) -> str:
    """`text` plus the catalogue terms of the glossary phrases it contains."""
    lowered = f" {text.lower()} "
    extra = [
        GLOSSARY[p] for p in _PATTERNS if re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", lowered)
    ]
    return text if not extra else f"{text} {' '.join(extra)}"
