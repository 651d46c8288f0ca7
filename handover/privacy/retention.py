"""How long each category of data is kept: one policy, read from the settings.

Every Redis key the gateway writes for a conversation expires no later than
its category's retention (docs/data-protection.md lists every key family).
The few keys without an expiry are listed in `UNEXPIRING` with the reason;
none holds a citizen's data or a conversation id, and tests/test_retention.py
checks that after a full conversation no other key is left without a TTL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from handover import keys
from handover.settings import Settings

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Retention:
    """Seconds each category is kept (after its last change, unless said otherwise)."""

    conversation_s: int  # log stream, meta hash, token, client ids, replica set, queue entries
    nlu_s: int  # what the bot understood of each citizen turn
    csat_s: int  # satisfaction rating and comment
    ticket_s: int  # "leave a message" tickets with their contact
    case_s: int  # damage reports
    application_s: int  # applications from the portal's forms, with their uploads
    audit_s: int  # who read, exported or erased which conversation
    deletion_record_s: int  # what was erased, when, by whom

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(
            conversation_s=settings.retention_s,
            nlu_s=settings.nlu_retention_s,
            csat_s=settings.csat_retention_s,
            ticket_s=settings.ticket_retention_s,
            case_s=settings.case_retention_s,
            application_s=settings.application_retention_s,
            audit_s=settings.audit_retention_s,
            deletion_record_s=settings.deletion_record_retention_s,
        )


# Keys that never expire, and why that is harmless: no citizen data, no conversation id.
_USERNAME = r"[\w.@-]+"
UNEXPIRING: dict[str, str] = {
    re.escape(keys.SECRET_PREFIX) + r"[\w-]+": "signing and pseudonym keys of the deployment",
    re.escape(keys.AGENTS): "the set of agent usernames (staff accounts, managed with the "
    "admin command)",
    re.escape(keys.agent("")) + _USERNAME: "an agent account (name, role, skills, password hash)",
    re.escape(keys.AGENTS_BUSY_AT): "per agent, when their load last changed (a timestamp)",
    re.escape(keys.presence("")) + _USERNAME: "an agent's open sockets (random socket ids), "
    "scored by expiry",
    re.escape(keys.TICKETS_COUNTER): "the last ticket number (numbers are never reused)",
}
_UNEXPIRING = re.compile("|".join(f"(?:{pattern})" for pattern in UNEXPIRING))


def may_live_forever(key: str) -> bool:
    """True for the keys of `UNEXPIRING`; every other key must carry a TTL."""
    return _UNEXPIRING.fullmatch(key) is not None
