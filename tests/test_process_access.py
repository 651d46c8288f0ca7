"""Rasa's HTTP API, its gateway channel and the action server answer their callers only.

Real processes (tests/conftest.py): the gateway presents its JWT to Rasa, Rasa its
bearer token to the action server; anybody else on the host gets 401 and runs nothing.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from redis import Redis

from handover.rasa.trackers import tracker_key
from tests.citizen_client import CitizenClient
from tests.services import (
    BOT_VENV,
    RASA_JWT_SECRET,
    ROOT,
    Service,
    action_server_headers,
    rasa_headers,
)

pytestmark = pytest.mark.rasa

QUESTION = "Was kostet ein Personalausweis?"


def signed(secret: str, **claims: object) -> dict[str, str]:
    payload = {"user": {"username": "gateway", "role": "admin"}, "exp": int(time.time()) + 60}
    token = jwt.encode({"alg": "HS256"}, {**payload, **claims}, OctKey.import_key(secret))
    return {"Authorization": f"Bearer {token}"}


def unsigned() -> dict[str, str]:
    """A JWT with `alg: none`: claims anyone can write."""
    import base64
    import json

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"user": {"username": "gateway", "role": "admin"}, "exp": int(time.time()) + 60}
    return {"Authorization": f"Bearer {part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."}


FORGED = {
    "no credential": {},
    "wrong secret": signed("not-the-secret-" + "x" * 32),
    "expired": signed(RASA_JWT_SECRET, exp=int(time.time()) - 120),
    "alg none": unsigned(),
    "in the URL": {},  # Rasa's ?token= way: never accepted
    "not a JWT": {"Authorization": "Bearer " + RASA_JWT_SECRET},
}


@pytest.mark.parametrize("forgery", FORGED)
def test_the_gateway_channel_refuses_other_callers_and_stores_nothing(
    rasa_server: Service, redis_url: str, forgery: str
) -> None:
    sender = f"forged-{uuid.uuid4().hex}"
    params = {"token": RASA_JWT_SECRET} if forgery == "in the URL" else {}
    response = httpx.post(
        f"{rasa_server.url}/webhooks/gateway/webhook",
        headers=FORGED[forgery],
        params=params,
        json={"sender": sender, "message": QUESTION},
        timeout=30,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    with Redis.from_url(redis_url) as redis:
        assert redis.exists(tracker_key(sender)) == 0


@pytest.mark.parametrize("forgery", FORGED)
def test_rasa_s_api_refuses_other_callers(rasa_server: Service, forgery: str) -> None:
    params = {"token": RASA_JWT_SECRET} if forgery == "in the URL" else {}
    url = f"{rasa_server.url}/conversations/{uuid.uuid4().hex}/tracker"
    assert httpx.get(url, headers=FORGED[forgery], params=params, timeout=10).status_code == 401
    events = f"{rasa_server.url}/conversations/{uuid.uuid4().hex}/tracker/events"
    refused = httpx.post(events, headers=FORGED[forgery], json={"event": "pause"}, timeout=10)
    assert refused.status_code == 401


def test_rasa_s_api_answers_the_gateway(rasa_server: Service) -> None:
    url = f"{rasa_server.url}/conversations/{uuid.uuid4().hex}/tracker"
    assert httpx.get(url, headers=rasa_headers(), timeout=10).status_code == 200


def test_the_unauthenticated_rest_channel_is_off(rasa_server: Service) -> None:
    response = httpx.post(
        f"{rasa_server.url}/webhooks/rest/webhook",
        json={"sender": uuid.uuid4().hex, "message": QUESTION},
        timeout=30,
    )
    assert response.status_code in (401, 404)  # refused before routing, or no such route


def action_call(action: str, text: str = QUESTION) -> dict[str, object]:
    """What Rasa posts to run `action` for a conversation whose latest message is `text`."""
    sender = uuid.uuid4().hex
    return {
        "next_action": action,
        "sender_id": sender,
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": sender,
            "slots": {},
            "latest_message": {"text": text, "intent": {"name": "ask_question"}, "entities": []},
            "latest_event_time": time.time(),
            "paused": False,
            "events": [],
            "latest_input_channel": "gateway",
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + "x" * 20},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong", "basic", "empty"],
)
def test_the_action_server_refuses_other_callers_before_running_anything(
    action_server: Service, headers: dict[str, str]
) -> None:
    url = f"{action_server.url}/webhook"
    refused = httpx.post(url, headers=headers, json=action_call("action_answer_from_knowledge"))
    assert refused.status_code == 401
    assert "responses" not in refused.json()
    # Not even looked up: an unknown action is refused, not "not found" (404).
    unknown = httpx.post(url, headers=headers, json=action_call("action_does_not_exist"))
    assert unknown.status_code == 401
    assert httpx.get(f"{action_server.url}/actions", headers=headers).status_code == 401


def test_the_action_server_runs_actions_for_rasa(action_server: Service) -> None:
    response = httpx.post(
        f"{action_server.url}/webhook",
        headers=action_server_headers(),
        json=action_call("action_answer_from_knowledge"),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["responses"]
    assert httpx.get(f"{action_server.url}/health").status_code == 200


async def test_the_gateway_s_turns_still_reach_rasa_and_its_actions(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    try:
        await citizen.say(QUESTION)
        reply = await citizen.bot_reply(timeout=60)
        assert reply["text"]
    finally:
        await citizen.close()


def test_a_failing_action_call_is_answered_without_echoing_the_conversation(
    action_server: Service,
) -> None:
    """rasa_sdk answered a failure with the whole request (every message), which Rasa logged."""
    marker = uuid.uuid4().hex
    call = action_call("action_answer_from_knowledge", text=f"Meine Nummer {marker}")
    call["tracker"]["events"] = "not a list"  # type: ignore[index]
    response = httpx.post(
        f"{action_server.url}/webhook", headers=action_server_headers(), json=call, timeout=60
    )
    assert response.status_code >= 400
    assert marker not in response.text


def test_a_secret_that_starts_with_a_dash_reaches_rasas_own_parser() -> None:
    """One installation in 64 generates such a secret; Rasa must still start."""
    code = (
        "from rasa.__main__ import create_argument_parser\n"
        "from bot.rasa_server import rasa_argv\n"
        "argv = rasa_argv(['--enable-api', '--port', '5005'], '-x_Secret')\n"
        "print(create_argument_parser().parse_args(argv[1:]).jwt_secret)\n"
    )
    done = subprocess.run(
        [str(BOT_VENV / "bin" / "python"), "-c", code], cwd=ROOT, capture_output=True,
        text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "-x_Secret"
