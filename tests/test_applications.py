"""Applications from the portal's form (POST /api/applications/pv) and the portal's pages.

A real gateway process and a real redis-server, no Rasa: a citizen's chat message
is stored before the bot is asked, so a conversation to link exists without one.
"""

from __future__ import annotations

import base64
import re
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from redis.asyncio import Redis

from handover.cases.numbers import is_valid
from handover.cases.store import issued_mark
from tests.citizen_client import CitizenClient
from tests.services import ROOT, Service, free_port, start_gateway
from tests.test_handover import PASSWORD, add_agent

PATH = "/api/applications/pv"
RETENTION_DAYS = 90  # the test gateway's APPLICATION_RETENTION_DAYS (the default is 180)
MiB = 1024 * 1024
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
NUMBER = re.compile(r"PV-(\d{4})-([0-9A-HJKMNP-TV-Z]{4})-([0-9A-HJKMNP-TV-Z]{4})")


@pytest.fixture(scope="module")
def gateway(service_dir: Path, redis_url: str) -> Iterator[Service]:
    service = start_gateway(
        service_dir, "gateway-applications", redis_url, rasa_port=free_port(),
        env={"APPLICATION_RETENTION_DAYS": str(RETENTION_DAYS),
             "PRIVACY_REQUESTS_PER_MINUTE": "10000"},
    )  # fmt: skip
    yield service
    service.stop()


