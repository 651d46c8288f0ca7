"""Every log line of the app's processes is cleaned (handover/ops/log_config.py)."""

from __future__ import annotations

import logging

import pytest

from handover.ops.log_config import clean_event, install_log_cleaning, redact_query_strings


def test_query_strings_are_cut_from_paths_and_urls() -> None:
    line = '127.0.0.1:5 - "WebSocket /ws/chat?token=abc.def&after=3" [accepted]'
    assert redact_query_strings(line) == '127.0.0.1:5 - "WebSocket /ws/chat?[redacted]" [accepted]'
    assert (
        redact_query_strings("GET http://h:8000/a/b?x=1 200")
        == "GET http://h:8000/a/b?[redacted] 200"
    )
    assert redact_query_strings("Was kostet das?") == "Was kostet das?"


def test_every_standard_library_record_is_cleaned(caplog: pytest.LogCaptureFixture) -> None:
    install_log_cleaning()
    install_log_cleaning()  # idempotent
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("uvicorn.error").info(
            '%s - "WebSocket %s"', "ip", "/ws/agent?token=s3cr3t"
        )
        logging.getLogger("any").debug("Mail an %s", "lena@example.org")
    assert "s3cr3t" not in caplog.text and "lena@example.org" not in caplog.text
    assert "/ws/agent?[redacted]" in caplog.text and "[email]" in caplog.text


def test_structlog_events_are_cleaned() -> None:
    event = clean_event(None, "info", {"event": "x", "url": "/ws/chat?token=t", "to": ["a@b.de"]})
    assert event == {"event": "x", "url": "/ws/chat?[redacted]", "to": ["[email]"]}


def test_tracebacks_are_cleaned_too(caplog: pytest.LogCaptureFixture) -> None:
    install_log_cleaning()
    try:
        raise ValueError('body=\'{"text": "lena@example.org"}\' from /api/x?token=s3cr3t')
    except ValueError:
        logging.getLogger("any").exception("failed")
    assert "lena@example.org" not in caplog.text and "s3cr3t" not in caplog.text
    assert "ValueError" in caplog.text
