"""Prometheus metrics of the gateway, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OPEN_SOCKETS = Gauge("gateway_open_sockets", "Open client sockets.", ["side"])
EVENTS = Counter("gateway_events_total", "Durable events stored.", ["sender"])
CLIENT_ERRORS = Counter("gateway_client_errors_total", "Error frames sent to clients.", ["code"])
BOT_TURN_SECONDS = Histogram(
    "gateway_bot_turn_seconds",
    "Duration of one Rasa round trip.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0),
)
CASES_CREATED = Counter("gateway_cases_created_total", "Damage reports created.", ["category"])
# No label says why a look-up failed: /metrics is public, and "unknown number"
# versus "wrong e-mail" is exactly what a failed look-up must not reveal.
CASE_LOOKUP_FAILURES = Counter(
    "gateway_case_lookup_failures_total", "Case status look-ups refused.", ["outcome"]
)
CHANNEL_MESSAGES = Counter(
    "gateway_channel_messages_total",
    "Messenger messages received (in) and sent (out).",
    ["channel", "direction"],
)
OUTBOX_FAILED = Counter(
    "gateway_outbox_failed_total", "Replies a provider refused for good.", ["channel"]
)
OUTBOX_RETRIES = Counter(
    "gateway_outbox_retries_total",
    "Sends a provider did not take and that wait to retry.",
    ["channel"],
)
OUTBOX_BACKLOG = Gauge("gateway_outbox_backlog", "Replies waiting to be sent.", ["channel"])
RASA_REPLICA_ERRORS = Counter(
    "gateway_rasa_replica_errors_total",
    "Calls a Rasa replica refused (connection refused or not made); the next replica took them.",
    ["replica"],
)
RASA_REPLICAS_UP = Gauge(
    "gateway_rasa_replicas_up", "Rasa replicas this gateway currently sends turns to."
)
REDIS_FAILOVERS = Counter(
    "gateway_redis_failovers_total", "Times the sentinels named a new Redis primary."
)
REDIS_REPLICA_LAG = Counter(
    "gateway_redis_unreplicated_total",
    "Batches of durable events acknowledged while the primary had fewer than "
    "REDIS_WAIT_REPLICAS replicas.",
)
QUEUE_LENGTH = Gauge("gateway_queue_length", "Conversations waiting in a queue.", ["queue"])
QUEUE_WAIT_SECONDS = Histogram(
    "gateway_queue_wait_seconds",
    "How long a conversation waited in its queue before an agent took it.",
    ["queue"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
