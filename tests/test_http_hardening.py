"""HTTP hardening of the gateway, against real gateway processes and a real Redis.

Streaming body limits (a huge body is refused while it arrives, without the
gateway's memory growing), trusted proxies (X-Forwarded-For is believed only
from TRUSTED_PROXIES) and the security headers of every response.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.services import CASE_API_TOKEN, Service, free_port, start_gateway

MAX_FAILURES = 5  # the test gateways' CASE_LOOKUP_MAX_FAILURES
LIMITS = {"CASE_LOOKUP_MAX_FAILURES": str(MAX_FAILURES)}
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def gateway(service_dir: Path, redis_url: str) -> Iterator[Service]:
    """A gateway as `make run` starts it (no proxy configured); no Rasa behind it."""
    service = start_gateway(
        service_dir, "gateway-http", redis_url, rasa_port=free_port(), env=LIMITS
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def proxied_gateway(service_dir: Path, redis_url: str) -> Iterator[Service]:
    """A gateway behind a reverse proxy on loopback (TRUSTED_PROXIES=127.0.0.1)."""
    service = start_gateway(
        service_dir, "gateway-proxied", redis_url, rasa_port=free_port(),
        env={"TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8", **LIMITS},
    )  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(autouse=True)
def fresh_lookup_counters(store: redis.Redis) -> None:
    for key in store.scan_iter(match="bs:case-lookups:*"):
        store.delete(key)


def rss_kb(service: Service) -> int:
    status = Path(f"/proc/{service.process.pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert found, status
    return int(found.group(1))


def read_response(conn: socket.socket, timeout: float = 10.0) -> tuple[int, bytes]:
    """Status and raw bytes (head and body) of the first response on `conn`."""
    conn.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head, separator, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", head, re.I)
        if separator and length and len(body) >= int(length.group(1)):
            break
        try:
            chunk = conn.recv(65536)
        except ConnectionError:
            break
        if not chunk:
            break
        data += chunk
    found = re.match(rb"HTTP/1\.1 (\d{3})", data)
    assert found, data[:200]
    return int(found.group(1)), data


def stream_chunked(service: Service, path: str, total: int) -> tuple[int, int, bytes]:
    """POST `total` bytes as a chunked body, stopping once the gateway answers or stops
    reading. Returns the bytes sent, the status and the response."""
    conn = socket.create_connection(("127.0.0.1", service.port))
    try:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n"
            f"Authorization: Bearer {CASE_API_TOKEN}\r\n"  # the case API's own caller
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
        conn.settimeout(2.0)
        sent = 0
        try:
            while sent < total:
                conn.sendall(chunk)
                sent += CHUNK
                conn.setblocking(False)
                try:
                    if conn.recv(1, socket.MSG_PEEK):
                        break  # the answer came while the body was still arriving
                except BlockingIOError:
                    pass
                finally:
                    conn.settimeout(2.0)
        except (TimeoutError, ConnectionError):
            pass  # the gateway stopped reading or closed: it answered (below)
        status, response = read_response(conn)
        return sent, status, response
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/api/cases/lookup", "/api/cases", "/api/agent/login"])
def test_a_huge_chunked_body_is_refused_while_it_arrives_and_costs_no_memory(
    gateway: Service, store: redis.Redis, path: str
) -> None:
    cases_before = len(list(store.scan_iter(match="bs:case:{*}")))
    before = rss_kb(gateway)
    sent, status, response = stream_chunked(gateway, path, 200 * 1024 * 1024)
    assert status == 413, response[:300]
    assert response.endswith(b'{"error":"too_large"}')
    assert b"connection: close" in response.lower()
    # Refused within the first megabytes, not after reading 200 MB.
    assert sent < 8 * 1024 * 1024, sent
    assert rss_kb(gateway) - before < 4 * 1024
    assert len(list(store.scan_iter(match="bs:case:{*}"))) == cases_before  # nothing stored
    assert httpx.get(f"{gateway.url}/healthz", timeout=5).status_code == 200


def test_a_declared_length_above_the_limit_is_refused_before_any_body(gateway: Service) -> None:
    conn = socket.create_connection(("127.0.0.1", gateway.port))
    try:
        conn.sendall(
            f"POST /api/cases/lookup HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n".encode()
        )
        status, response = read_response(conn, timeout=5)  # no body sent at all
    finally:
        conn.close()
    assert status == 413 and response.endswith(b'{"error":"too_large"}')


def test_a_content_length_lie_does_not_smuggle_a_big_body_in(gateway: Service) -> None:
    """A small declared length followed by megabytes: only the declared bytes are the body."""
    before = rss_kb(gateway)
    conn = socket.create_connection(("127.0.0.1", gateway.port))
    try:
        conn.sendall(
            f"POST /api/cases/lookup HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".encode()
        )
        conn.settimeout(2.0)
        try:
            for _ in range(128):  # 8 MB of what the parser takes for a next request
                conn.sendall(b"y" * CHUNK)
        except (TimeoutError, ConnectionError):
            pass
        status, response = read_response(conn)
    finally:
        conn.close()
    # The declared two bytes are the body; the rest is refused as a malformed next request
    # (uvicorn may say so before the first answer). Nothing of it is buffered.
    assert status in (400, 404), response[:300]
    assert rss_kb(gateway) - before < 4 * 1024
    assert httpx.get(f"{gateway.url}/healthz", timeout=5).status_code == 200


def test_routes_have_limits_of_their_own(gateway: Service) -> None:
    padding = "x" * 3000  # above the look-up's and login's 2 KiB, below the default 16 KiB
    with httpx.Client(base_url=gateway.url, timeout=10) as api:
        lookup = api.post("/api/cases/lookup", json={"case_number": "MM-2026-1", "p": padding})
        assert (lookup.status_code, lookup.json()) == (413, {"error": "too_large"})
        login = api.post("/api/agent/login", json={"username": padding, "password": "x"})
        assert login.status_code == 413
        report = {"category": "muell", "location": "Stadtpark", "description": padding[:1500],
                  "p": padding}  # fmt: skip
        created = api.post(
            "/api/cases", json=report, headers={"Authorization": f"Bearer {CASE_API_TOKEN}"}
        )
        assert created.status_code == 201, created.text
        too_big = api.post(
            "/api/cases",
            json={**report, "p": "x" * 17_000},
            headers={"Authorization": f"Bearer {CASE_API_TOKEN}"},
        )
        assert (too_big.status_code, too_big.json()) == (413, {"error": "too_large"})


def failed_lookups_from(service: Service, forwarded_for: list[str]) -> list[int]:
    with httpx.Client(base_url=service.url, timeout=10) as api:
        return [
            api.post(
                "/api/cases/lookup",
                json={"case_number": f"MM-1999-{n:06d}", "postal_code": "80331"},
                headers={"X-Forwarded-For": address},
            ).status_code
            for n, address in enumerate(forwarded_for)
        ]


def test_a_forged_forwarded_for_from_loopback_does_not_change_the_counted_address(
    gateway: Service,
) -> None:
    addresses = [f"203.0.113.{n}" for n in range(MAX_FAILURES + 1)]
    statuses = failed_lookups_from(gateway, addresses)
    # Every look-up counted under the real peer, 127.0.0.1, whatever the header claims.
    assert statuses == [404] * MAX_FAILURES + [429]


def test_a_configured_proxys_forwarded_for_is_the_counted_address(
    proxied_gateway: Service,
) -> None:
    addresses = [f"198.51.100.{n}" for n in range(MAX_FAILURES + 2)]
    assert failed_lookups_from(proxied_gateway, addresses) == [404] * len(addresses)
    repeated = failed_lookups_from(proxied_gateway, ["192.0.2.7"] * (MAX_FAILURES + 1))
    assert repeated == [404] * MAX_FAILURES + [429]


def test_every_response_carries_the_security_headers(gateway: Service) -> None:
    origin = f"ws://127.0.0.1:{gateway.port}"
    with httpx.Client(base_url=gateway.url, timeout=10) as api:
        responses = {
            "/": api.get("/"),
            "/agent": api.get("/agent"),
            "/widget.js": api.get("/widget.js"),
            "/healthz": api.get("/healthz"),
            "/metrics": api.get("/metrics"),
            "/nowhere": api.get("/nowhere"),
            "lookup": api.post("/api/cases/lookup", json={}),
            "413": api.post("/api/cases/lookup", content=b"x" * 5000),
        }
    for name, response in responses.items():
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["x-frame-options"] == "DENY", name
        assert "frame-ancestors 'none'" in headers["content-security-policy"], name
        assert "strict-transport-security" not in headers, name  # plain HTTP
    for page in ("/", "/agent"):
        policy = responses[page].headers["content-security-policy"]
        connect = re.search(r"connect-src ([^;]+)", policy)
        assert connect and connect.group(1).split() == ["'self'", origin], policy
        assert "script-src 'self'" in policy and "'unsafe-eval'" not in policy
    assert responses["/healthz"].headers["content-security-policy"].startswith("default-src 'none'")


def test_a_page_served_over_https_allows_only_its_own_wss_origin(
    gateway: Service, proxied_gateway: Service
) -> None:
    behind_tls = httpx.get(
        f"{proxied_gateway.url}/",
        headers={"Host": "chat.example.de", "X-Forwarded-Proto": "https",
                 "X-Forwarded-For": "198.51.100.9"},
        timeout=10,
    )  # fmt: skip
    policy = behind_tls.headers["content-security-policy"]
    assert re.search(r"connect-src 'self' wss://chat\.example\.de;", policy), policy
    assert behind_tls.headers["strict-transport-security"].startswith("max-age=")
    # A forged X-Forwarded-Proto from an untrusted peer changes nothing.
    forged = httpx.get(f"{gateway.url}/", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert "wss://" not in forged.headers["content-security-policy"]
    assert "strict-transport-security" not in forged.headers
    # A Host that is no host name is not put into the policy.
    odd = httpx.get(f"{gateway.url}/", headers={"Host": "evil.example; script-src *"}, timeout=10)
    assert re.search(r"connect-src 'self';", odd.headers["content-security-policy"])


def test_only_the_built_co_browse_scripts_are_served(gateway: Service) -> None:
    """`/cobrowse/<name>` serves the three files of `make cobrowse`, nothing else of the tree."""
    with httpx.Client(base_url=gateway.url, timeout=10) as api:
        script = api.get("/cobrowse/citizen.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "BuergerserviceCobrowse" in script.text
        assert api.get("/cobrowse/console.css").headers["content-type"].startswith("text/css")
        for other in ("/cobrowse/chat-widget.js", "/cobrowse/..%2Fdemo.html",
                      "/cobrowse/citizen.js.map", "/cobrowse/"):  # fmt: skip
            assert api.get(other).status_code == 404, other
