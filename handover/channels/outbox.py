"""A channel's outbox: every reply stored for a messenger's citizen is sent, in order.

The append script adds ``<conversation id>|<seq>`` to `bs:outbox:<channel>` in the same
step as it stores an event the citizen of a conversation on that channel is to receive,
so a reply that is stored will be sent, whatever happens to the process that stored it.

One replica at a time sends a channel's outbox: it holds a lease in Redis, renews it
while it works, and another replica takes over when it lapses. It sends the oldest
entry first and deletes it once the provider took it, so a conversation's replies
arrive in the order they were stored. A provider that fails (5xx, 429, a timeout, no
connection) gets the same entry again after a backoff (the provider's own wait for a
429) and the entries behind it wait: an outage loses nothing and nothing overtakes. A
refusal for good (the user blocked the bot, a request the provider cannot take) is kept
in `bs:outbox:<channel>:failed` for supervisors, counted and logged at warning (never
with the text), and the outbox goes on.

Exactly once is not promised across a crash: a replica killed after the provider took
a message but before the entry was deleted leaves it for the next sender, which sends
it again (a window of one request; providers offer no idempotency key for sends).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from handover import keys
from handover.channels.base import Delivery, OutboxChannel, SendFailed
from handover.channels.lease import Lease
from handover.conversation.log import ConversationLog
from handover.ops import metrics

log = structlog.get_logger(__name__)

# Entries read per round trip; each is still sent (and deleted) one at a time.
BATCH = 100
# Supervisors see the latest refusals; older ones are dropped from the list.
FAILED_KEPT = 1000
# A channel that batches replies waits until a conversation's newest entry is this old, so
# what one step stores in two appends (the end, then the rating question) is one message.
SETTLE_S = 0.5


class Outbox:
    def __init__(
        self,
        redis: Redis,
        conversations: ConversationLog,
        adapter: OutboxChannel,
        host_id: str,
        *,
        lease_s: float = 10.0,
        first_retry_s: float = 0.5,
        max_retry_s: float = 30.0,
        failed_retention_s: int = 30 * 86_400,
    ) -> None:
        self._redis: Any = redis
        self.conversations = conversations
        self.adapter = adapter
        self.channel = adapter.name
        self.host_id = host_id
        # The lease outlives any one send (the adapter's timeout is shorter) and a
        # sender renews it at least every third of it, also while it waits to retry.
        self.lease_s = lease_s
        self.first_retry_s = first_retry_s
        self.max_retry_s = max_retry_s
        self.failed_retention_s = failed_retention_s
        self.lease = Lease(redis, keys.outbox_sender(self.channel), host_id, lease_s)
        self._stream = keys.outbox(self.channel)
        self._waited_for = ""  # the newest entry of a batch already given time to settle
        # The send under way and the deletion of its entries after it: a graceful stop
        # lets it finish (`stop`), so a restart does not send it a second time.
        self._in_flight: asyncio.Future[None] | None = None

    async def run(self) -> None:
        """Send for as long as the process lives; cancel to stop."""
        while True:
            try:
                if not await self.lease.hold():
                    await asyncio.sleep(self.lease_s / 3)
                    continue
                if not await self.drain():
                    await self._wait_for_entries()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("outbox_unavailable", channel=self.channel, error=repr(exc))
                await asyncio.sleep(1.0)

    async def stop(self, task: asyncio.Task[None], timeout_s: float = 10.0) -> None:
        """Stop `task` (this outbox's `run`), letting a send under way finish and be recorded.

        A provider that took a message whose entry was not deleted would get it again
        from the next sender. Only a crash (kill -9) between the two can still do that.
        """
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        in_flight = self._in_flight
        if in_flight is not None and not in_flight.done():
            await asyncio.wait([in_flight], timeout=timeout_s)
            if in_flight.done() and not in_flight.cancelled() and in_flight.exception():
                # Not taken: its entry stays for the next sender.
                log.warning("outbox_stopped_unsent", channel=self.channel)
        with contextlib.suppress(RedisError, OSError):
            await self.lease.release()

    async def drain(self) -> int:
        """Send what is waiting, oldest first, while this replica leads; how many were done."""
        done = 0
        while True:
            entries = await self._redis.xrange(self._stream, count=BATCH)
            metrics.OUTBOX_BACKLOG.labels(channel=self.channel).set(len(entries))
            if not entries:
                return done
            groups = self._groups(entries)
            for n, group in enumerate(groups):
                if n == len(groups) - 1 and (wait := self._unsettled_s(group)) > 0:
                    # More of this conversation may follow at once: read again after it.
                    self._waited_for = group[-1][0]
                    if not await self.lease.sleep(wait):
                        return done
                    break
                if not await self.lease.hold(when_due=True) or not await self._deliver(group):
                    return done
                done += len(group)

    def _unsettled_s(self, group: list[tuple[str, str]]) -> float:
        """How long to wait before a batching channel sends `group` (its stream ids are ms).

        At most once per newest entry and never more than SETTLE_S, whatever Redis's clock.
        """
        if not self.adapter.batches_replies or group[-1][0] == self._waited_for:
            return 0.0
        newest_ms = int(group[-1][0].partition("-")[0])
        return min(SETTLE_S, SETTLE_S - (time.time() * 1000 - newest_ms) / 1000)

    def _groups(self, entries: list[tuple[str, dict[str, str]]]) -> list[list[tuple[str, str]]]:
        """(entry id, "<conversation>|<seq>") lists to send at once: one entry each, or for a
        channel that `batches_replies`, the run of one conversation's consecutive entries
        (a bot turn's messages become one e-mail)."""
        groups: list[list[tuple[str, str]]] = []
        for entry_id, fields in entries:
            entry = fields["e"]
            same = groups and groups[-1][0][1].partition("|")[0] == entry.partition("|")[0]
            if self.adapter.batches_replies and same:
                groups[-1].append((entry_id, entry))
            else:
                groups.append([(entry_id, entry)])
        return groups

    async def _deliver(self, group: list[tuple[str, str]]) -> bool:
        """Send a group until the provider takes or refuses it; False if the lead was lost."""
        conversation_id = group[0][1].partition("|")[0]
        meta = await self.conversations.meta(conversation_id)
        seqs = [int(entry.partition("|")[2] or 0) for _, entry in group]
        events = [await self.conversations.event_at(conversation_id, seq) for seq in seqs]
        deliveries = [Delivery(conversation_id, meta.get("recipient", ""),
                               meta.get("language", "de"), event, meta)
                      for event in events if event is not None]  # fmt: skip
        if not deliveries or not meta.get("recipient"):
            # Erased or expired meanwhile: nothing to send, nobody to send it to.
            await self._redis.xdel(self._stream, *(entry_id for entry_id, _ in group))
            return True
        attempt = 0
        while True:
            try:
                self._in_flight = asyncio.ensure_future(self._send(deliveries, group))
                await asyncio.shield(self._in_flight)
            except SendFailed as failed:
                if failed.permanent:
                    await self._refused(deliveries[0], failed.reason)
                    break
                delay = failed.retry_after_s
                reason = failed.reason
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                delay, reason = None, type(exc).__name__
            else:
                return True
            delay = delay or min(self.max_retry_s, self.first_retry_s * 2**attempt)
            attempt += 1
            metrics.OUTBOX_RETRIES.labels(channel=self.channel).inc()
            log.warning("outbox_retry", channel=self.channel, conversation_id=conversation_id,
                        seq=deliveries[0].event.get("seq"), reason=reason, attempt=attempt,
                        retry_in_s=round(delay, 2))  # fmt: skip
            if not await self.lease.sleep(delay):
                return False
        await self._redis.xdel(self._stream, *(entry_id for entry_id, _ in group))
        return True

    async def _send(self, deliveries: list[Delivery], group: list[tuple[str, str]]) -> None:
        """Send once and, when the provider took it, delete the entries."""
        if self.adapter.batches_replies:
            await self.adapter.send_batch(deliveries)
        else:
            await self.adapter.send(deliveries[0])
        metrics.CHANNEL_MESSAGES.labels(channel=self.channel, direction="out").inc()
        await self._redis.xdel(self._stream, *(entry_id for entry_id, _ in group))

    async def _refused(self, delivery: Delivery, reason: str) -> None:
        record = json.dumps({"conversation_id": delivery.conversation_id,
                             "seq": delivery.event.get("seq"), "reason": reason[:200],
                             "at": int(time.time())})  # fmt: skip
        failed = keys.outbox_failed(self.channel)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(failed, record)
            pipe.ltrim(failed, 0, FAILED_KEPT - 1)
            # It names conversations: it expires with them.
            pipe.expire(failed, self.failed_retention_s)
            await pipe.execute()
        metrics.OUTBOX_FAILED.labels(channel=self.channel).inc()
        log.warning("outbox_refused", channel=self.channel,
                    conversation_id=delivery.conversation_id, seq=delivery.event.get("seq"),
                    reason=reason[:200])  # fmt: skip

    async def failures(self, count: int = 100) -> list[dict[str, Any]]:
        """The latest refusals, newest first (for supervisors)."""
        raw = await self._redis.lrange(keys.outbox_failed(self.channel), 0, count - 1)
        return [json.loads(item) for item in raw]

    async def _wait_for_entries(self) -> None:
        """Block until the outbox has an entry, or a third of the lease has passed."""
        block_ms = int(self.lease_s / 3 * 1000)
        await self._redis.xread({self._stream: "0-0"}, count=1, block=block_ms)