@pytest.fixture
def api(gateway: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        yield client


def fields(**overrides: str | None) -> dict[str, str]:
    """A valid application, values as a citizen types them; None leaves a field out."""
    marker = uuid.uuid4().hex[:8]
    values: dict[str, str | None] = {
        "first_name": " Lena ",
        "last_name": "Schmidt",
        "email": f"lena.{marker}@example.org",
        "phone": "0170 1234567",
        "street": f"Lindenweg {marker}",
        "postal_code": "12345",
        "city": "Musterstadt",
        "installation_type": "dach",
        "power_kwp": "9,80",
        "listed_building": "ja",
        "grid_operator": "stadtwerke-musterstadt",
        "confirm": "ja",
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


NO_FILE = ("", b"", "application/octet-stream")  # what a browser sends when none was chosen


def submit(
    api: httpx.Client,
    data: dict[str, str],
    upload: tuple[str, bytes, str] = NO_FILE,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A multipart/form-data POST as the page's FormData makes it."""
    return api.post(PATH, data=data, files={"upload": upload}, headers=headers or {})


def application_keys(store: redis.Redis) -> set[str]:
    return set(store.scan_iter(match="bs:application:*", count=1000))


def test_a_valid_application_is_stored_with_its_number_and_retention(
    api: httpx.Client, store: redis.Redis
) -> None:
    data = fields()
    response = submit(api, data, ("Lageplan Süd.pdf", PDF, "application/pdf"))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    number = response.json()["number"]
    match = NUMBER.fullmatch(number)
    assert match, number
    assert int(match.group(1)) == datetime.now(ZoneInfo("Europe/Berlin")).year
    assert is_valid(match.group(2) + match.group(3))

    stored = store.hgetall(f"bs:application:{{{number}}}")
    assert stored == {
        "kind": "pv", "status": "eingegangen", "created_at": stored["created_at"],
        "first_name": "Lena", "last_name": "Schmidt", "email": data["email"],
        "phone": "0170 1234567", "street": data["street"], "postal_code": "12345",
        "city": "Musterstadt", "installation_type": "dach", "power_kwp": "9.8",
        "listed_building": "ja", "grid_operator": "stadtwerke-musterstadt",
        "upload_name": "Lageplan Süd.pdf", "upload_type": "application/pdf",
        "upload_size": str(len(PDF)),
    }  # fmt: skip
    upload = store.get(f"bs:application:{{{number}}}:upload")
    assert upload is not None and base64.b64decode(upload) == PDF
    retention_s = RETENTION_DAYS * 86_400
    for key in (f"bs:application:{{{number}}}", f"bs:application:{{{number}}}:upload"):
        assert retention_s - 60 < store.ttl(key) <= retention_s, key
    issued = f"bs:application-numbers:{match.group(1)}"
    assert store.sismember(issued, issued_mark(number))
    assert 0 < store.ttl(issued) <= 368 * 86_400  # until the year is over


def test_the_upload_is_optional_and_its_type_comes_from_its_bytes(
    api: httpx.Client, store: redis.Redis
) -> None:
    without = submit(api, fields(phone="", power_kwp="1000"))
    assert without.status_code == 201, without.text
    number = without.json()["number"]
    stored = store.hgetall(f"bs:application:{{{number}}}")
    assert "upload_name" not in stored and "phone" not in stored
    assert stored["power_kwp"] == "1000"
    assert not store.exists(f"bs:application:{{{number}}}:upload")

    # The client's content type counts for nothing, in either direction.
    photo = submit(api, fields(), ("dach.JPG", JPEG, "application/pdf"))
    assert photo.status_code == 201, photo.text
    stored = store.hgetall(f"bs:application:{{{photo.json()['number']}}}")
    assert stored["upload_type"] == "image/jpeg" and stored["upload_name"] == "dach.JPG"


def test_missing_fields_get_a_german_message_each_and_store_nothing(
    api: httpx.Client, store: redis.Redis
) -> None:
    before = application_keys(store)
    empty = submit(api, {"phone": "", "first_name": "   "})
    assert empty.status_code == 422
    body = empty.json()
    assert body["error"] == "invalid" and body["message"] == "Bitte prüfen Sie Ihre Angaben."
    assert list(body["fields"]) == [
        "first_name", "last_name", "email", "street", "postal_code", "city",
        "installation_type", "power_kwp", "listed_building", "grid_operator", "confirm",
    ]  # fmt: skip
    assert body["fields"]["first_name"] == "Geben Sie Ihren Vornamen ein."
    assert body["fields"]["confirm"] == (
        "Bestätigen Sie, dass Ihre Angaben richtig und vollständig sind."
    )
    assert application_keys(store) == before


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("email", "lena@example", "E-Mail-Adresse im richtigen Format"),
        ("email", "lena example@org.de", "E-Mail-Adresse im richtigen Format"),
        ("phone", "ruf mich an", "Telefonnummer nur mit Ziffern"),
        ("postal_code", "1234", "genau fünf Ziffern"),
        ("postal_code", "123456", "genau fünf Ziffern"),
        ("power_kwp", "viel", "als Zahl"),
        ("power_kwp", "9,8 kWp", "als Zahl"),
        ("power_kwp", "0", "größer als 0"),
        ("power_kwp", "-5", "größer als 0"),
        ("power_kwp", "1000,01", "höchstens 1000 kWp"),
        ("power_kwp", "9,815", "höchstens zwei Nachkommastellen"),
        ("installation_type", "keller", "angebotenen Möglichkeiten"),
        ("listed_building", "vielleicht", "angebotenen Möglichkeiten"),
        ("grid_operator", "e-on", "angebotenen Möglichkeiten"),
        ("confirm", "on", "Bestätigen Sie"),
        ("last_name", "x" * 101, "höchstens 100 Zeichen"),
    ],
)
def test_an_invalid_value_is_named_with_what_to_do(
    api: httpx.Client, store: redis.Redis, name: str, value: str, message: str
) -> None:
    before = application_keys(store)
    response = submit(api, fields(**{name: value}))
    assert response.status_code == 422, response.text
    assert list(response.json()["fields"]) == [name]
    assert message in response.json()["fields"][name]
    assert application_keys(store) == before


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (("lageplan.pdf", PNG, "application/pdf"), "passt nicht zu ihrem Namen"),
        (("lageplan.pdf", ELF, "application/pdf"), "PDF, ein PNG oder ein JPEG"),
        (("lageplan.pdf", b"Lageplan, siehe %PDF-1.4 unten", "application/pdf"), "ein PNG"),
        (("datenblatt.png", PDF, "image/png"), "passt nicht zu ihrem Namen"),
        (("datenblatt", PDF, "application/pdf"), "passt nicht zu ihrem Namen"),
        (("leer.pdf", b"", "application/pdf"), "ist leer"),
    ],
)
def test_a_forged_or_empty_upload_is_refused_by_its_bytes_and_nothing_is_stored(
    api: httpx.Client, store: redis.Redis, upload: tuple[str, bytes, str], message: str
) -> None:
    before = application_keys(store)
    response = submit(api, fields(), upload)
    assert response.status_code == 422, response.text
    assert list(response.json()["fields"]) == ["upload"]
    assert message in response.json()["fields"]["upload"]
    assert application_keys(store) == before


