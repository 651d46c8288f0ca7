"""No citizen's text and no contact or bank data in the Rasa server's logs.

Rasa 3.6 writes what a citizen typed into some of its warnings: a message that
starts with `/` and is not a well-formed intent is quoted in full ("Failed to
parse arguments in line '/…'"), and those warnings bypass logging (they are
Python warnings, printed to stderr). Here warnings are routed into logging, and
every log record is cleaned where it is made (a LogRecord factory, so every
handler Rasa or Sanic installs later is covered):
- Rasa's known text-quoting warnings are replaced, from the quote on, by a
  sentence without the text;
- e-mail addresses, phone numbers and IBANs are masked at every level, in
  messages and tracebacks (handover/privacy/masking.py, standard library only,
  shared with the app).
Rasa's own debug lines may still hold message text; LOG_LEVEL is info by default.
"""

from __future__ import annotations

import logging
import re

from handover.ops.log_records import install_record_cleaning
from handover.privacy.masking import mask_personal_data

# Rasa warnings that quote what a citizen sent, in several places of one sentence (the line,
# the intent or entity names found in it, its unparsed rest): rasa/shared/core/
# training_data/story_reader/yaml_story_reader.py, rasa/core/processor.py. Everything from
# the quote on is replaced by what an operator needs to know.
_QUOTING_WARNINGS = (
    (
        re.compile(r"Failed to parse arguments in line '.*", re.DOTALL),
        "Failed to parse a message that starts with '/' as an intent with entities "
        "(message text withheld); Rasa handles it as text or without those entities.",
    ),
    (
        re.compile(r"Invalid entity specification: .*", re.DOTALL),
        "Invalid entity specification (withheld). Assuming no entities.",
    ),
)


def clean_rasa_log_text(text: str) -> str:
    """`text` without quoted message text and with personal data masked."""
    for pattern, replacement in _QUOTING_WARNINGS:
        text = pattern.sub(replacement, text)
    return mask_personal_data(text)


def install() -> None:
    """Route warnings into logging and clean every log record of this process."""
    logging.captureWarnings(True)
    install_record_cleaning(clean_rasa_log_text)
