"""The case API (damage reports and their status) against a real gateway process and Redis.

The gateway here runs without Rasa: the case API does not need the bot, so
these tests neither wait for a model to load nor fail when the bot does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from handover.cases.numbers import is_valid, new_case_number
from handover.cases.store import issued_mark
from tests.services import CASE_API_TOKEN, ROOT, Service, free_port, start_gateway

TRUSTED = {"Authorization": f"Bearer {CASE_API_TOKEN}"}
AGENT_PASSWORD = "richtig-geheim-42"
MAX_FAILURES = 5  # the test gateway's CASE_LOOKUP_MAX_FAILURES
PAIR_DELAY_S = 1  # its CASE_LOOKUP_PAIR_DELAY_S
RETENTION_S = 180 * 86_400  # CASE_RETENTION_DAYS's default
NOT_FOUND = {"error": "not_found"}


@pytest.fixture(scope="module")
def gateway(service_dir: Path, redis_url: str) -> Iterator[Service]:
    """The gateway as `make run` starts it, with the case-API token; no Rasa behind it."""
    service = start_gateway(
        service_dir, "gateway-cases", redis_url, rasa_port=free_port(),
        env={"CASE_LOOKUP_MAX_FAILURES": str(MAX_FAILURES), "CASE_LOOKUP_WINDOW_S": "900",
             "CASE_LOOKUP_PAIR_DELAY_S": str(PAIR_DELAY_S)},
    )  # fmt: skip
    yield service
    service.stop()


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
    """A look-up as the action server makes it (trusted, naming the citizen) or a web page."""
    return api.post("/api/cases/lookup", json=body, headers=TRUSTED if trusted else {})


def unknown_number() -> str:
    return new_case_number(1999)


def citizen() -> str:
    """A chatting citizen's client key, as the gateway puts it into Rasa's metadata."""
    return uuid.uuid4().hex


def key_of(store: redis.Redis, address: str) -> str:
    """The client key the gateway derives for `address` (its secret is in Redis)."""
    secret = str(store.get("bs:secret:client-keys")).encode()
    return hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()[:32]


def test_a_created_case_gets_a_random_number_with_a_check_character(
    api: httpx.Client, store: redis.Redis
) -> None:
    year = datetime.now(ZoneInfo("Europe/Berlin")).year
    symbol = "[0-9A-HJKMNP-TV-Z]"  # Crockford's Base32: no I, L, O, U
    numbers = []
    for category in ("schlagloch", "graffiti", "muell"):
        response = api.post("/api/cases", json=report(category=category), headers=TRUSTED)
        assert response.status_code == 201
        body = response.json()
        assert set(body) == {"case_number", "status", "created_at"}
        match = re.fullmatch(rf"MM-{year}-({symbol}{{4}})-({symbol}{{4}})", body["case_number"])
        assert match, body
        assert is_valid(match.group(1) + match.group(2))
        numbers.append(body["case_number"])
        assert body["status"] == "eingegangen"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["created_at"])
    assert len(set(numbers)) == 3
    assert {issued_mark(n) for n in numbers} <= store.smembers(f"bs:case-numbers:{year}")


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


def test_a_citizens_failed_lookups_are_limited_across_conversations(api: httpx.Client) -> None:
    """The chat names the citizen by client key, so new conversations do not reset the budget."""
    number = create(api, body := report())
    lena = citizen()
    for _ in range(MAX_FAILURES):
        failed = look_up(api, case_number=unknown_number(), email=body["email"],
                         conversation_id=uuid.uuid4().hex, client_key=lena)  # fmt: skip
        assert failed.status_code == 404
    limited = look_up(api, case_number=number, email=body["email"],
                      conversation_id=uuid.uuid4().hex, client_key=lena)  # fmt: skip
    assert limited.status_code == 429
    retry_after = limited.json()["retry_after_s"]
    assert limited.json() == {"error": "rate_limited", "retry_after_s": retry_after}
    assert 0 < retry_after <= 900
    assert limited.headers["retry-after"] == str(retry_after)
    # Another citizen chatting through the same action server is unaffected.
    other = look_up(api, case_number=number, email=body["email"], conversation_id="x",
                    client_key=citizen())  # fmt: skip
    assert other.status_code == 200


def test_chat_and_api_lookups_share_one_budget_per_address(
    api: httpx.Client, store: redis.Redis
) -> None:
    number = create(api, body := report())
    mine = key_of(store, "127.0.0.1")  # the address this test calls from
    for attempt in range(MAX_FAILURES):
        # Alternately through the chat (the action server names this address's key)
        # and directly: all count on the same budget.
        failed = (
            look_up(api, case_number=unknown_number(), email=body["email"],
                    conversation_id=uuid.uuid4().hex, client_key=mine)
            if attempt % 2
            else look_up(api, trusted=False, case_number=unknown_number(), email=body["email"])
        )  # fmt: skip
        assert failed.status_code == 404
    blocked = look_up(api, trusted=False, case_number=number, email=body["email"])
    assert blocked.status_code == 429
    via_chat = look_up(api, case_number=number, email=body["email"], conversation_id="c",
                       client_key=mine)  # fmt: skip
    assert via_chat.status_code == 429


def test_only_the_action_server_may_name_the_client(api: httpx.Client) -> None:
    number = create(api, body := report())
    for _ in range(MAX_FAILURES):
        # A web page naming a fresh client each time is still counted as itself.
        forged = look_up(api, trusted=False, case_number=unknown_number(), email=body["email"],
                         client_key=citizen(), conversation_id=uuid.uuid4().hex)  # fmt: skip
        assert forged.status_code == 404
    blocked = look_up(api, trusted=False, case_number=number, email=body["email"],
                      client_key=citizen())  # fmt: skip
    assert blocked.status_code == 429


@pytest.mark.parametrize("malformed", [None, "", "not-a-key", "A" * 32, "0" * 33, {"x": 1}])
def test_without_a_client_key_the_chat_counts_per_conversation(
    api: httpx.Client, malformed: object
) -> None:
    """A channel without an address (or a malformed key): the conversation is the client."""
    number = create(api, body := report())
    conversation = uuid.uuid4().hex
    extra = {} if malformed is None else {"client_key": malformed}
    for _ in range(MAX_FAILURES):
        failed = look_up(api, case_number=unknown_number(), email=body["email"],
                         conversation_id=conversation, **extra)  # fmt: skip
        assert failed.status_code == 404
    limited = look_up(api, case_number=number, email=body["email"], conversation_id=conversation)
    assert limited.status_code == 429
    other = look_up(api, case_number=number, email=body["email"], conversation_id="another")
    assert other.status_code == 200


def test_guessing_one_case_never_locks_its_owner_out(api: httpx.Client) -> None:
    number = create(api, body := report())
    for _ in range(3 * MAX_FAILURES):  # from many addresses, far beyond any one budget
        guess = look_up(api, case_number=number, email=f"{uuid.uuid4().hex[:6]}@example.org",
                        conversation_id="attack", client_key=citizen())  # fmt: skip
        assert guess.status_code == 404
    owner = look_up(api, case_number=number, email=body["email"], conversation_id="lena",
                    client_key=citizen())  # fmt: skip
    assert owner.status_code == 200


def test_one_clients_retries_of_one_case_wait_ever_longer(api: httpx.Client) -> None:
    number = create(api, report(postal_code="80331", email=None))
    attacker = citizen()

    def guess(postal_code: str) -> httpx.Response:
        return look_up(api, case_number=number, postal_code=postal_code,
                       conversation_id="a", client_key=attacker)  # fmt: skip

    assert guess("10115").status_code == 404  # the first failure costs no delay
    assert guess("10117").status_code == 404
    waited = guess("10119")  # after the second, PAIR_DELAY_S
    assert waited.status_code == 429 and waited.json()["retry_after_s"] == PAIR_DELAY_S
    time.sleep(PAIR_DELAY_S + 0.1)
    assert guess("10119").status_code == 404
    doubled = guess("10178")  # after the third, twice that
    assert doubled.status_code == 429 and doubled.json()["retry_after_s"] == 2 * PAIR_DELAY_S
    # The same client may look up other cases meanwhile.
    other = create(api, other_body := report())
    found = look_up(api, case_number=other, email=other_body["email"], conversation_id="a",
                    client_key=attacker)  # fmt: skip
    assert found.status_code == 200
    # The right answer, once the delay is over, clears the pair.
    time.sleep(2 * PAIR_DELAY_S + 0.1)
    assert guess("80331").status_code == 200
    assert guess("10115").status_code == 404
    assert guess("10117").status_code == 404


def test_a_successful_lookup_does_not_reset_earlier_failures(api: httpx.Client) -> None:
    number = create(api, body := report())
    lena = citizen()
    for _ in range(MAX_FAILURES - 1):
        assert look_up(api, case_number=unknown_number(), email=body["email"],
                       conversation_id="c", client_key=lena).status_code == 404  # fmt: skip
    found = look_up(api, case_number=number, email=body["email"], conversation_id="c",
                    client_key=lena)  # fmt: skip
    assert found.status_code == 200
    last = look_up(api, case_number=unknown_number(), email="x@example.org",
                   conversation_id="c", client_key=lena)  # fmt: skip
    assert last.status_code == 404
    blocked = look_up(api, case_number=number, email=body["email"], conversation_id="c",
                      client_key=lena)  # fmt: skip
    assert blocked.status_code == 429


def test_cases_with_old_sequential_numbers_can_still_be_looked_up(
    api: httpx.Client, store: redis.Redis
) -> None:
    number = f"MM-2025-{uuid.uuid4().int % 1_000_000:06d}"
    store.hset(f"bs:case:{{{number}}}", mapping={
        "category": "graffiti", "location": "Rathausplatz", "description": "Schmiererei",
        "language": "de", "status": "in_bearbeitung", "created_at": "2025-11-02T09:00:00.000Z",
        "updated_at": "2025-11-03T09:00:00.000Z", "postal_code": "80331"})  # fmt: skip
    store.rpush(f"bs:case:{{{number}}}:history",
                '{"status":"eingegangen","ts":"2025-11-02T09:00:00.000Z"}')  # fmt: skip
    store.expire(f"bs:case:{{{number}}}", 600)
    store.expire(f"bs:case:{{{number}}}:history", 600)
    found = look_up(api, case_number=number.lower(), postal_code="80331",
                    conversation_id="c", client_key=citizen())  # fmt: skip
    assert found.status_code == 200 and found.json()["case_number"] == number


def test_a_mistyped_number_finds_nothing_and_a_loosely_written_one_is_read(
    api: httpx.Client,
) -> None:
    number = create(api, body := report())
    code = number.replace("-", "")[6:]
    wrong_check = code[:-1] + ("0" if code[-1] != "0" else "1")
    typo = f"{number[:8]}{wrong_check[:4]}-{wrong_check[4:]}"
    assert look_up(api, case_number=typo, email=body["email"], conversation_id="c",
                   client_key=citizen()).status_code == 404  # fmt: skip
    # Lower case, spaces instead of hyphens, O for 0 and L for 1.
    year, first, second = number.split("-")[1:]
    forgiving = f"{first}{second}".replace("0", "O").replace("1", "L").lower()
    loose = f"mm {year} {forgiving}"
    assert look_up(api, case_number=loose, email=body["email"], conversation_id="c",
                   client_key=citizen()).status_code == 200  # fmt: skip


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


def test_cases_expire_after_the_retention_period_but_numbers_are_never_reissued(
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
    # Every number of the year stays issued until the year is over: none is drawn twice.
    year = int(number.split("-")[1])
    issued = f"bs:case-numbers:{year}"
    assert store.sismember(issued, issued_mark(number))
    year_end = datetime(year + 1, 1, 1, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    assert year_end < time.time() + store.ttl(issued) <= year_end + 3 * 86_400


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
