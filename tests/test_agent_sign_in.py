"""Agents sign in with the city's identity provider: a real OpenID provider (npm's certified
`oidc-provider`), two gateway replicas on one Redis, the console in Chromium."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from joserfc import jwt
from joserfc.jwk import RSAKey
from playwright.async_api import Browser, Page, expect
from websockets.exceptions import ConnectionClosed

from handover.agents.identity_provider import BACKCHANNEL_LOGOUT_EVENT, IdentityError
from handover.agents.sign_in import agent_from_claims
from handover.settings import Settings
from tests.agent_client import AgentClient
from tests.frame_socket import FrameSocket
from tests.services import ROOT, Service, free_port, http_ok, start, start_gateway, start_redis
from tests.test_widget_browser import browser  # noqa: F401

OIDC_PROVIDER = ROOT / ".cache" / "npm" / "node_modules" / "oidc-provider" / "lib" / "index.js"
CLIENT_ID = "buergerservice-konsole"
CLIENT_SECRET = "a-client-secret-for-the-tests-only"
ACCOUNTS = {
    "maria": {"name": "Maria Huber", "preferred_username": "maria", "email": "maria@stadt.example",
              "roles": ["agent", "supervisor"],
              "groups": ["/buergerservice/kfz", "/buergerservice/general", "/andere/gruppe"]},
    "tom": {"name": "Tom Weber", "preferred_username": "tom", "roles": ["agent"],
            "groups": ["/buergerservice/bauamt"]},
    "eve": {"name": "Eve Extern", "preferred_username": "eve", "roles": ["gast"]},
}  # fmt: skip


@dataclass
class Deployment:
    issuer: str
    key: RSAKey
    a: Service
    b: Service
    redis: redis.Redis


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if shutil.which("node") is None or not OIDC_PROVIDER.exists():
        pytest.fail("node or npm's oidc-provider is missing: `make test` installs it")
    tmp = tmp_path_factory.mktemp("oidc")
    store = start_redis(tmp)
    gateway_port, provider_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{provider_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
    config = {
        "issuer": issuer, "port": provider_port, "module": str(OIDC_PROVIDER),
        "jwk": key.as_dict(private=True), "cookie_key": uuid.uuid4().hex, "accounts": ACCOUNTS,
        "clients": [{
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uris": [f"{gateway}/api/agent/oidc/callback"],
            "post_logout_redirect_uris": [f"{gateway}/agent"],
            "backchannel_logout_uri": f"{gateway}/api/agent/oidc/backchannel-logout",
            "backchannel_logout_session_required": True,
            "grant_types": ["authorization_code"], "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }],
    }  # fmt: skip
    provider = start(
        ["node", str(ROOT / "tests" / "oidc_provider" / "provider.mjs")], provider_port,
        "oidc-provider", tmp, env={"OIDC_PROVIDER_CONFIG": json.dumps(config)},
    )  # fmt: skip
    provider.wait_ready(lambda: http_ok(f"{issuer}/.well-known/openid-configuration"), 30, "OIDC")
    env = {
        "OIDC_ISSUER": issuer, "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_SCOPES": "openid profile email roles", "OIDC_SKILL_PREFIX": "/buergerservice/",
        "AGENT_TOKEN_SECRET": "shared-by-both-replicas",
    }  # fmt: skip
    redis_url = f"redis://127.0.0.1:{store.port}/0"
    a = start_gateway(tmp, "gateway-a", redis_url, free_port(), env=env, port=gateway_port)
    b = start_gateway(tmp, "gateway-b", redis_url, free_port(), env=env)
    client = redis.Redis(port=store.port, decode_responses=True)
    yield Deployment(issuer, key, a, b, client)
    client.close()
    for service in (a, b, provider, store):
        service.stop()


@pytest.fixture
async def console(browser: Browser, deployment: Deployment) -> AsyncIterator[Page]:  # noqa: F811
    context = await browser.new_context(locale="de-DE")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.visited = urls  # type: ignore[attr-defined]
    await page.goto(deployment.a.url + "/agent")
    yield page
    await context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


async def sign_in_at_provider(page: Page, login: str) -> None:
    await page.get_by_test_id("login-oidc").click()
    # The provider's own sign-in page (development interactions: any password).
    await page.locator("input[name=login]").fill(login)
    await page.locator("input[name=password]").fill("egal")
    await page.locator("button[type=submit]").click()


async def console_token(page: Page) -> str:
    token = await page.evaluate("sessionStorage.getItem('buergerservice-agent:token')")
    assert token, "the console holds no token"
    return str(token)


async def test_maria_signs_in_with_her_city_account_and_is_a_supervisor(
    console: Page, deployment: Deployment
) -> None:
    await sign_in_at_provider(console, "maria")
    await expect(console.locator(".ac-who")).to_contain_text("Maria Huber", timeout=15_000)
    await expect(console.locator(".ac-who")).to_contain_text("Leitung")
    token = await console_token(console)
    assert not any(token in url for url in console.visited), "the token travelled in a URL"  # type: ignore[attr-defined]
    account = deployment.redis.hgetall("bs:agent:maria")
    assert account["role"] == "supervisor"
    assert account["skills"] == "kfz,general"  # only the configured group paths, prefix cut
    assert "password" not in account  # nobody can use a password for this account
    async with httpx.AsyncClient() as client:
        refused = await client.post(
            f"{deployment.a.url}/api/agent/login", json={"username": "maria", "password": "x" * 12}
        )
    assert refused.status_code == 401
    # The one-time result code is spent: collecting again gets nothing.
    assert (
        await console.evaluate(
            "fetch('/api/agent/oidc/session', {method: 'POST'}).then(r => r.status)"
        )
        == 204
    )


async def test_an_agent_gets_the_skills_of_his_groups_and_a_guest_is_refused(
    browser: Browser,  # noqa: F811
    deployment: Deployment,
) -> None:
    for login, expected in (("tom", "Mitarbeiter/in"), ("eve", None)):
        context = await browser.new_context(locale="de-DE")
        page = await context.new_page()
        await page.goto(deployment.a.url + "/agent")
        await sign_in_at_provider(page, login)
        if expected:
            await expect(page.locator(".ac-who")).to_contain_text(expected, timeout=15_000)
            assert deployment.redis.hget("bs:agent:tom", "skills") == "bauamt"
        else:
            await expect(
                page.get_by_role("heading", name="Anmeldung nicht möglich")
            ).to_be_visible()
            await expect(page.get_by_text("nicht freigegeben")).to_be_visible()
            assert not deployment.redis.exists("bs:agent:eve")
        await context.close()


async def assert_closed_unauthorized(socket: FrameSocket) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        await socket.until(lambda frame: False, timeout=15)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_ending_the_session_at_the_provider_closes_the_agent_sockets_on_every_replica(
    console: Page, deployment: Deployment
) -> None:
    """As when the city's IT ends Maria's session at the identity provider: only the
    provider's back-channel logout tells the gateway."""
    await sign_in_at_provider(console, "maria")
    await expect(console.locator(".ac-who")).to_contain_text("Maria Huber", timeout=15_000)
    token = await console_token(console)
    on_b = await AgentClient.with_token(deployment.b.url, token)

    provider_page = await console.context.new_page()
    await provider_page.goto(f"{deployment.issuer}/session/end?client_id={CLIENT_ID}")
    await provider_page.locator("button[name=logout]").click()
    await assert_closed_unauthorized(on_b)  # replica B, told through Redis
    # Replica A closed the console's socket: it is back at the sign-in, and says why.
    await expect(console.get_by_test_id("login-oidc")).to_be_visible(timeout=15_000)
    async with httpx.AsyncClient() as client:
        again = await client.post(
            f"{deployment.b.url}/api/agent/logout", headers={"Authorization": f"Bearer {token}"}
        )
    assert again.status_code == 401


