"""The case API over HTTP (docs/protocol.md, "Case API"): create, look up, change status.

Three kinds of caller: the action server creates cases with the installation's
case-API token; anyone (the action server on a citizen's behalf, a web page)
may look a case up with the e-mail or postal code given with it, counted per
client across both paths; agents change a case's status with their login token.
Bodies are validated here, at the edge, and every refusal is one `CaseApiError`
turned into its response in one place.
"""

from __future__ import annotations

import hmac
import math
import re
from typing import Annotated, Any, Literal, TypeVar

import orjson
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from handover.cases.store import (
    CaseBook,
    CaseStatus,
    Category,
    LookupThrottle,
    normalise_case_number,
)
from handover.ops.client_keys import ClientKeys, is_client_key, peer_address
from handover.ops.metrics import CASE_LOOKUP_FAILURES, CASES_CREATED
from handover.settings import Settings

log = structlog.get_logger(__name__)

# Pragmatic, not RFC 5322: one @, no spaces, a dot in the domain. The address
# only has to be one the citizen can repeat when looking the case up.
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
POSTAL_CODE = re.compile(r"\d{5}")
M = TypeVar("M", bound=BaseModel)


class CaseApiError(Exception):
    """A refusal; `response()` is what the caller sees."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body["error"])
        self.status = status
        self.body = body
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def unauthorised() -> CaseApiError:
    return CaseApiError(401, {"error": "unauthorised"})


def not_found() -> CaseApiError:
    """Unknown case, or (for look-ups) any failure at all: they must look alike."""
    return CaseApiError(404, {"error": "not_found"})


def invalid(field: str, detail: str) -> CaseApiError:
    return CaseApiError(422, {"error": "invalid", "field": field, "detail": detail})


def rate_limited(wait_s: float) -> CaseApiError:
    retry_after_s = max(1, math.ceil(wait_s))
    return CaseApiError(
        429,
        {"error": "rate_limited", "retry_after_s": retry_after_s},
        {"Retry-After": str(retry_after_s)},
    )


def _blank_is_absent(value: Any) -> Any:
    """Optional fields sent empty (an unfilled form slot) count as not given."""
    return None if isinstance(value, str) and not value.strip() else value


class CaseReport(BaseModel):
    """Body of `POST /api/cases`."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    category: Category
    location: Annotated[str, Field(min_length=1, max_length=300)]
    description: Annotated[str, Field(min_length=1, max_length=2000)]
    email: Annotated[str, Field(max_length=254)] | None = None
    postal_code: str | None = None
    conversation_id: Annotated[str, Field(max_length=128)] | None = None
    language: Literal["de", "en"] = "de"

    _blank = field_validator("email", "postal_code", "conversation_id", mode="before")(
        _blank_is_absent
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.fullmatch(value):
            raise ValueError("not a valid e-mail address")
        return value

    @field_validator("postal_code")
    @classmethod
    def _postal_code(cls, value: str | None) -> str | None:
        if value is not None and not POSTAL_CODE.fullmatch(value):
            raise ValueError("a German postal code has five digits")
        return value


class StatusChange(BaseModel):
    """Body of `POST /api/cases/{case_number}/status`."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    status: CaseStatus
    note: Annotated[str, Field(max_length=1000)] | None = None

    _blank = field_validator("note", mode="before")(_blank_is_absent)


async def _json(request: Request) -> Any:
    # Bounded while it streams in (handover/ops/body_limit.py): MAX_BODY_BYTES, 16 KiB by
    # default, is generous for a 2,000-character description in JSON escapes.
    body = await request.body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _parsed(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise invalid("body", "expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        raise invalid(field, error["msg"].removeprefix("Value error, ")) from None


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _is_action_server(request: Request, settings: Settings) -> bool:
    expected = settings.case_api_token
    given = _bearer(request)
    return bool(expected and given) and hmac.compare_digest(
        given.encode(), (expected or "").encode()
    )


def _text(data: dict[str, Any], field: str, max_length: int = 320) -> str | None:
    """A look-up field if it is a string of sane length; anything else counts as not given."""
    value = data.get(field)
    return value if isinstance(value, str) and 0 < len(value) <= max_length else None


def _client(request: Request, data: dict[str, Any], settings: Settings) -> str:
    """The client key a look-up counts under: the same for a citizen's chat and API calls.

    The action server asks for every chatting citizen from one address, so it
    names the citizen: the `client_key` the gateway put into the message's
    metadata, or (a channel without an address) the conversation. Only the
    authenticated action server may name a client; anyone else counts as itself.
    """
    keys: ClientKeys = request.app.state.client_keys
    if _is_action_server(request, settings):
        named = data.get("client_key")
        if is_client_key(named):
            return str(named)
        conversation_id = _text(data, "conversation_id", 128)
        if conversation_id is not None:
            return keys.of(f"conversation {conversation_id}")
    return keys.of(peer_address(request.scope))


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api/cases")

    @router.post("")
    async def create_case(request: Request) -> JSONResponse:
        if not _is_action_server(request, settings):
            raise unauthorised()
        report = _parsed(CaseReport, await _json(request))
        cases: CaseBook = request.app.state.cases
        case = await cases.create(**report.model_dump())
        CASES_CREATED.labels(report.category).inc()
        log.info("case_created", case_number=case.number, category=case.category)
        body = {"case_number": case.number, "status": case.status, "created_at": case.created_at}
        return JSONResponse(body, status_code=201)

    @router.post("/lookup")
    async def look_up_case(request: Request) -> JSONResponse:
        data = await _json(request)
        if not isinstance(data, dict):
            data = {}
        raw_number = _text(data, "case_number", 64)
        number = normalise_case_number(raw_number) if raw_number else None
        throttle: LookupThrottle = request.app.state.case_lookups
        keys = throttle.keys(client=_client(request, data, settings), case_number=number)
        wait_s = await throttle.attempt(keys)
        if wait_s:
            CASE_LOOKUP_FAILURES.labels("rate_limited").inc()
            log.info("case_lookup_throttled")
            raise rate_limited(wait_s)
        cases: CaseBook = request.app.state.cases
        case = await cases.look_up(
            number, email=_text(data, "email"), postal_code=_text(data, "postal_code", 16)
        )
        if case is None:
            CASE_LOOKUP_FAILURES.labels("not_found").inc()
            raise not_found()
        await throttle.succeeded(keys)
        return JSONResponse(case.public())

    @router.post("/{case_number}/status")
    async def change_status(case_number: str, request: Request) -> JSONResponse:
        token = _bearer(request)
        agent = await request.app.state.auth.agent_for(token) if 0 < len(token) <= 512 else None
        if agent is None:
            raise unauthorised()
        change = _parsed(StatusChange, await _json(request))
        number = normalise_case_number(case_number)
        cases: CaseBook = request.app.state.cases
        case = (
            await cases.set_status(number, change.status, note=change.note, by=agent.username)
            if number
            else None
        )
        if case is None:
            raise not_found()
        log.info(
            "case_status_changed", case_number=number, status=change.status, agent=agent.username
        )
        return JSONResponse(case.public())

    return router


async def _refusal(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CaseApiError)
    return exc.response()


def add_case_api(app: FastAPI, settings: Settings) -> None:
    """Mount the case routes and their error mapping on the gateway's app."""
    app.include_router(build_router(settings))
    app.add_exception_handler(CaseApiError, _refusal)
