"""Rasa's RedisTrackerStore, connected by URL: the gateway's Redis, unix socket included.

Rasa 3.6's RedisTrackerStore takes host/port/db/password only, and its key
prefix must be alphanumeric. The embedded Redis of `make run` listens on a
unix socket only (no TCP port for other local users to reach), and the
gateway names its keys `bs:*`; this subclass connects with a Redis URL
(`redis://`, `rediss://`, `unix://`, `redis+sentinel://`) and uses the key prefix as given,
by default `handover.keys.RASA_TRACKER_PREFIX` (the gateway deletes trackers by it).

endpoints.yml::

    tracker_store:
      type: bot.tracker_store.RedisUrlTrackerStore
      url: ${RASA_TRACKER_STORE_URL}
      key_prefix: bs:rasa:tracker:   # optional: handover.keys.RASA_TRACKER_PREFIX
      record_exp: 2592000   # seconds; every turn renews it
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import (
    DialogueStateTracker,
    get_trackers_for_conversation_sessions,
)

from bot.redis_client import connect_async
from bot.tracker_events import merged_events
from handover.keys import RASA_TRACKER_PREFIX

DEFAULT_KEY_PREFIX = RASA_TRACKER_PREFIX


class RedisUrlTrackerStore(RedisTrackerStore):
    """Trackers in the Redis at `url`, each key expiring `record_exp` seconds after its turn."""

    def __init__(
        self,
        domain: Domain,
        host: str | None = None,
        url: str | None = None,
        event_broker: EventBroker | None = None,
        record_exp: float | None = None,
        key_prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Rasa passes the endpoint's `url` as `host`.
        address = url or host
        if not address or "://" not in address:
            raise ValueError(
                "RedisUrlTrackerStore needs `url: redis://…` or `unix://…` in endpoints.yml"
            )
        super().__init__(
            domain, event_broker=event_broker, record_exp=_seconds(record_exp), **kwargs
        )
        # Every use of `red` by Rasa's class is overridden below with an awaited call.
        self.red = connect_async(address, decode_responses=True)
        self.key_prefix = key_prefix or DEFAULT_KEY_PREFIX

    async def save(self, tracker: DialogueStateTracker, timeout: float | None = None) -> None:
        """Rasa's save, with the merge in linear time (bot/tracker_events.py says why).

        The stored form is Rasa's own (`Dialogue.as_dict()` as JSON), so Rasa,
        the gateway's deletion and the export read it unchanged.
        """
        await self.stream_events(tracker)
        key = self.key_prefix + tracker.sender_id
        events = [event.as_dict() for event in tracker.events]
        stored = await self.red.get(key)
        if stored is not None:
            events = merged_events(json.loads(stored).get("events") or [], events)
        dialogue = {"events": events, "name": tracker.sender_id}
        await self.red.set(key, json.dumps(dialogue), ex=timeout or self.record_exp)

    async def _retrieve(
        self, sender_id: str, fetch_all_sessions: bool
    ) -> DialogueStateTracker | None:
        """Rasa's retrieve, awaiting Redis instead of blocking the event loop."""
        stored = await self.red.get(self.key_prefix + sender_id)
        if stored is None:
            return None
        tracker = self.deserialise_tracker(sender_id, stored)
        if tracker is None or fetch_all_sessions:
            return tracker
        sessions = get_trackers_for_conversation_sessions(tracker)
        return sessions[-1] if len(sessions) > 1 else tracker

    async def keys(self) -> Iterable[str]:
        return [key async for key in self.red.scan_iter(match=self.key_prefix + "*")]


def _seconds(value: Any) -> int | None:
    """endpoints.yml values may arrive as strings (environment interpolation)."""
    if value in (None, ""):
        return None
    seconds = int(float(value))
    if seconds <= 0:
        raise ValueError("record_exp must be a positive number of seconds")
    return seconds