async def test_logging_out_in_the_console_ends_the_session_here_and_at_the_provider(
    console: Page, deployment: Deployment
) -> None:
    await sign_in_at_provider(console, "tom")
    await expect(console.locator(".ac-who")).to_contain_text("Tom Weber", timeout=15_000)
    token = await console_token(console)
    on_b = await AgentClient.with_token(deployment.b.url, token)
    await console.get_by_role("button", name="Abmelden").click()
    await assert_closed_unauthorized(on_b)
    # The provider asks whether to end its session too, then sends the browser back.
    await console.locator("button[name=logout]").click()
    await expect(console.get_by_test_id("login-oidc")).to_be_visible(timeout=15_000)
    assert console.url == deployment.a.url + "/agent"
    # Signing in again goes through the provider's login, not a lingering session.
    await console.get_by_test_id("login-oidc").click()
    await expect(console.locator("input[name=login]")).to_be_visible()


def logout_token(deployment: Deployment, key: RSAKey | None = None, **claims: Any) -> str:
    body: dict[str, Any] = {
        "iss": deployment.issuer, "aud": CLIENT_ID, "iat": int(time.time()),
        "jti": uuid.uuid4().hex, "sid": "some-session",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }  # fmt: skip
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    header = {"alg": "RS256", "kid": "test-key", "typ": "logout+jwt"}
    return jwt.encode(header, body, key or deployment.key)


