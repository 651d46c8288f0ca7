"""Agent sign-in with the city's identity provider (OpenID Connect, authorization code + PKCE).

The browser never carries a credential in a URL: the login's state, nonce and PKCE verifier
wait in Redis under the `state` (one use, ten minutes), bound to an HttpOnly cookie of the
browser that started the login, and the console collects its agent token from a one-time
code in another HttpOnly cookie. Roles and skills come from configurable token claims; the
account is (re)written from them at every sign-in, so the identity provider stays the source of
truth. A back-channel logout ends the provider session's tokens on every replica.
"""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import structlog
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from redis.asyncio import Redis

from handover import keys
from handover.agents.auth import AgentAuth, bearer_token
from handover.agents.directory import SKILL, USERNAME, AgentDirectory, AgentInputError, Role
from handover.agents.identity_provider import IdentityError, IdentityProvider
from handover.settings import Settings

log = structlog.get_logger(__name__)

LOGIN_TTL_S = 600
RESULT_TTL_S = 60
LOGIN_COOKIE = "bs_oidc_login"
RESULT_COOKIE = "bs_oidc_result"
COOKIE_PATH = "/api/agent/oidc"
MAX_LOGOUT_BODY = 16_384


def _key(kind: str, value: str) -> str:
    return keys.oidc(kind, value)


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def claim_values(claims: dict[str, Any], path: str) -> list[str]:
    """The strings at a dotted claim path ("realm_access.roles", "groups"); [] if absent.

    A string is a space-separated list, as OAuth writes scopes."""
    value = _claim(claims, path)
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


@dataclass(frozen=True, slots=True)
class SignedInAgent:
    username: str
    name: str
    role: Role
    skills: tuple[str, ...]


def agent_from_claims(claims: dict[str, Any], settings: Settings) -> SignedInAgent:
    """Who the provider says this is, and what they may do here; IdentityError if nothing."""
    name_claim = _claim(claims, settings.oidc_username_claim)
    username = name_claim.lower() if isinstance(name_claim, str) else ""
    if not USERNAME.match(username):
        raise IdentityError("Ihr Benutzername beim Identitätsanbieter ist hier nicht verwendbar.")
    roles = set(claim_values(claims, settings.oidc_role_claim))
    role: Role
    if roles & set(settings.oidc_supervisor_roles):
        role = "supervisor"
    elif not settings.oidc_agent_roles or roles & set(settings.oidc_agent_roles):
        role = "agent"
    else:
        raise IdentityError("Ihr Konto ist für die Konsole des Bürgerservice nicht freigegeben.")
    prefix = settings.oidc_skill_prefix
    skills = []
    for value in claim_values(claims, settings.oidc_skills_claim):
        if prefix and not value.startswith(prefix):
            continue
        skill = value[len(prefix) :].strip("/").lower()
        if SKILL.match(skill) and skill not in skills:
            skills.append(skill)
    display = _claim(claims, settings.oidc_name_claim)
    name = display.strip()[:120] if isinstance(display, str) and display.strip() else username
    return SignedInAgent(username, name, role, tuple(skills))


