"""No message text at info or warning, and no contact data or credentials, in any process's log.

Real Rasa, action server and gateway (tests/conftest.py) write their logs to files
in the services folder; these tests send what used to leak and read those files.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from bot.private_logs import clean_rasa_log_text
from tests.citizen_client import CitizenClient
from tests.services import Service

LOGS = ("gateway", "rasa", "actions")


def test_rasa_s_text_quoting_warnings_are_redacted() -> None:
    warning = (
        "UserWarning: Failed to parse arguments in line '/kaputt{\"a\": 1}'. Expected the "
        "intent to be one of [['greet']] but found kaputt.Continuing with given line as user text."
    )
    cleaned = clean_rasa_log_text(warning)
    assert cleaned.startswith("UserWarning: Failed to parse a message that starts with '/'")
    assert "kaputt" not in cleaned
    assert clean_rasa_log_text("Mail lena@example.org") == "Mail [email]"


def process_logs(service_dir: Path) -> dict[str, str]:
    return {name: (service_dir / f"{name}.log").read_text(errors="replace") for name in LOGS}


@pytest.mark.rasa
async def test_slash_messages_and_contact_data_never_reach_the_logs(
    ws_url: str, service_dir: Path, gateway: Service, rasa_server: Service
) -> None:
    marker = uuid.uuid4().hex[:12]
    email = f"lena.{marker}@example.org"
    texts = [
        f'/nicht_da_{marker}{{"email": "{email}"}}',  # not an intent: Rasa quotes it in a warning
        f'/greet{{"email": "{email}", kaputt {marker}}}',  # broken entities: quoted too
        f"Meine E-Mail ist {email}, Telefon 0171 2345678, Vorgang {marker}",
    ]
    await CitizenClient.converse(ws_url, texts)
    await asyncio.sleep(1.0)  # let the processes write their lines
    for name, log in process_logs(service_dir).items():
        assert marker not in log, f"message text in the {name} log"
        assert "0171 2345678" not in log, f"a phone number in the {name} log"


@pytest.mark.rasa
async def test_a_websocket_url_is_logged_without_its_query_string(
    ws_url: str, service_dir: Path
) -> None:
    secret = f"s3cr3t{uuid.uuid4().hex}"
    async with connect(f"{ws_url}?lang=de&token={secret}") as socket:
        assert json.loads(await socket.recv())["type"] == "session"
    await asyncio.sleep(0.5)
    log = process_logs(service_dir)["gateway"]
    assert secret not in log
    assert "/ws/chat?[redacted]" in log
