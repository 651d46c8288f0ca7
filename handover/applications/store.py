"""Applications (Anträge) in Redis: a numbered record with its upload, kept for a fixed time.

Numbers are the case numbers' scheme with a prefix per kind of application
(``PV-<year>-XXXX-XXXC``, handover/cases/numbers.py): random with a check
character, never issued twice in a year (handover/cases/store.py,
`issue_number`). An application is a hash of the form's values; its upload,
if any, is a second key holding the file as base64 (the connection decodes
replies as text). Both are written in one transaction and expire together,
APPLICATION_RETENTION_DAYS after submission: there is no other copy, not on
disk either (handover/applications/multipart.py). Both share the hash tag
``{<number>}``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from handover import keys
from handover.applications.pv_form import Upload
from handover.cases.numbers import normalise_number
from handover.cases.store import CITY_TZ, issue_number
from handover.conversation.protocol import utc_now

PV_PREFIX = "PV"
# What the export shows of an application's hash, in this order.
EXPORTED_FIELDS = (
    "kind", "status", "created_at", "first_name", "last_name", "email", "phone", "street",
    "postal_code", "city", "installation_type", "power_kwp", "listed_building", "grid_operator",
    "upload_name", "upload_type", "upload_size", "conversation_id",
)  # fmt: skip


def normalise_application_number(raw: str) -> str | None:
    """The canonical form of an application number as typed, or None."""
    return normalise_number(raw, PV_PREFIX)


@dataclass(frozen=True, slots=True)
class Application:
    number: str
    created_at: str


class ApplicationBook:
    """Store and export applications; every key expires with the retention.

    Erasure deletes `keys.application_keys` (handover/privacy/erasure.py).
    """

    def __init__(self, redis: Redis, retention_s: int) -> None:
        # Typed loosely: redis-py's stubs cannot know the client decodes to str.
        self._redis: Any = redis
        self.retention_s = retention_s

    async def create(
        self,
        kind: str,
        values: dict[str, str],
        upload: Upload | None,
        conversation_id: str | None = None,
    ) -> Application:
        """Store a new application with status `eingegangen` under a fresh number."""
        year = datetime.now(CITY_TZ).year
        number = await issue_number(self._redis, PV_PREFIX, year, keys.application_numbers(year))
        created_at = utc_now()
        fields = {"kind": kind, "status": "eingegangen", "created_at": created_at, **values}
        if conversation_id:
            fields["conversation_id"] = conversation_id
        if upload is not None:
            fields.update(upload_name=upload.filename, upload_type=upload.media_type,
                          upload_size=str(len(upload.data)))  # fmt: skip
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.application(number), mapping=fields)
            pipe.expire(keys.application(number), self.retention_s)
            if upload is not None:
                encoded = base64.b64encode(upload.data).decode("ascii")
                pipe.set(keys.application_upload(number), encoded, ex=self.retention_s)
            await pipe.execute()
        return Application(number, created_at)

    async def export(self, number: str) -> dict[str, Any] | None:
        """The application as the person export holds it, the upload included (base64)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.application(number))
            pipe.get(keys.application_upload(number))
            data, upload = await pipe.execute()
        if not data:
            return None
        exported: dict[str, Any] = {"application_number": number}
        exported.update({name: data[name] for name in EXPORTED_FIELDS if data.get(name)})
        if upload:
            exported["upload_base64"] = upload
        return exported
