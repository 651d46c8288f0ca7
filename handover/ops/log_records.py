"""Clean every standard-library log record of a process where it is made.

Standard library only: the Rasa environment (bot/private_logs.py) installs it
too, with its own cleaning. A LogRecord factory rather than a handler filter:
it covers every handler, including those a library (uvicorn's or Rasa's
dictConfig) installs afterwards.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any


def install_record_cleaning(clean: Callable[[str], str]) -> None:
    """Pass every record's message and traceback through `clean` (idempotent)."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "cleans_log_text", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if record.exc_info and record.exc_info[0] is not None:
            # Formatters reuse exc_text: the traceback (exception messages, chained
            # response bodies) is cleaned once, here.
            formatted = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = clean(formatted)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the caller's bug; log it as it is
            return record
        cleaned = clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return record

    factory.cleans_log_text = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
