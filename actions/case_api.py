"""The action server's client of the gateway's case API (docs/protocol.md, "Case API")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from handover.settings import get_settings

TIMEOUT_S = 5.0


class CaseApiUnavailable(Exception):
    """The gateway could not be reached or failed; the citizen's report was not stored."""


@dataclass(frozen=True)
class LookupResult:
    """A found case, or why not: `found` False with `retry_after_s` set when rate-limited."""

    found: bool
    case: dict[str, Any] | None = None
    retry_after_s: int | None = None


_session: aiohttp.ClientSession | None = None


async def _post(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], int | None]:
    """Status, JSON body and Retry-After of a POST to the gateway."""
    global _session
    if _session is None or _session.closed:
        settings = get_settings()
        _session = aiohttp.ClientSession(
            base_url=settings.gateway_url,
            headers={"Authorization": f"Bearer {settings.case_api_token or ''}"},
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        )
    try:
        async with _session.post(path, json=body) as response:
            payload = await response.json(content_type=None)
            retry = response.headers.get("Retry-After")
            return (
                response.status,
                payload if isinstance(payload, dict) else {},
                (int(retry) if retry and retry.isdigit() else None),
            )
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise CaseApiUnavailable(repr(error)) from error


async def create_case(report: dict[str, Any]) -> dict[str, Any]:
    """Store a damage report; returns `{"case_number", "status", "created_at"}`."""
    status, created, _ = await _post("/api/cases", report)
    if status != 201:
        raise CaseApiUnavailable(f"case API answered {status}")
    return created


async def look_up_case(
    case_number: str, verifier: str, conversation_id: str, client_key: str | None = None
) -> LookupResult:
    """A case by number plus the e-mail or postal code given with it.

    `client_key` names the citizen (the gateway's keyed hash of their address,
    from the message metadata): the gateway counts failed look-ups per client,
    through the chat and its API alike. Without one, per conversation.
    """
    key = "postal_code" if verifier.isdigit() else "email"
    body = {"case_number": case_number, key: verifier, "conversation_id": conversation_id}
    if client_key:
        body["client_key"] = client_key
    status, payload, retry_after = await _post("/api/cases/lookup", body)
    if status == 200:
        return LookupResult(found=True, case=payload)
    if status == 404:
        return LookupResult(found=False)
    if status == 429:
        return LookupResult(
            found=False, retry_after_s=int(payload.get("retry_after_s") or retry_after or 60)
        )
    raise CaseApiUnavailable(f"case API answered {status}")