async def test_forged_malformed_and_replayed_logout_tokens_are_refused(
    deployment: Deployment,
) -> None:
    url = f"{deployment.a.url}/api/agent/oidc/backchannel-logout"
    stranger = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
    bad = {
        "forged signature": logout_token(deployment, key=stranger),
        "another audience": logout_token(deployment, aud="someone-else"),
        "another issuer": logout_token(deployment, iss="http://evil.example"),
        "no logout event": logout_token(deployment, events={"other": {}}),
        "with a nonce": logout_token(deployment, nonce="n"),
        "too old": logout_token(deployment, iat=int(time.time()) - 3600),
        "names nobody": logout_token(deployment, sid=None),
        "not a JWT": "not.a.jwt",
    }
    async with httpx.AsyncClient() as client:
        for reason, token in bad.items():
            response = await client.post(url, data={"logout_token": token})
            assert response.status_code == 400, reason
        assert (await client.post(url, data={})).status_code == 400
        huge = await client.post(url, data={"logout_token": "x" * 100_000})
        assert huge.status_code == 413  # the gateway's body limit, before any parsing
        good = logout_token(deployment)
        assert (await client.post(url, data={"logout_token": good})).status_code == 200
        assert (await client.post(url, data={"logout_token": good})).status_code == 400  # replay
    assert deployment.redis.exists("bs:agent-session-ended:idp:some-session")


async def test_a_callback_without_the_browser_that_started_the_login_is_refused(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient() as client:
        started = await client.get(f"{deployment.a.url}/api/agent/oidc/login")
        assert started.status_code == 303
        location = started.headers["location"]
        assert location.startswith(deployment.issuer)
        query = httpx.URL(location).params
        assert query["code_challenge_method"] == "S256" and query["code_challenge"]
        state = query["state"]
    # Another browser (no binding cookie) brings the state back: a login CSRF.
    async with httpx.AsyncClient() as other:
        forged = await other.get(
            f"{deployment.a.url}/api/agent/oidc/callback", params={"state": state, "code": "x"}
        )
        assert forged.status_code == 403
        assert "Anmeldung nicht möglich" in forged.text
        unknown = await other.get(
            f"{deployment.a.url}/api/agent/oidc/callback", params={"state": "nope", "code": "x"}
        )
        assert unknown.status_code == 403
        assert (await other.post(f"{deployment.a.url}/api/agent/logout")).status_code == 401
    assert not deployment.redis.exists(f"bs:oidc:login:{state}")  # spent, even by a forger


def test_roles_and_skills_come_from_configurable_claims() -> None:
    settings = Settings(
        oidc_role_claim="realm_access.roles", oidc_skills_claim="groups",
        oidc_skill_prefix="/bs/", oidc_supervisor_roles=["leitung"], oidc_agent_roles=["bs"],
    )  # fmt: skip
    claims = {
        "preferred_username": "Anna.K", "name": "Anna K.",
        "realm_access": {"roles": ["bs", "leitung"]}, "groups": ["/bs/kfz", "/x/y", "/bs/Bad Name"],
    }  # fmt: skip
    who = agent_from_claims(claims, settings)
    assert (who.username, who.name, who.role, who.skills) == ("anna.k", "Anna K.", "supervisor",
                                                              ("kfz",))  # fmt: skip
    plain = {**claims, "realm_access": {"roles": ["bs"]}}
    assert agent_from_claims(plain, settings).role == "agent"
    with pytest.raises(IdentityError):
        agent_from_claims({**claims, "realm_access": {"roles": []}}, settings)
    with pytest.raises(IdentityError):
        agent_from_claims({**claims, "preferred_username": "not a user name!"}, settings)
    anyone = Settings(oidc_agent_roles=[])
    assert agent_from_claims({"preferred_username": "max"}, anyone).role == "agent"