class AgentSignIn:
    def __init__(
        self,
        redis: Redis,
        directory: AgentDirectory,
        auth: AgentAuth,
        provider: IdentityProvider,
        settings: Settings,
    ) -> None:
        self._redis: Any = redis
        self._directory = directory
        self._auth = auth
        self.provider = provider
        self._settings = settings

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self._settings.oidc_client_id,
            client_secret=self._settings.oidc_client_secret,
            scope=self._settings.oidc_scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",
            timeout=10.0,
        )

    async def start(self, redirect_uri: str) -> tuple[str, str]:
        """The provider's authorization URL and the browser binding to set as a cookie."""
        metadata = await self.provider.metadata()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(48)
        binding = secrets.token_urlsafe(32)
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                metadata.authorization_endpoint, state=state, code_verifier=verifier, nonce=nonce
            )
        await self._redis.set(
            _key("login", state),
            json.dumps({"nonce": nonce, "verifier": verifier, "binding": binding}),
            ex=LOGIN_TTL_S,
        )
        return url, binding

    async def finish(self, state: str, code: str, binding: str, redirect_uri: str) -> str:
        """Exchange the code, check the ID token, write the account; a one-time result code."""
        raw = await self._redis.getdel(_key("login", state)) if state else None
        pending = json.loads(raw) if raw else None
        if not pending or not secrets.compare_digest(pending["binding"], binding or ""):
            raise IdentityError("Die Anmeldung ist abgelaufen oder wurde in einem anderen "
                                "Browser begonnen. Bitte melden Sie sich erneut an.")  # fmt: skip
        metadata = await self.provider.metadata()
        async with self._client(redirect_uri) as client:
            try:
                token = await client.fetch_token(
                    metadata.token_endpoint, code=code, code_verifier=pending["verifier"]
                )
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                raise IdentityError("Der Identitätsanbieter hat die Anmeldung abgelehnt.") from exc
            except Exception as exc:  # Authlib's OAuthError and friends
                raise IdentityError("Der Identitätsanbieter hat die Anmeldung abgelehnt.") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise IdentityError("Der Identitätsanbieter hat kein ID-Token geschickt.")
        claims = await self.provider.id_token_claims(id_token, pending["nonce"])
        if isinstance(token.get("access_token"), str):
            userinfo = await self.provider.userinfo(token["access_token"])
            if userinfo.get("sub") == claims["sub"]:
                claims = {**userinfo, **claims}
        who = agent_from_claims(claims, self._settings)
        try:
            agent = await self._directory.save_external(
                username=who.username, name=who.name, role=who.role, skills=who.skills,
                subject=f"{metadata.issuer}|{claims['sub']}",
            )  # fmt: skip
        except AgentInputError as exc:
            raise IdentityError("Ihr Benutzername gehört hier schon einem anderen Konto.") from exc
        sid = claims.get("sid") if isinstance(claims.get("sid"), str) else None
        agent_token = await self._auth.issue(agent, provider_session=sid)
        ttl = self._settings.agent_token_ttl_s
        # What the provider's back-channel logout names (a session, or only the person).
        if sid:
            await self._redis.set(_key("session", sid), agent.username, ex=ttl)
        await self._redis.set(_key("subject", str(claims["sub"])), agent.username, ex=ttl)
        result = secrets.token_urlsafe(32)
        await self._redis.set(
            _key("result", result),
            json.dumps({"token": agent_token, "agent": agent.public()}),
            ex=RESULT_TTL_S,
        )
        log.info("agent_signed_in", agent=agent.username, role=agent.role, via="oidc")
        return result

    async def collect(self, result: str) -> dict[str, Any] | None:
        raw = await self._redis.getdel(_key("result", result)) if result else None
        return json.loads(raw) if raw else None

    async def back_channel_logout(self, logout_token: str) -> int:
        """End what the provider's logout names; the number of sessions/agents ended."""
        claims = await self.provider.logout_token_claims(logout_token)
        fresh = await self._redis.set(
            _key("logout-jti", str(claims["jti"])), 1, nx=True, ex=2 * 300
        )
        if not fresh:
            raise IdentityError("logout token: replayed")
        ended = 0
        sid, sub = claims.get("sid"), claims.get("sub")
        if isinstance(sid, str):
            username = await self._redis.get(_key("session", sid))
            await self._auth.end_sessions(f"idp:{sid}", username or "")
            ended += 1
        elif isinstance(sub, str):
            username = await self._redis.get(_key("subject", sub))
            if username and await self._directory.revoke_tokens(username):
                ended += 1
        log.info("agent_back_channel_logout", ended=ended)
        return ended

    async def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """Where the console sends the browser to end the provider session (no token in it)."""
        endpoint = (await self.provider.metadata()).end_session_endpoint
        if not endpoint:
            return None
        query = httpx.QueryParams(
            client_id=self._settings.oidc_client_id,
            post_logout_redirect_uri=post_logout_redirect_uri,
        )
        return f"{endpoint}?{query}"


def _redirect_uri(request: Request, settings: Settings) -> str:
    return settings.oidc_redirect_url or str(request.url_for("oidc_callback"))


def _console_url(request: Request, settings: Settings) -> str:
    if settings.oidc_redirect_url:
        return settings.oidc_redirect_url.split("/api/", 1)[0] + "/agent"
    return str(request.url_for("agent_console"))


def _problem_page(message: str, status: int) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="de"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Anmeldung nicht möglich – Bürgerservice</title></head><body><main>"
        "<h1>Anmeldung nicht möglich</h1>"
        f"<p>{html.escape(message)}</p>"
        '<p><a href="/agent">Zurück zur Anmeldung</a></p></main></body></html>'
    )
    return HTMLResponse(body, status_code=status)


