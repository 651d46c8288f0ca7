from __future__ import annotations

import pytest

from handover.conversation.protocol import (
    CsatFrame,
    EndFrame,
    MessageFrame,
    TypingFrame,
    parse_client_frame,
)
from handover.errors import BadFrame


def test_message_frame_with_text_is_parsed() -> None:
    frame = parse_client_frame('{"type":"message","client_id":"c1","text":"Hallo"}')
    assert frame == MessageFrame(type="message", client_id="c1", text="Hallo")


def test_button_payload_is_a_message() -> None:
    frame = parse_client_frame('{"type":"message","client_id":"c1","payload":"/request_human"}')
    assert isinstance(frame, MessageFrame) and frame.payload == "/request_human"


def test_unknown_fields_are_ignored() -> None:
    frame = parse_client_frame('{"type":"typing","active":true,"future":"field"}')
    assert frame == TypingFrame(type="typing", active=True)


def test_csat_and_end_frames() -> None:
    assert parse_client_frame('{"type":"csat","score":5}') == CsatFrame(type="csat", score=5)
    assert parse_client_frame('{"type":"end"}') == EndFrame(type="end")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type":"dance"}', "Unknown frame type 'dance'"),
        ('{"text":"no type"}', "Unknown frame type None"),
        ('{"type":"message","text":"Hallo"}', "client_id"),
        ('{"type":"message","client_id":"c1","text":"   "}', "non-empty text or a payload"),
        ('{"type":"csat","score":9}', "score"),
        ('{"type":"typing","active":"sometimes"}', "active"),
    ],
)
def test_malformed_frames_raise_bad_frame_saying_why(raw: str, says: str) -> None:
    with pytest.raises(BadFrame) as caught:
        parse_client_frame(raw)
    assert caught.value.code == "bad_frame"
    assert says in caught.value.message
