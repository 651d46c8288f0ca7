"""Which Rasa replica takes a conversation's turns: a consistent hash ring (RASA_URLS).

Rasa's open-source lock store is not safe across servers, so all turns of one
conversation go to one replica: the first on the ring from the conversation id's hash.
Every replica keeps its trackers in the same Redis, so when that replica is down the
next one on the ring continues the dialogue where it was (a half-filled form, a paused
conversation), and when it is back its conversations move back to it; the others keep
theirs. A replica is taken as down only when it refused the connection (the turn never
reached it): a turn that reached a replica and then timed out is not sent to another,
which would run it twice.
"""

from __future__ import annotations

import bisect
import hashlib
import time
from collections.abc import Sequence

# Points per replica on the ring: enough that two or three replicas share the
# conversations within a few percent.
POINTS_PER_REPLICA = 128


def _point(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


class RasaReplicas:
    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(dict.fromkeys(url.rstrip("/") for url in urls if url.strip()))
        if not self.urls:
            raise ValueError("RASA_URLS names no Rasa server")
        ring = sorted(
            (_point(f"{url}#{n}"), url) for url in self.urls for n in range(POINTS_PER_REPLICA)
        )
        self._points = [point for point, _ in ring]
        self._owners = [url for _, url in ring]
        self._down_since: dict[str, float] = {}

    def order(self, conversation_id: str) -> list[str]:
        """Every replica in the order to try: the conversation's own first, then the next
        ones on the ring; those known to be down come last (tried when nothing else is)."""
        start = bisect.bisect(self._points, _point(conversation_id))
        order: list[str] = []
        for n in range(len(self._owners)):
            url = self._owners[(start + n) % len(self._owners)]
            if url not in order:
                order.append(url)
                if len(order) == len(self.urls):
                    break
        return [u for u in order if u not in self._down_since] + [
            u for u in order if u in self._down_since
        ]

    def owner(self, conversation_id: str) -> str:
        return self.order(conversation_id)[0]

    def mark_down(self, url: str) -> bool:
        """The replica refused a connection; True if it was up until now."""
        if url in self._down_since:
            return False
        self._down_since[url] = time.monotonic()
        return True

    def mark_up(self, url: str) -> bool:
        """The replica answers again; True if it was down until now."""
        return self._down_since.pop(url, None) is not None

    @property
    def down(self) -> list[str]:
        return list(self._down_since)
