"""The case API (damage reports and their status) against a real gateway process and Redis.

The gateway here runs without Rasa: the case API does not need the bot, so
these tests neither wait for a model to load nor fail when the bot does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from tests.services import CASE_API_TOKEN, ROOT, Service, free_port, start_gateway

TRUSTED = {"Authorization": f"Bearer {CASE_API_TOKEN}"}
AGENT_PASSWORD = "richtig-geheim-42"
MAX_FAILURES = 5  # CASE_LOOKUP_MAX_FAILURES's default
RETENTION_S = 180 * 86_400  # CASE_RETENTION_DAYS's default
NOT_FOUND = {"error": "not_found"}


@pytest.fixture(scope="module")
def gateway(service_dir: Path, redis_url: str) -> Iterator[Service]:
    """The gateway as `make run` starts it, with the case-API token; no Rasa behind it."""
    service = start_gateway(service_dir, "gateway-cases", redis_url, rasa_port=free_port())
    yield service
    service.stop()


@pytest.fixture(scope="module")
def store(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def fresh_lookup_counters(store: redis.Redis) -> None:
    """Every test starts with no failed look-ups counted (all tests share 127.0.0.1)."""
    for key in store.scan_iter(match="bs:case-lookups:*"):
        store.delete(key)


@pytest.fixture
def api(gateway: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


def report(**overrides: Any) -> dict[str, Any]:
    marker = uuid.uuid4().hex[:8]
    body: dict[str, Any] = {
        "category": "schlagloch",
        "location": f"Hauptstraße 12, vor der Bäckerei {marker}",
        "description": f"Tiefes Schlagloch, Radfahrer weichen auf den Gehweg aus ({marker}).",
        "email": f"lena.{marker}@example.org",
        "postal_code": "80331",
        "conversation_id": uuid.uuid4().hex,
        "language": "de",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def create(api: httpx.Client, body: dict[str, Any]) -> str:
    response = api.post("/api/cases", json=body, headers=TRUSTED)
    assert response.status_code == 201, response.text
    return str(response.json()["case_number"])


def look_up(api: httpx.Client, trusted: bool = True, **body: Any) -> httpx.Response:
    """A look-up as the action server makes it (trusted, per conversation) or a web page."""
    return api.post("/api/cases/lookup", json=body, headers=TRUSTED if trusted else {})


def unknown_number() -> str:
    return f"MM-1999-{uuid.uuid4().int % 1_000_000:06d}"


def test_a_created_case_gets_the_years_next_number(api: httpx.Client) -> None:
    first = api.post("/api/cases", json=report(), headers=TRUSTED)
    second = api.post("/api/cases", json=report(category="graffiti"), headers=TRUSTED)
    assert first.status_code == second.status_code == 201
    year = datetime.now(ZoneInfo("Europe/Berlin")).year
    numbers = []
    for response in (first, second):
        body = response.json()
        assert set(body) == {"case_number", "status", "created_at"}
        match = re.fullmatch(rf"MM-{year}-(\d{{6}})", body["case_number"])
        assert match, body
        numbers.append(int(match.group(1)))
        assert body["status"] == "eingegangen"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["created_at"])
    assert numbers[1] == numbers[0] + 1


def test_optional_fields_may_be_left_out_or_empty(api: httpx.Client) -> None:
    bare = {"category": "muell", "location": "Stadtpark", "description": "Überfüllte Mülleimer"}
    assert api.post("/api/cases", json=bare, headers=TRUSTED).status_code == 201
    empty = {**bare, "email": "", "postal_code": " ", "conversation_id": None}
    assert api.post("/api/cases", json=empty, headers=TRUSTED).status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "vulkan"}, "category"),
        ({"category": None}, "category"),
        ({"location": "   "}, "location"),
        ({"location": "x" * 301}, "location"),
        ({"description": None}, "description"),
        ({"description": "x" * 2001}, "description"),
        ({"email": "lena-at-example.org"}, "email"),
        ({"email": "lena@example"}, "email"),
        ({"postal_code": "8033"}, "postal_code"),
        ({"postal_code": "8O331"}, "postal_code"),
        ({"language": "fr"}, "language"),
        ({"conversation_id": "c" * 129}, "conversation_id"),
    ],
)
def test_validation_errors_name_the_field(
    api: httpx.Client, change: dict[str, Any], field: str
) -> None:
    response = api.post("/api/cases", json=report(**change), headers=TRUSTED)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid" and body["field"] == field
    assert body["detail"]


def test_a_body_that_is_no_json_object_is_invalid(api: httpx.Client) -> None:
    for content in (b"kein json", b"[1, 2]", b""):
        response = api.post("/api/cases", content=content, headers=TRUSTED)
        assert response.status_code == 422
        assert response.json()["field"] == "body"


def test_creating_a_case_needs_the_case_api_token(api: httpx.Client) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer falsch"},
        {"Authorization": f"Basic {CASE_API_TOKEN}"},
        {"Authorization": f"Bearer {CASE_API_TOKEN}x"},
    ):
        response = api.post("/api/cases", json=report(), headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorised"}


def test_the_citizen_finds_the_case_with_the_email_or_the_postal_code(api: httpx.Client) -> None:
    body = report(category="strassenbeleuchtung", postal_code="80331")
    number = create(api, body)
    by_email = look_up(
        api,
        case_number=f"  {number.lower()} ",
        email=f"  {body['email'].upper()} ",
        conversation_id=uuid.uuid4().hex,
    )
    assert by_email.status_code == 200, by_email.text
    found = by_email.json()
    assert found == {
        "case_number": number,
        "category": "strassenbeleuchtung",
        "location": body["location"],
        "status": "eingegangen",
        "created_at": found["created_at"],
        "history": [{"status": "eingegangen", "ts": found["created_at"]}],
    }
    # A web page may look up too, without the action server's token.
    by_postal_code = look_up(api, trusted=False, case_number=number, postal_code="80331")
    assert by_postal_code.status_code == 200
    assert by_postal_code.json() == found


def test_every_failed_lookup_looks_the_same(api: httpx.Client) -> None:
    body = report(postal_code="10115")
    number = create(api, body)
    failures = [
        {"case_number": number, "email": "someone.else@example.org"},
        {"case_number": number, "postal_code": "10117"},
        {"case_number": number},
        {"case_number": unknown_number(), "email": body["email"]},
        {"case_number": "MM-26-12", "email": body["email"]},
        {"case_number": "'; DROP TABLE cases; --", "postal_code": "10115"},
        {"email": body["email"]},
        # Two verifiers: one right is not enough when the other is wrong.
        {"case_number": number, "email": body["email"], "postal_code": "99999"},
    ]
    responses = [look_up(api, **failure, conversation_id=uuid.uuid4().hex) for failure in failures]
    assert [r.status_code for r in responses] == [404] * len(failures)
    assert {r.content for r in responses} == {b'{"error":"not_found"}'}
    assert {r.headers["content-type"] for r in responses} == {"application/json"}
    raw = api.post("/api/cases/lookup", content=b"not json", headers=TRUSTED)
    assert (raw.status_code, raw.json()) == (404, NOT_FOUND)


def test_failed_lookups_are_limited_per_conversation(api: httpx.Client) -> None:
    number = create(api, body := report())
    conversation = uuid.uuid4().hex
    for _ in range(MAX_FAILURES):
        failed = look_up(api, case_number=unknown_number(), email=body["email"],
                         conversation_id=conversation)  # fmt: skip
        assert failed.status_code == 404
    limited = look_up(api, case_number=number, email=body["email"], conversation_id=conversation)
    assert limited.status_code == 429
    retry_after = limited.json()["retry_after_s"]
    assert limited.json() == {"error": "rate_limited", "retry_after_s": retry_after}
    assert 0 < retry_after <= 900
    assert limited.headers["retry-after"] == str(retry_after)
    # Another conversation asking the same is unaffected.
    other = look_up(api, case_number=number, email=body["email"], conversation_id="another")
    assert other.status_code == 200


def test_guessing_one_cases_email_from_many_conversations_is_limited(api: httpx.Client) -> None:
    number = create(api, body := report())
    for attempt in range(MAX_FAILURES):
        guess = look_up(api, case_number=number, email=f"guess{attempt}@example.org",
                        conversation_id=uuid.uuid4().hex)  # fmt: skip
        assert guess.status_code == 404
    right = look_up(api, case_number=number, email=body["email"], conversation_id="fresh")
    assert right.status_code == 429
    # Other cases can still be looked up.
    other = create(api, other_body := report())
    found = look_up(api, case_number=other, email=other_body["email"], conversation_id="fresh")
    assert found.status_code == 200


def test_failed_lookups_without_the_action_servers_token_are_limited_per_address(
    api: httpx.Client,
) -> None:
    number = create(api, body := report())
    for _ in range(MAX_FAILURES):
        failed = look_up(api, trusted=False, case_number=unknown_number(), email=body["email"],
                         conversation_id=uuid.uuid4().hex)  # fmt: skip
        assert failed.status_code == 404
    blocked = look_up(api, trusted=False, case_number=number, email=body["email"])
    assert blocked.status_code == 429
    # The action server speaks for many citizens from one address: it is
    # counted per conversation, so one citizen's failures do not block the others.
    via_bot = look_up(api, case_number=number, email=body["email"], conversation_id="lena")
    assert via_bot.status_code == 200


def test_a_successful_lookup_does_not_reset_earlier_failures(api: httpx.Client) -> None:
    number = create(api, body := report())
    conversation = uuid.uuid4().hex
    for _ in range(MAX_FAILURES - 1):
        assert look_up(api, case_number=unknown_number(), email=body["email"],
                       conversation_id=conversation).status_code == 404  # fmt: skip
    found = look_up(api, case_number=number, email=body["email"], conversation_id=conversation)
    assert found.status_code == 200
    last = look_up(api, case_number=unknown_number(), email="x@example.org",
                   conversation_id=conversation)  # fmt: skip
    assert last.status_code == 404
    blocked = look_up(api, case_number=number, email=body["email"], conversation_id=conversation)
    assert blocked.status_code == 429


@pytest.fixture(scope="module")
def agent_token(gateway: Service, redis_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "handover.admin", "add-agent", "--username", "case-agent",
         "--password", AGENT_PASSWORD, "--name", "Carla Fall"],
        cwd=ROOT, env={**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    login = httpx.post(
        f"{gateway.url}/api/agent/login",
        json={"username": "case-agent", "password": AGENT_PASSWORD},
        timeout=60,
    )
    assert login.status_code == 200, login.text
    return str(login.json()["token"])


def test_an_agents_status_change_appears_in_the_history(
    api: httpx.Client, agent_token: str
) -> None:
    number = create(api, body := report())
    agent = {"Authorization": f"Bearer {agent_token}"}
    changed = api.post(
        f"/api/cases/{number}/status",
        json={"status": "in_bearbeitung", "note": "Der Bauhof ist informiert."},
        headers=agent,
    )
    assert changed.status_code == 200, changed.text
    case = changed.json()
    assert case["status"] == "in_bearbeitung"
    assert [entry["status"] for entry in case["history"]] == ["eingegangen", "in_bearbeitung"]
    assert case["history"][1]["note"] == "Der Bauhof ist informiert."
    assert set(case["history"][1]) == {"status", "ts", "note"}  # not who changed it
    done = api.post(f"/api/cases/{number}/status", json={"status": "erledigt"}, headers=agent)
    assert done.status_code == 200
    seen = look_up(api, case_number=number, email=body["email"], conversation_id="c")
    assert seen.json()["status"] == "erledigt"
    assert [e["status"] for e in seen.json()["history"]] == [
        "eingegangen", "in_bearbeitung", "erledigt"
    ]  # fmt: skip
    assert "note" not in seen.json()["history"][2]


def test_status_changes_need_an_agent_and_a_known_case(api: httpx.Client, agent_token: str) -> None:
    number = create(api, report())
    agent = {"Authorization": f"Bearer {agent_token}"}
    change = {"status": "abgelehnt"}
    for headers in ({}, {"Authorization": "Bearer falsch"}, TRUSTED):
        refused = api.post(f"/api/cases/{number}/status", json=change, headers=headers)
        assert (refused.status_code, refused.json()) == (401, {"error": "unauthorised"})
    unknown = api.post(f"/api/cases/{unknown_number()}/status", json=change, headers=agent)
    assert (unknown.status_code, unknown.json()) == (404, NOT_FOUND)
    malformed = api.post("/api/cases/nonsense/status", json=change, headers=agent)
    assert (malformed.status_code, malformed.json()) == (404, NOT_FOUND)
    bad = api.post(f"/api/cases/{number}/status", json={"status": "vergessen"}, headers=agent)
    assert bad.status_code == 422 and bad.json()["field"] == "status"


def test_the_admin_command_changes_a_status(api: httpx.Client, redis_url: str) -> None:
    number = create(api, body := report())
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "handover.admin", "case-status", number.lower(), "abgelehnt",
         "--note", "Privatgrundstück"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = look_up(api, case_number=number, email=body["email"], conversation_id="c").json()
    assert seen["history"][-1] == {"status": "abgelehnt", "ts": seen["history"][-1]["ts"],
                                   "note": "Privatgrundstück"}  # fmt: skip
    missing = subprocess.run(
        [sys.executable, "-m", "handover.admin", "case-status", unknown_number(), "erledigt"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 1


def test_cases_expire_after_the_retention_period_but_numbers_are_never_reused(
    api: httpx.Client, store: redis.Redis, agent_token: str
) -> None:
    number = create(api, report())
    keys = [f"bs:case:{{{number}}}", f"bs:case:{{{number}}}:history"]
    for key in keys:
        assert RETENTION_S - 60 < store.ttl(key) <= RETENTION_S
    # A status change keeps the case another retention period.
    for key in keys:
        store.expire(key, 100)
    api.post(f"/api/cases/{number}/status", json={"status": "in_bearbeitung"},
             headers={"Authorization": f"Bearer {agent_token}"})  # fmt: skip
    for key in keys:
        assert RETENTION_S - 60 < store.ttl(key) <= RETENTION_S
    year = number.split("-")[1]
    assert store.ttl(f"bs:case-counter:{year}") == -1  # no expiry: never counts from 1 again


def test_personal_data_is_stored_as_given_and_never_logged(
    api: httpx.Client, store: redis.Redis, gateway: Service
) -> None:
    body = report(email="  Lena.Sommer@Example.org ")
    number = create(api, body)
    stored = store.hgetall(f"bs:case:{{{number}}}")
    assert stored["email"] == "Lena.Sommer@Example.org"
    assert stored["postal_code"] == body["postal_code"]
    without = create(api, report(email=None, postal_code=None))
    assert not {"email", "postal_code"} & set(store.hgetall(f"bs:case:{{{without}}}"))
    look_up(api, case_number=number, email="wrong@example.org", conversation_id="c")
    log = gateway.log()
    assert number in log  # the number is logged, so the log is the right one
    for secret in ("Lena.Sommer", body["location"], body["description"]):
        assert secret not in log


def test_metrics_count_created_cases_and_failed_lookups(api: httpx.Client) -> None:
    def value(metrics: str, name: str) -> float:
        found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", metrics, re.M)
        return float(found.group(1)) if found else 0.0

    created = 'gateway_cases_created_total{category="spielplatz"}'
    failed = 'gateway_case_lookup_failures_total{outcome="not_found"}'
    before = api.get("/metrics").text
    create(api, report(category="spielplatz"))
    look_up(api, case_number=unknown_number(), email="x@example.org", conversation_id="m")
    after = api.get("/metrics").text
    assert value(after, created) == value(before, created) + 1
    assert value(after, failed) == value(before, failed) + 1
