"""Structured logging for every process of the app environment.

Citizens' message text is personal data: no log call at info level or above
may carry it. Log ids, sequence numbers, intents and timings instead.

Two safety nets catch what a call site or a library gets wrong, in every line
at every level, whether it comes through the standard library (uvicorn, Sanic,
rasa_sdk) or structlog:
- query strings are cut from URLs and paths: uvicorn's websocket handshake
  line carries the request target (`/ws/chat?token=…`), and `access_log=False`
  does not cover it;
- e-mail addresses, phone numbers and IBANs are masked (handover.privacy.masking).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from handover.ops.log_records import install_record_cleaning
from handover.privacy.masking import mask_personal_data

QUERY_MASK = "?[redacted]"
# A path (alone or in a URL) followed by its query string, up to whitespace, a quote or a
# fragment: `/ws/chat?token=…`, `http://host/a?b=c`. A question mark not after a path
# (a citizen's question) stays.
_QUERY_STRING = re.compile(r"(/[^\s?#\"'<>]*)\?[^\s#\"'<>]+")


def redact_query_strings(text: str) -> str:
    """`text` with the query string of every URL or request path replaced by a marker."""
    return _QUERY_STRING.sub(lambda match: match.group(1) + QUERY_MASK, text)


def clean_log_text(text: str) -> str:
    """What may be written to a log of `text`: no query strings, no contact or bank data."""
    return mask_personal_data(redact_query_strings(text))


def install_log_cleaning() -> None:
    """Clean every standard-library log record of this process (idempotent)."""
    install_record_cleaning(clean_log_text)


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return clean_log_text(value)
    if isinstance(value, list | tuple):
        return type(value)(_clean_value(item) for item in value)
    if isinstance(value, dict):
        return {key: _clean_value(item) for key, item in value.items()}
    return value


def clean_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every string in the event, cleaned as `clean_log_text` does."""
    return {key: _clean_value(value) for key, value in event_dict.items()}


def configure_logging(level: str = "info", json_lines: bool = False) -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            clean_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    install_log_cleaning()
    logging.basicConfig(
        level=numeric, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