def add_agent_sign_in(app: FastAPI, settings: Settings) -> None:
    """The OIDC routes; without OIDC_ISSUER only the console's question is answered."""

    def sign_in(request: Request) -> AgentSignIn:
        made: AgentSignIn = request.app.state.agent_sign_in
        return made

    @app.get("/api/agent/oidc/config")
    async def oidc_config() -> JSONResponse:
        return JSONResponse({"enabled": settings.oidc_enabled, "label": settings.oidc_label})

    @app.post("/api/agent/logout")
    async def agent_logout(request: Request) -> JSONResponse:
        """End this console's session on every replica; for an OIDC session, also the URL
        that ends it at the provider (the console goes there)."""
        auth: AgentAuth = request.app.state.auth
        token = bearer_token(request.headers.get("authorization"))
        session = await auth.session_for(token) if 0 < len(token) <= 512 else None
        if session is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        await auth.end_session(session)  # its sockets close on every replica
        url = None
        if settings.oidc_enabled and session.session.startswith("idp:"):
            url = await sign_in(request).end_session_url(_console_url(request, settings))
        return JSONResponse({"end_session_url": url})

    if not settings.oidc_enabled:
        return

    secure = settings.oidc_redirect_url.startswith("https://")

    def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="lax",
            secure=secure,
        )  # fmt: skip

    @app.get("/api/agent/oidc/login")
    async def oidc_login(request: Request) -> Response:
        try:
            url, binding = await sign_in(request).start(_redirect_uri(request, settings))
        except (httpx.HTTPError, IdentityError, KeyError, ValueError) as exc:
            log.warning("oidc_provider_unreachable", error=type(exc).__name__)
            return _problem_page("Der Identitätsanbieter ist gerade nicht erreichbar.", 503)
        response = RedirectResponse(url, status_code=303)
        set_cookie(response, LOGIN_COOKIE, binding, LOGIN_TTL_S)
        return response

    @app.get("/api/agent/oidc/callback", name="oidc_callback")
    async def oidc_callback(request: Request) -> Response:
        query = request.query_params
        if query.get("error"):
            return _problem_page("Die Anmeldung wurde beim Identitätsanbieter abgebrochen.", 400)
        state, code = query.get("state", "")[:128], query.get("code", "")[:2048]
        try:
            result = await sign_in(request).finish(
                state, code, request.cookies.get(LOGIN_COOKIE, ""), _redirect_uri(request, settings)
            )
        except IdentityError as exc:
            log.info("oidc_sign_in_refused", reason=str(exc)[:120])
            return _problem_page(str(exc), 403)
        except httpx.HTTPError as exc:
            log.warning("oidc_provider_unreachable", error=type(exc).__name__)
            return _problem_page("Der Identitätsanbieter ist gerade nicht erreichbar.", 503)
        response = RedirectResponse(_console_url(request, settings), status_code=303)
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        set_cookie(response, RESULT_COOKIE, result, RESULT_TTL_S)
        return response

    @app.post("/api/agent/oidc/session")
    async def oidc_session(request: Request) -> Response:
        """The console collects the token of a sign-in that just finished, once."""
        data = await sign_in(request).collect(request.cookies.get(RESULT_COOKIE, "")[:128])
        response: Response = JSONResponse(data) if data else Response(status_code=204)
        response.delete_cookie(RESULT_COOKIE, path=COOKIE_PATH)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/api/agent/oidc/backchannel-logout")
    async def oidc_back_channel_logout(request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_LOGOUT_BODY:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        # A form post (OIDC Back-Channel Logout 1.0, 2.5) of one field: parsed here rather
        # than with a multipart library, and never more than MAX_LOGOUT_BODY bytes.
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        fields = parse_qs((await request.body()).decode("ascii", "replace"), max_num_fields=8)
        token = (fields.get("logout_token") or [""])[0]
        if not token:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        try:
            await sign_in(request).back_channel_logout(token)
        except IdentityError as exc:
            log.info("oidc_logout_refused", reason=str(exc)[:120])
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        return Response(status_code=200, headers={"Cache-Control": "no-store"})


def make_agent_sign_in(
    redis: Redis, directory: AgentDirectory, auth: AgentAuth, settings: Settings
) -> tuple[AgentSignIn, httpx.AsyncClient] | None:
    if not settings.oidc_enabled:
        return None
    http = httpx.AsyncClient(timeout=10.0)
    return AgentSignIn(redis, directory, auth, IdentityProvider(settings, http), settings), http
