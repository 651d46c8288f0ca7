"""`POST /api/applications/pv`: the portal's form "Photovoltaikanlage anmelden" (docs/protocol.md).

Order of work, cheapest refusal first: the body's size is bounded while it
streams in (`BODY_LIMIT`, handover/ops/body_limit.py: 413 before a byte is
buffered when declared too long); the client address's budget is counted
before the body is read (429); then the form is parsed in memory, every field
checked again (the page's script is a convenience, not a guard) and the upload
judged by its bytes. Only a valid application is stored, under a fresh number.

Refusals carry German messages per field (`fields`), which the page puts into
its error summary. A citizen with an open chat may send the conversation token
(`Authorization: Bearer`, as the widget's privacy requests do) to link the
application to the conversation; a missing or stale token is no error, the
application is then simply not linked. Field values are never logged.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from handover.agents.auth import bearer_token
from handover.applications.multipart import MalformedForm, read_form
from handover.applications.pv_form import UPLOAD_FIELD, check
from handover.applications.store import ApplicationBook
from handover.applications.uploads import MAX_UPLOAD_BYTES
from handover.conversation.log import ConversationLog
from handover.ops.client_keys import peer_address
from handover.ops.rate_limit import Budgets, address_key
from handover.settings import Settings

log = structlog.get_logger(__name__)

PV_PATH = "/api/applications/pv"
# The upload plus the text fields and multipart framing, which need far less than 64 KiB.
BODY_LIMIT = MAX_UPLOAD_BYTES + 64 * 1024
RETRY_AFTER_S = 60
NO_STORE = {"Cache-Control": "no-store"}
UNREADABLE = (
    "Das Formular konnte nicht gelesen werden. Bitte laden Sie die Seite neu und versuchen "
    "Sie es erneut."
)


def _refusal(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    headers = {**NO_STORE, **({"Retry-After": str(RETRY_AFTER_S)} if status == 429 else {})}
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status,
                        headers=headers)  # fmt: skip


async def _conversation_of(request: Request) -> str | None:
    """The stored conversation the citizen's token names, if they sent one that holds."""
    token = bearer_token(request.headers.get("authorization"))
    if not token or len(token) > 256:
        return None
    conversation_log: ConversationLog = request.app.state.privacy.log
    conversation = await conversation_log.resume(token)
    return conversation.id if conversation is not None and conversation.stored else None


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter()

    @router.post(PV_PATH)
    async def submit_pv_application(request: Request) -> JSONResponse:
        budgets: Budgets = request.app.state.budgets
        if not await budgets.take("address_application", address_key(peer_address(request.scope))):
            log.info("application_rate_limited", kind="pv")
            return _refusal(429, "rate_limited", "Von Ihrem Anschluss kamen gerade sehr viele "
                            "Anträge. Bitte versuchen Sie es in einigen Minuten erneut.",
                            retry_after_s=RETRY_AFTER_S)  # fmt: skip
        try:
            form = await read_form(
                request.headers.get("content-type", ""), request.stream(), {UPLOAD_FIELD}
            )
        except MalformedForm as exc:
            log.info("application_malformed", kind="pv", reason=str(exc))
            return _refusal(400, "bad_request", UNREADABLE)
        checked = check(form)
        if checked.errors:
            # Names of the fields only: their values are personal data.
            log.info("application_invalid", kind="pv", fields=sorted(checked.errors))
            status = 413 if checked.upload_too_large else 422
            return _refusal(status, "too_large" if status == 413 else "invalid",
                            "Bitte prüfen Sie Ihre Angaben.", fields=checked.errors)  # fmt: skip
        book = ApplicationBook(request.app.state.redis, settings.application_retention_s)
        conversation_id = await _conversation_of(request)
        application = await book.create("pv", checked.values, checked.upload, conversation_id)
        log.info("application_received", kind="pv", number=application.number,
                 upload=checked.upload is not None, linked=conversation_id is not None)  # fmt: skip
        return JSONResponse(
            {"number": application.number, "created_at": application.created_at},
            status_code=201,
            headers=NO_STORE,
        )

    return router


def add_application_api(app: FastAPI, settings: Settings) -> None:
    """Mount the application routes on the gateway's app."""
    app.include_router(build_router(settings))
