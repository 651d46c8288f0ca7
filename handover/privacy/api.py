"""Data-protection endpoints: the citizen's export and erasure, the city's, and the audit log.

Citizen (authenticated by the conversation token in `Authorization: Bearer`,
never in a URL):
    POST /api/conversation/export  {"format": "json"|"html"}  → the download
    POST /api/conversation/erase   {"confirm": true}          → the deletion record
City (a supervisor's agent token in `Authorization: Bearer`):
    POST /api/admin/person/export  {"<kind>": "<value>"}                  → export bundle
    POST /api/admin/person/erase   {"<kind>": "<value>", "confirm": true} → deletion record
    GET  /api/admin/audit?limit=N, GET /api/admin/deletions?limit=N
with <kind> one of conversation_id, case_number, application_number, email, phone.

Every request is counted per client address in Redis (across replicas)
before its body is read or its token checked; bodies are read up to 1 KiB and
no further. Every refusal is a `PrivacyApiError` with a clear JSON body, and
nothing is read, stored or erased when one is raised.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from handover import keys
from handover.agents.auth import bearer_token
from handover.agents.directory import Agent
from handover.applications.store import ApplicationBook
from handover.cases.store import CaseBook
from handover.conversation.bus import EventBus
from handover.conversation.log import ConversationLog
from handover.privacy.audit_log import AuditLog
from handover.privacy.deletion_records import DeletionRecords
from handover.privacy.erasure import Eraser, Requester
from handover.privacy.export import DataExport, bundle_json
from handover.privacy.person_data import SUBJECT_KINDS, UnknownSubject, normalised_subject
from handover.privacy.pseudonyms import Pseudonyms
from handover.privacy.retention import Retention
from handover.privacy.transcript_page import render
from handover.settings import Settings

MAX_BODY_BYTES = 1024
M = TypeVar("M", bound=BaseModel)
RATE_WINDOW_S = 60
NO_STORE = {"Cache-Control": "no-store"}


class PrivacyApiError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(error)
        self.status, self.error, self.message = status, error, message

    def response(self) -> JSONResponse:
        headers = {
            **NO_STORE,
            **({"Retry-After": str(RATE_WINDOW_S)} if self.status == 429 else {}),
        }
        return JSONResponse({"error": self.error, "message": self.message},
                            status_code=self.status, headers=headers)  # fmt: skip


UNAUTHORIZED_CITIZEN = PrivacyApiError(
    401, "unauthorized", "Dieses Gespräch gibt es nicht (mehr), oder der Zugang ist ungültig."
)


class CitizenExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["json", "html"] = "json"


class CitizenEraseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: Literal[True]


class PersonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation_id: str | None = Field(None, max_length=64)
    case_number: str | None = Field(None, max_length=32)
    application_number: str | None = Field(None, max_length=32)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    confirm: bool = False

    def subject(self) -> tuple[Any, str]:
        given = [(kind, getattr(self, kind)) for kind in SUBJECT_KINDS if getattr(self, kind)]
        if len(given) != 1:
            kinds = ", ".join(SUBJECT_KINDS)
            raise PrivacyApiError(400, "bad_request", f"Name exactly one of: {kinds}.")
        kind, value = given[0]
        try:
            return kind, normalised_subject(kind, value)
        except UnknownSubject as exc:
            raise PrivacyApiError(400, "bad_request", str(exc)) from None


@dataclass
class PrivacyServices:
    """What the endpoints (and the admin command) need, built once per process."""

    redis: Redis
    log: ConversationLog
    export: DataExport
    eraser: Eraser
    audit: AuditLog
    records: DeletionRecords
    pseudonyms: Pseudonyms
    requests_per_minute: int

    @classmethod
    def create(
        cls, redis: Redis, log: ConversationLog, settings: Settings, bus: EventBus | None = None
    ) -> PrivacyServices:
        retention = Retention.from_settings(settings)
        audit = AuditLog(redis, retention.audit_s)
        records = DeletionRecords(redis, retention.deletion_record_s)
        pseudonyms = Pseudonyms(redis, settings.pseudonym_secret)
        return cls(
            redis=redis,
            log=log,
            export=DataExport(
                redis,
                log,
                CaseBook(redis, retention.case_s),
                ApplicationBook(redis, retention.application_s),
            ),
            eraser=Eraser(redis, log, audit, records, pseudonyms, bus),
            audit=audit,
            records=records,
            pseudonyms=pseudonyms,
            requests_per_minute=settings.privacy_requests_per_minute,
        )

    async def citizen_conversation(self, token: str) -> str:
        """The conversation the token belongs to, or the one 401 for every other case."""
        if not token or len(token) > 256:
            raise UNAUTHORIZED_CITIZEN
        conversation = await self.log.resume(token)
        if conversation is None or not conversation.stored:
            raise UNAUTHORIZED_CITIZEN
        return conversation.id


async def _count_request(request: Request, services: PrivacyServices) -> None:
    """Per client address, across replicas; refused before any other work."""
    client = request.app.state.client_keys.of(request.client.host if request.client else "")
    key = keys.privacy_requests(client)
    async with services.redis.pipeline(transaction=True) as pipe:
        # The window starts with the first request (SET NX EX; INCR keeps the expiry):
        # Redis 6.2, which `make run` embeds, has no EXPIRE NX.
        pipe.set(key, 0, ex=RATE_WINDOW_S, nx=True)
        pipe.incr(key)
        _, count = await pipe.execute()
    if int(count) > services.requests_per_minute:
        raise PrivacyApiError(
            429, "rate_limited", "Zu viele Anfragen. Bitte versuchen Sie es in einer Minute erneut."
        )


async def _body(request: Request, model: type[M]) -> M:
    """The JSON body, read up to MAX_BODY_BYTES and no further; {} when empty."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise PrivacyApiError(413, "too_large", "Request body too large.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise PrivacyApiError(413, "too_large", "Request body too large.")
    try:
        return model.model_validate(orjson.loads(body) if body.strip() else {})
    except (orjson.JSONDecodeError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "not JSON"
        raise PrivacyApiError(400, "bad_request", f"Malformed request: {detail}.") from None


async def supervisor(request: Request) -> Agent:
    """The supervisor the request's bearer token names; 401 or 403 (as `PrivacyApiError`)."""
    token = bearer_token(request.headers.get("authorization"))
    agent: Agent | None = (
        await request.app.state.auth.agent_for(token) if 0 < len(token) <= 512 else None
    )
    if agent is None:
        raise PrivacyApiError(401, "unauthorized", "Log in as a supervisor.")
    if not agent.is_supervisor:
        raise PrivacyApiError(403, "forbidden", "Only supervisors may do this.")
    return agent


def _services(request: Request) -> PrivacyServices:
    services: PrivacyServices = request.app.state.privacy
    return services


async def _citizen_request(
    request: Request, services: PrivacyServices, model: type[M]
) -> tuple[str, M, str]:
    """Counted, then read: the citizen's token, the body and the conversation it names."""
    await _count_request(request, services)
    token = bearer_token(request.headers.get("authorization"))
    body = await _body(request, model)
    return token, body, await services.citizen_conversation(token)


def add_privacy_api(app: FastAPI) -> None:
    router = APIRouter()

    @router.post("/api/conversation/export")
    async def citizen_export(request: Request) -> Response:
        services = _services(request)
        try:
            _, body, conversation_id = await _citizen_request(request, services, CitizenExportBody)
        except PrivacyApiError as exc:
            return exc.response()
        bundle = await services.export.bundle(
            await services.eraser.person_data.conversation_holdings(conversation_id, scan=False),
            "citizen",
        )
        return await _download(bundle, body.format, f"gespraech-{conversation_id[:8]}")

    @router.post("/api/conversation/erase")
    async def citizen_erase(request: Request) -> Response:
        services = _services(request)
        try:
            token, _, conversation_id = await _citizen_request(request, services, CitizenEraseBody)
        except PrivacyApiError as exc:
            return exc.response()
        holdings = await services.eraser.person_data.conversation_holdings(
            conversation_id, scan=True
        )
        pseudonym = await services.pseudonyms.of("conversation", conversation_id)
        record = await services.eraser.erase(
            holdings, Requester("citizen", "widget"), pseudonym, token=token, keep_cases=True
        )
        await services.audit.record("erase", actor="citizen", role="citizen",
                                    conversation_id=pseudonym, via="widget")  # fmt: skip
        return JSONResponse({"erased": record["erased"], "record": record["id"]}, headers=NO_STORE)

    @router.post("/api/admin/person/export")
    async def person_export(request: Request) -> Response:
        services = _services(request)
        try:
            await _count_request(request, services)
            agent = await supervisor(request)
            kind, value = (await _body(request, PersonBody)).subject()
            holdings = await services.eraser.person_data.find(kind, value)
            if holdings.empty:
                raise PrivacyApiError(404, "not_found", "Nothing is stored for this person.")
        except PrivacyApiError as exc:
            return exc.response()
        subject = await services.pseudonyms.of(kind, value)
        bundle = await services.export.bundle(holdings, "city")
        for conversation_id in sorted(holdings.conversations):
            await services.audit.record("export", actor=agent.username, role=agent.role,
                                        conversation_id=conversation_id, subject=subject,
                                        via="admin-api")  # fmt: skip
        if not holdings.conversations:
            await services.audit.record("export", actor=agent.username, role=agent.role,
                                        subject=subject, via="admin-api")  # fmt: skip
        # Serialising a person's whole history is CPU work: off the event loop.
        content = await asyncio.to_thread(bundle_json, bundle)
        return Response(content, media_type="application/json", headers=NO_STORE)

    @router.post("/api/admin/person/erase")
    async def person_erase(request: Request) -> Response:
        services = _services(request)
        try:
            await _count_request(request, services)
            agent = await supervisor(request)
            body = await _body(request, PersonBody)
            kind, value = body.subject()
            if not body.confirm:
                raise PrivacyApiError(400, "bad_request", 'Erasure needs "confirm": true.')
            holdings = await services.eraser.person_data.find(kind, value)
            if holdings.empty:
                raise PrivacyApiError(404, "not_found", "Nothing is stored for this person.")
        except PrivacyApiError as exc:
            return exc.response()
        subject = await services.pseudonyms.of(kind, value)
        record = await services.eraser.erase(
            holdings, Requester(agent.username, "admin-api"), subject
        )
        await services.audit.record("erase", actor=agent.username, role=agent.role,
                                    subject=subject, via="admin-api")  # fmt: skip
        return JSONResponse({"record": record}, headers=NO_STORE)

    @router.get("/api/admin/audit")
    async def audit_log(request: Request, limit: int = 200) -> Response:
        return await _listing(request, "audit", limit)

    @router.get("/api/admin/deletions")
    async def deletion_records(request: Request, limit: int = 200) -> Response:
        return await _listing(request, "deletions", limit)

    app.include_router(router)


async def _listing(request: Request, which: Literal["audit", "deletions"], limit: int) -> Response:
    services = _services(request)
    try:
        await _count_request(request, services)
        agent = await supervisor(request)
        if not 1 <= limit <= 1000:
            raise PrivacyApiError(400, "bad_request", "limit: 1 to 1000.")
    except PrivacyApiError as exc:
        return exc.response()
    if which == "audit":
        items = await services.audit.recent(limit)
        action: Any = "read_audit_log"
    else:
        items = await services.records.recent(limit)
        action = "read_deletion_records"
    await services.audit.record(action, actor=agent.username, role=agent.role, via="admin-api")
    return JSONResponse({"items": items}, headers=NO_STORE)


async def _download(bundle: dict[str, Any], fmt: str, name: str) -> Response:
    """The export as a file to save; rendered off the event loop (long conversations)."""
    if fmt == "html":
        page = await asyncio.to_thread(render, bundle)
        content, media, ext = page.encode(), "text/html; charset=utf-8", "html"
    else:
        content = await asyncio.to_thread(bundle_json, bundle)
        media, ext = "application/json", "json"
    headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{name}.{ext}"',
               "X-Content-Type-Options": "nosniff"}  # fmt: skip
    return Response(content, media_type=media, headers=headers)
