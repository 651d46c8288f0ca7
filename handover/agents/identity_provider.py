"""The city's OpenID provider as the gateway sees it: discovery, signing keys, token checks.

The protocol is Authlib's (authorization code with PKCE, token exchange) and joserfc's
(JWS/JWT validation); this module only fetches and caches what they need, so every gateway
replica checks ID tokens and back-channel logout tokens against the provider's current keys.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from handover.settings import Settings

# Keys are re-read at most this often, and at once when a token names an unknown key
# (the provider rotated its keys).
KEYS_MAX_AGE_S = 3600.0
KEYS_MIN_REFRESH_S = 10.0
# A logout token older than this is refused (OpenID Back-Channel Logout 1.0, 2.6: iat).
LOGOUT_TOKEN_MAX_AGE_S = 300
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")


class IdentityError(Exception):
    """A token or a response of the provider that cannot be trusted; the text says why."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None


class IdentityProvider:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self._http = http
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None
        self._keys_read_at = 0.0

    @property
    def client_id(self) -> str:
        return self.settings.oidc_client_id

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is None:
            issuer = self.settings.oidc_issuer.rstrip("/")
            response = await self._http.get(f"{issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            data = response.json()
            if data.get("issuer", "").rstrip("/") != issuer:
                raise IdentityError("the provider's discovery document names another issuer")
            self._metadata = ProviderMetadata(
                issuer=data["issuer"],
                authorization_endpoint=data["authorization_endpoint"],
                token_endpoint=data["token_endpoint"],
                jwks_uri=data["jwks_uri"],
                userinfo_endpoint=data.get("userinfo_endpoint"),
                end_session_endpoint=data.get("end_session_endpoint"),
            )
        return self._metadata

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        age = time.monotonic() - self._keys_read_at
        stale = self._keys is None or age > KEYS_MAX_AGE_S
        if stale or (refresh and age > KEYS_MIN_REFRESH_S):
            response = await self._http.get((await self.metadata()).jwks_uri)
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
            self._keys_read_at = time.monotonic()
        assert self._keys is not None
        return self._keys

    async def _decode(self, token: str) -> jwt.Token:
        if len(token) > 16_384:
            raise IdentityError("token too large")
        try:
            return jwt.decode(token, await self._key_set(), algorithms=ALGORITHMS)
        except (JoseError, ValueError):
            pass
        # Perhaps signed with a key the provider has rotated in since we read its keys.
        try:
            keys = await self._key_set(refresh=True)
            return jwt.decode(token, keys, algorithms=ALGORITHMS)
        except JoseError as exc:
            raise IdentityError(f"token signature: {exc.error}") from exc
        except ValueError as exc:
            raise IdentityError("not a signed JWT") from exc

    def _registry(self, **claims: Any) -> jwt.JWTClaimsRegistry:
        issuer = self._metadata.issuer if self._metadata else self.settings.oidc_issuer
        return jwt.JWTClaimsRegistry(
            leeway=30,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": self.client_id},
            **claims,
        )

    async def id_token_claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of an ID token issued to us for this login (OIDC Core 3.1.3.7)."""
        token = await self._decode(id_token)
        try:
            self._registry(
                sub={"essential": True}, exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)  # fmt: skip
        except JoseError as exc:
            raise IdentityError(f"ID token: {exc.description or exc.error}") from exc
        azp = token.claims.get("azp")
        if azp is not None and azp != self.client_id:
            raise IdentityError("ID token: issued to another client")
        return dict(token.claims)

    async def logout_token_claims(self, logout_token: str) -> dict[str, Any]:
        """The claims of a back-channel logout token (OIDC Back-Channel Logout 1.0, 2.6)."""
        token = await self._decode(logout_token)
        claims = token.claims
        try:
            self._registry(iat={"essential": True}, jti={"essential": True}).validate(claims)
        except JoseError as exc:
            raise IdentityError(f"logout token: {exc.description or exc.error}") from exc
        if token.header.get("typ") not in (None, "logout+jwt", "JWT"):
            raise IdentityError("logout token: wrong type")
        if abs(time.time() - float(claims["iat"])) > LOGOUT_TOKEN_MAX_AGE_S:
            raise IdentityError("logout token: too old")
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_LOGOUT_EVENT not in events:
            raise IdentityError("logout token: no back-channel logout event")
        if "nonce" in claims:
            raise IdentityError("logout token: must not carry a nonce")
        if not isinstance(claims.get("sid"), str) and not isinstance(claims.get("sub"), str):
            raise IdentityError("logout token: names neither a session nor a subject")
        return dict(claims)

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        endpoint = (await self.metadata()).userinfo_endpoint
        if not endpoint:
            return {}
        response = await self._http.get(
            endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        if response.status_code != 200:
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {}
