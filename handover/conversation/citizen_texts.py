"""What the gateway itself says to citizens, in German and English.

The bot's own words live in bot/domain.yml; these are the few sentences the
gateway needs when the bot cannot speak for itself (outages, limits).
"""

from __future__ import annotations

from typing import Literal

Language = Literal["de", "en"]

_TEXTS: dict[str, dict[Language, str]] = {
    "bot_unavailable": {
        "de": "Der digitale Assistent ist gerade nicht erreichbar. "
        "Ihre Nachricht ist gespeichert. Bitte versuchen Sie es in einigen Minuten erneut "
        "oder rufen Sie die Behördennummer 115 an.",
        "en": "The digital assistant is not available right now. Your message has been saved. "
        "Please try again in a few minutes or call the public service number 115.",
    },
    "too_large": {
        "de": "Ihre Nachricht ist zu lang. Bitte kürzen Sie sie oder teilen Sie sie auf.",
        "en": "Your message is too long. Please shorten it or split it up.",
    },
    "rate_limited": {
        "de": "Sie senden gerade sehr viele Nachrichten. Bitte warten Sie einen Moment.",
        "en": "You are sending a lot of messages. Please wait a moment.",
    },
    "too_many_connections": {
        "de": "Gerade kommen sehr viele Verbindungen von Ihrem Anschluss. "
        "Bitte versuchen Sie es in einer Minute erneut.",
        "en": "There are a lot of connections from your network right now. "
        "Please try again in a minute.",
    },
    "no_agent": {
        "de": "Leider ist gerade niemand vom Bürgerservice im Chat erreichbar "
        "(Servicezeiten: {hours}). Hinterlassen Sie uns hier eine Nachricht mit Ihrer "
        "E-Mail-Adresse oder Telefonnummer – wir melden uns so bald wie möglich.",
        "en": "Unfortunately nobody from the citizen service is available in the chat right now "
        "(service hours: {hours}). Leave us a message here with your e-mail address or phone "
        "number and we will get back to you as soon as possible.",
    },
    "ticket_needs_contact": {
        "de": "Damit wir Ihnen antworten können, geben Sie bitte noch eine E-Mail-Adresse "
        "oder Telefonnummer an.",
        "en": "So that we can reply, please add an e-mail address or phone number.",
    },
    "ticket_saved": {
        "de": "Vielen Dank! Ihre Nachricht ist gespeichert (Vorgang {ticket}). "
        "Wir melden uns bei Ihnen.",
        "en": "Thank you! Your message has been saved (reference {ticket}). "
        "We will get back to you.",
    },
    "agent_lost": {
        "de": "Die Verbindung zu Ihrer Ansprechperson wurde unterbrochen. Sie sind wieder ganz "
        "vorne in der Warteschlange; gleich geht es weiter.",
        "en": "The connection to the person helping you was lost. You are back at the front of "
        "the queue; someone will be with you shortly.",
    },
    # --- messenger channels (channels/rendering.py): what the widget shows as UI ----------
    "queued": {
        "de": "Sie sind in der Warteschlange (Platz {position}, etwa {minutes} Min.). "
        "Gleich ist jemand vom Bürgerservice für Sie da.",
        "en": "You are in the queue (position {position}, about {minutes} min). "
        "Someone from the citizen service will be with you shortly.",
    },
    "with_agent": {
        "de": "{agent} vom Bürgerservice ist jetzt für Sie da.",
        "en": "{agent} from the citizen service is with you now.",
    },
    "back_to_bot": {
        "de": "Sie schreiben wieder mit dem digitalen Assistenten.",
        "en": "You are talking to the digital assistant again.",
    },
    "closed": {
        "de": "Das Gespräch ist beendet. Schreiben Sie jederzeit wieder, um ein neues zu beginnen.",
        "en": "The conversation has ended. Write again any time to start a new one.",
    },
    "csat_request": {
        "de": "Wie zufrieden waren Sie mit dem Gespräch? Antworten Sie mit einer Zahl von "
        "1 (gar nicht) bis 5 (sehr).",
        "en": "How satisfied were you with the conversation? Reply with a number from "
        "1 (not at all) to 5 (very).",
    },
    "csat_thanks": {
        "de": "Vielen Dank für Ihre Bewertung!",
        "en": "Thank you for your rating!",
    },
    "choose_by_number": {
        "de": "Antworten Sie mit der Nummer Ihrer Wahl.",
        "en": "Reply with the number of your choice.",
    },
    "unsupported_message": {
        "de": "Ich kann hier nur Textnachrichten lesen. Bitte schreiben Sie mir Ihr Anliegen "
        "in ein paar Worten.",
        "en": "I can only read text messages here. Please write your request in a few words.",
    },
    "conversation_closed": {
        "de": "Dieses Gespräch ist beendet. Laden Sie die Seite neu, um ein neues zu beginnen.",
        "en": "This conversation has ended. Reload the page to start a new one.",
    },
}


def citizen_text(key: str, language: str, **values: str) -> str:
    texts = _TEXTS[key]
    text = texts["en"] if language == "en" else texts["de"]
    return text.format(**values) if values else text


def language_of(value: str | None) -> Language:
    """A supported language for a client's `lang`; German unless English is asked for."""
    return "en" if value == "en" else "de"