def test_uploads_up_to_5_mb_are_taken_larger_ones_refused_before_they_are_stored(
    api: httpx.Client, store: redis.Redis
) -> None:
    largest = PDF + b"0" * (5 * MiB - len(PDF))
    taken = submit(api, fields(), ("plan.pdf", largest, "application/pdf"))
    assert taken.status_code == 201, taken.text
    assert store.hget(f"bs:application:{{{taken.json()['number']}}}", "upload_size") == str(5 * MiB)

    before = application_keys(store)
    # One byte over: the body is still within the route's limit, the upload is not.
    over = submit(api, fields(), ("plan.pdf", largest + b"0", "application/pdf"))
    assert over.status_code == 413
    assert over.json()["fields"] == {"upload": "Die Datei darf höchstens 5 MB groß sein."}
    # Far over: refused by the body limit while it streams in.
    huge = submit(api, fields(), ("plan.pdf", PDF + b"0" * (8 * MiB), "application/pdf"))
    assert (huge.status_code, huge.json()) == (413, {"error": "too_large"})
    assert application_keys(store) == before


def test_a_declared_oversized_body_is_refused_before_it_is_sent(gateway: Service) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as conn:
        conn.sendall(
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {50 * MiB}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n\r\n".encode()
        )
        answer = conn.recv(4096)  # no byte of the body was sent: the answer comes anyway
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_a_body_that_is_not_a_form_is_refused(api: httpx.Client, store: redis.Redis) -> None:
    before = application_keys(store)
    as_json = api.post(PATH, json=fields())
    assert as_json.status_code == 400 and as_json.json()["error"] == "bad_request"
    cut = api.post(
        PATH,
        content=b'--x\r\nContent-Disposition: form-data; name="first_name"\r\n\r\nLena',
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert cut.status_code in (400, 422), cut.text
    one = ("upload", ("a.pdf", PDF, "application/pdf"))
    two_files = api.post(PATH, data=fields(), files=[one, one])
    assert two_files.status_code == 400
    smuggled = api.post(PATH, data=fields(), files={"first_name": ("a.pdf", PDF, "x/y")})
    assert smuggled.status_code == 400
    assert application_keys(store) == before


async def chatting_citizen(gateway: Service) -> CitizenClient:
    """A citizen whose conversation is stored (its first message; no bot needed for that)."""
    citizen = await CitizenClient.open(gateway.url.replace("http", "ws") + "/ws/chat")
    client_id = await citizen.say("Ich möchte meine Solaranlage anmelden.")
    await citizen.until(lambda f: f.get("type") == "ack" and f.get("client_id") == client_id)
    await citizen.close()
    return citizen


async def submit_async(gateway: Service, data: dict[str, str], token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
        return await client.post(PATH, data=data, files={"upload": NO_FILE},
                                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip


async def test_an_open_chat_is_linked_only_with_its_own_valid_token(
    gateway: Service, redis: Redis
) -> None:
    citizen = await chatting_citizen(gateway)
    linked = await submit_async(gateway, fields(), citizen.token)
    assert linked.status_code == 201, linked.text
    number = linked.json()["number"]
    conversation_id = citizen.session["conversation_id"]
    assert await redis.hget(f"bs:application:{{{number}}}", "conversation_id") == conversation_id

    forged = await submit_async(gateway, fields(), citizen.token[:-4] + "AAAA")
    assert forged.status_code == 201  # a stale or forged token is no reason to lose the form
    stored = await redis.hgetall(f"bs:application:{{{forged.json()['number']}}}")
    assert stored and "conversation_id" not in stored


def test_the_log_holds_no_value_the_citizen_entered(api: httpx.Client, gateway: Service) -> None:
    marker = uuid.uuid4().hex[:10]
    data = fields(last_name=f"Nachname{marker}", street=f"Weg{marker} 1")
    assert submit(api, data).status_code == 201
    assert submit(api, {**data, "email": "kaputt"}).status_code == 422
    time.sleep(0.5)  # the log line is written after the response
    log = gateway.log()
    assert "application_received" in log and "application_invalid" in log
    assert marker not in log and data["email"] not in log


# --- per-client budget -------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited_gateway(service_dir: Path, redis_url: str) -> Iterator[Service]:
    service = start_gateway(
        service_dir, "gateway-applications-limited", redis_url, rasa_port=free_port(),
        env={"ADDRESS_APPLICATION_LIMITS": "3/minute"},
    )  # fmt: skip
    yield service
    service.stop()


def test_applications_are_limited_per_client_before_the_body_is_read(
    limited_gateway: Service, store: redis.Redis
) -> None:
    for key in store.scan_iter(match="bs:limit:*address_application*"):
        store.delete(key)
    before = application_keys(store)
    with httpx.Client(base_url=limited_gateway.url, timeout=30) as api:
        statuses = [submit(api, fields(email="kaputt")).status_code for _ in range(3)]
        assert statuses == [422, 422, 422]  # invalid ones count too: the check comes first
        refused = submit(api, fields())
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert "einigen Minuten" in refused.json()["message"]
    assert application_keys(store) == before


# --- export and erasure (docs/data-protection.md) ------------------------------------------


@pytest.fixture(scope="module")
def supervisor(redis_url: str) -> None:
    done = add_agent(redis_url, "paula", "Paula Brandt", "--skills", "general",
                     "--role", "supervisor")  # fmt: skip
    assert done.returncode == 0, done.stderr


def supervisor_headers(api: httpx.Client) -> dict[str, str]:
    response = api.post("/api/agent/login", json={"username": "paula", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_a_person_export_holds_their_applications_with_the_upload(
    api: httpx.Client, supervisor: None
) -> None:
    data = fields(email=f"Lena.{uuid.uuid4().hex[:6]}@Example.org")
    number = submit(api, data, ("karte.png", PNG, "image/png")).json()["number"]
    other = submit(api, fields()).json()["number"]
    headers = supervisor_headers(api)

    by_email = api.post("/api/admin/person/export", json={"email": data["email"].lower()},
                        headers=headers)  # fmt: skip
    assert by_email.status_code == 200, by_email.text
    [exported] = by_email.json()["applications"]
    assert exported["application_number"] == number
    assert exported["last_name"] == "Schmidt" and exported["power_kwp"] == "9.8"
    assert exported["upload_type"] == "image/png"
    assert base64.b64decode(exported["upload_base64"]) == PNG
    assert other not in by_email.text

    typed = number.lower().replace("-", " ")  # read as forgivingly as case numbers
    by_number = api.post("/api/admin/person/export", json={"application_number": typed},
                         headers=headers)  # fmt: skip
    assert by_number.status_code == 200, by_number.text
    assert [a["application_number"] for a in by_number.json()["applications"]] == [number]
    malformed = api.post("/api/admin/person/export", json={"application_number": "PV-1"},
                         headers=headers)  # fmt: skip
    assert malformed.status_code == 400


def test_erasing_a_person_deletes_their_applications_and_uploads_everywhere(
    api: httpx.Client, store: redis.Redis, supervisor: None
) -> None:
    phone = f"0170 {uuid.uuid4().int % 10_000_000:07d}"
    number = submit(api, fields(phone=phone), ("plan.pdf", PDF, "application/pdf")).json()["number"]
    headers = supervisor_headers(api)
    erased = api.post("/api/admin/person/erase",
                      json={"phone": phone.replace(" ", "/"), "confirm": True},
                      headers=headers)  # fmt: skip
    assert erased.status_code == 200, erased.text
    assert erased.json()["record"]["erased"] == {"applications": 1}
    assert not store.exists(f"bs:application:{{{number}}}", f"bs:application:{{{number}}}:upload")
    gone = api.post("/api/admin/person/export", json={"application_number": number},
                    headers=headers)  # fmt: skip
    assert gone.status_code == 404


async def test_a_citizens_own_erasure_keeps_the_application_but_unlinks_it(
    gateway: Service, redis: Redis
) -> None:
    citizen = await chatting_citizen(gateway)
    number = (await submit_async(gateway, fields(), citizen.token)).json()["number"]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
        bearer = {"Authorization": f"Bearer {citizen.token}"}
        erased = await client.post(
            "/api/conversation/erase", json={"confirm": True}, headers=bearer
        )
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["application_links"] == 1
    kept = await redis.hgetall(f"bs:application:{{{number}}}")
    assert kept["last_name"] == "Schmidt" and "conversation_id" not in kept


# --- the portal's pages --------------------------------------------------------------------


class _Page(HTMLParser):
    """The parts of a page the checks below need."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.inline_scripts = 0
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("input", "select", "textarea"):
            self.controls.append(found)
        elif tag == "label" and found.get("for"):
            self.labels.add(str(found["for"]))
        elif tag == "script":
            self.scripts.append(found)
            self.inline_scripts += "src" not in found
        if any(name.startswith("on") for name in found):
            self.inline_scripts += 1


def parsed(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


WIDGET_TAG = (
    '<script src="/widget.js" data-lang="de" data-title="Bürgerservice Musterstadt" '
    'data-invite-after="20" defer></script>'
)


def test_the_portal_pages_are_served_with_the_page_policy(api: httpx.Client) -> None:
    demo = api.get("/").text
    assert 'href="/portal/photovoltaik">Mehr zur Photovoltaik</a>' in demo
    for path in ("/portal/photovoltaik", "/portal/photovoltaik/antrag"):
        page = api.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src 'self';" in page.headers["content-security-policy"]
        assert WIDGET_TAG in page.text
        assert parsed(page.text).inline_scripts == 0, path  # the CSP would block them
        assert '<link rel="stylesheet" href="/portal/portal.css">' in page.text
    service_page = api.get("/portal/photovoltaik").text
    assert 'href="/portal/photovoltaik/antrag">Zum Antrag</a>' in service_page
    css = api.get("/portal/portal.css")
    assert css.headers["content-type"].startswith("text/css")
    script = api.get("/portal/pv-form.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert api.get("/portal/").status_code == 404  # single files, no directory listing


def test_every_form_control_has_a_stable_name_an_id_and_a_label(api: httpx.Client) -> None:
    page = parsed(api.get("/portal/photovoltaik/antrag").text)
    names = {str(control["name"]) for control in page.controls}
    assert names == {
        "first_name", "last_name", "email", "phone", "street", "postal_code", "city",
        "installation_type", "power_kwp", "listed_building", "grid_operator", "upload", "confirm",
    }  # fmt: skip
    for control in page.controls:
        assert control.get("id") and control["id"] in page.labels, control
    power = next(c for c in page.controls if c["name"] == "power_kwp")
    # Text, not type=number: Chromium drops the comma of "9,8" there and reads 98.
    assert power["type"] == "text" and power["inputmode"] == "decimal"
    html = api.get("/portal/photovoltaik/antrag").text
    assert '<label class="field" for="power_kwp">Leistung in kWp</label>' in html
    # Every summary cell that shows what the citizen entered is masked for co-browsing.
    cells = re.findall(r"<dd[^>]*>", html)
    assert len(cells) == 12 and all('class="cobrowse-mask"' in cell for cell in cells)


def test_the_form_script_and_the_gateway_share_their_messages() -> None:
    """The page shows before sending what the gateway would answer: the same German text."""
    from handover.applications import pv_form

    script = (ROOT / "widget" / "portal" / "pv-form.js").read_text()
    messages: dict[str, Any] = {**pv_form.MESSAGES, **pv_form.REQUIRED}
    for key, message in messages.items():
        assert message in script, key
