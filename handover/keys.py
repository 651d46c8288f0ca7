"""Every Redis key and pub/sub channel name of the project, in one place.

All names start with `bs:`, so one deployment's data is recognisable and scannable
beside anything else in the same Redis. A conversation's keys share the hash tag
``{<conversation id>}`` and a case's keys ``{<case number>}``, so a Redis Cluster keeps
each on one shard. Lua scripts never spell a name: their callers pass keys as KEYS, and
channel names are put into the script text from here.

docs/data-protection.md lists every family with its retention; `privacy/retention.py`
names the few that never expire. Standard library only: the bot environment (Rasa's
tracker store) reads `RASA_TRACKER_PREFIX` from here too.
"""

from __future__ import annotations

import hashlib

# --- conversations ------------------------------------------------------------------


def conversation(conversation_id: str) -> str:
    """Meta hash: state, seq, channel, language, queue, agent, …"""
    return f"bs:conv:{{{conversation_id}}}"


def conversation_log(conversation_id: str) -> str:
    """Stream of durable events; entry id ``0-<seq>``."""
    return f"{conversation(conversation_id)}:log"


def conversation_clients(conversation_id: str) -> str:
    """Hash: client message id → seq (de-duplication)."""
    return f"{conversation(conversation_id)}:clients"


def conversation_nlu(conversation_id: str) -> str:
    """Hash: seq of a citizen event → what the bot understood of it."""
    return f"{conversation(conversation_id)}:nlu"


def conversation_csat(conversation_id: str) -> str:
    """Hash: the satisfaction rating and comment."""
    return f"{conversation(conversation_id)}:csat"


def conversation_replicas(conversation_id: str) -> str:
    """Set: host ids of the gateway replicas holding a socket of the conversation."""
    return f"{conversation(conversation_id)}:replicas"


def conversation_cobrowse(conversation_id: str) -> str:
    """Hash: the co-browsing session (agent, steps granted, pending request, page, sockets)."""
    return f"{conversation(conversation_id)}:cobrowse"


def cobrowse_to_agent(conversation_id: str) -> str:
    """Channel: the citizen's page (rrweb events) for the agent's co-browse view; never stored."""
    return f"{conversation_cobrowse(conversation_id)}:to-agent"


def cobrowse_to_citizen(conversation_id: str) -> str:
    """Channel: the agent's pointer and highlight, snapshot requests, the end."""
    return f"{conversation_cobrowse(conversation_id)}:to-citizen"


def conversation_keys(conversation_id: str) -> list[str]:
    """Every key named after one conversation."""
    return [
        conversation(conversation_id),
        conversation_log(conversation_id),
        conversation_clients(conversation_id),
        conversation_nlu(conversation_id),
        conversation_csat(conversation_id),
        conversation_replicas(conversation_id),
        conversation_cobrowse(conversation_id),
    ]


def erased(conversation_id: str) -> str:
    """Marker that a conversation was erased, so its stateless token resumes nothing.

    Named by a hash: a marker must not keep the id of a conversation erased for good.
    """
    return "bs:erased:" + hashlib.sha256(conversation_id.encode()).hexdigest()


LEGACY_TOKEN_PREFIX = "bs:token:"


def legacy_token(token: str) -> str:
    """Token → conversation id, from before tokens were signed (read until they expire)."""
    return LEGACY_TOKEN_PREFIX + hashlib.sha256(token.encode()).hexdigest()


# Where the append script announces a conversation it created: "<host id>|<conversation id>".
CONVERSATIONS_BORN = "bs:conversations:born"
REPLICA_CHANNEL_PREFIX = "bs:replica:"


def replica_channel(host_id: str) -> str:
    """The one channel a gateway process subscribes to for events of other replicas."""
    return REPLICA_CHANNEL_PREFIX + host_id


# A marker written (and expiring) only to ask a lagging replica whether it has caught up:
# replication is one ordered stream, so a replica that has it has every write before it.
REPLICATION_MARK = "bs:replication:mark"

# --- channels (channels/) ------------------------------------------------------------

# A stream per channel of what its citizens are to receive, "<conversation id>|<seq>",
# added by the append script (so the name is built there from this prefix).
OUTBOX_PREFIX = "bs:outbox:"


def outbox(channel: str) -> str:
    return OUTBOX_PREFIX + channel


def outbox_failed(channel: str) -> str:
    """List: deliveries the provider refused for good, for supervisors to see."""
    return f"{outbox(channel)}:failed"


def outbox_sender(channel: str) -> str:
    """Lease of the one replica that sends a channel's outbox, so replies keep their order."""
    return f"{outbox(channel)}:sender"


def channel_cursor(channel: str) -> str:
    """Where a channel that reads by syncing (Matrix) has got to (no personal data)."""
    return f"bs:channel:{channel}:cursor"


def channel_receiver(channel: str) -> str:
    """Lease of the one replica that syncs a channel's account."""
    return f"bs:channel:{channel}:receiver"


def channel_user(channel: str, pseudonym: str) -> str:
    """A channel user's (chat id, phone number, …) open conversation, named by a pseudonym."""
    return f"bs:channel:{channel}:{pseudonym}"


# --- deployment secrets (never expire) ---------------------------------------------------

SECRET_PREFIX = "bs:secret:"
CONVERSATION_TOKEN_SECRET = SECRET_PREFIX + "conversation-tokens"
AGENT_TOKEN_SECRET = SECRET_PREFIX + "agent-tokens"
CLIENT_KEY_SECRET = SECRET_PREFIX + "client-keys"
PSEUDONYM_SECRET = SECRET_PREFIX + "pseudonyms"

# --- agents ------------------------------------------------------------------------------

AGENTS = "bs:agents"  # set of usernames
AGENTS_CHANGED = "bs:agents:changed"  # channel: queues or agents changed, views are stale
AGENTS_REVOKED = "bs:agents:revoked"  # channel: an account's tokens no longer hold
AGENTS_BUSY_AT = "bs:agents:busy_at"  # hash: username → when their load last changed


def agent(username: str) -> str:
    """Hash: an agent account."""
    return f"bs:agent:{username}"


def agent_conversations(username: str) -> str:
    """Set: the conversations assigned to an agent."""
    return f"{agent(username)}:conversations"


def agent_unassigned(username: str) -> str:
    """Hash: conversations taken from an agent without their doing, and why."""
    return f"{agent(username)}:unassigned"


def agent_session_ended(session: str) -> str:
    """Marker that one login session ended (logout, back-channel logout)."""
    return f"bs:agent-session-ended:{session}"


PRESENCE = "bs:presence:agents"  # sorted set: agents online, scored by expiry


def presence(username: str) -> str:
    """Sorted set: an agent's open sockets, scored by expiry."""
    return f"bs:presence:{username}"


QUEUES = "bs:queues"  # set of queue names


def queue(name: str) -> str:
    """Sorted set: conversations waiting in a skill queue."""
    return f"bs:queue:{name}"


def queue_waits(name: str) -> str:
    """List: the last real waits in a queue (for the ETA)."""
    return f"bs:waits:{name}"


LOGIN_GLOBAL = "bs:login:global"


def login_address(address: str) -> str:
    return f"bs:login:address:{address}"


def login_user(user: str) -> str:
    return f"bs:login:user:{user}"


def login_pair(user: str, address: str) -> str:
    return f"bs:login:pair:{user}:{address}"


def login_known(user: str) -> str:
    """Addresses an account logged in from (keyed hashes): their own gate."""
    return f"bs:login:known:{user}"


def oidc(kind: str, value: str) -> str:
    """A sign-in with the city's identity provider in flight (state, one-time cookies)."""
    return f"bs:oidc:{kind}:{value}"


# --- tickets ("leave a message") -------------------------------------------------------

TICKETS_COUNTER = "bs:tickets:counter"
TICKETS_OPEN = "bs:tickets:open"
TICKET_PREFIX = "bs:ticket:"


def ticket(ticket_id: str) -> str:
    return TICKET_PREFIX + ticket_id


# --- damage-report cases -----------------------------------------------------------------

CASE_PREFIX = "bs:case:{"


def case(number: str) -> str:
    return f"{CASE_PREFIX}{number}}}"


def case_history(number: str) -> str:
    return f"{case(number)}:history"


def case_numbers(year: str | int) -> str:
    """Set: keyed hashes of the case numbers issued in a year."""
    return f"bs:case-numbers:{year}"


CASE_LOOKUPS = "bs:case-lookups:{throttle}"  # prefix of the look-up throttle's keys

# --- applications (Anträge) from the portal's forms ------------------------------------

APPLICATION_PREFIX = "bs:application:{"


def application(number: str) -> str:
    """Hash: an application's fields, the upload's name, type and size, its conversation."""
    return f"{APPLICATION_PREFIX}{number}}}"


def application_upload(number: str) -> str:
    """String: the application's uploaded file (base64), kept exactly as long as the hash."""
    return f"{application(number)}:upload"


def application_keys(number: str) -> list[str]:
    """Every key named after one application."""
    return [application(number), application_upload(number)]


def application_numbers(year: str | int) -> str:
    """Set: keyed hashes of the application numbers issued in a year."""
    return f"bs:application-numbers:{year}"


def case_lookups_of_conversation(digest: str) -> str:
    return f"{CASE_LOOKUPS}:conversation:{digest}"


# --- limits, privacy, audit ----------------------------------------------------------------

LIMITS = "bs:limit"  # prefix of the `limits` library's windows


def privacy_requests(client: str) -> str:
    return f"bs:privacy-requests:{client}"


AUDIT = "bs:audit"
DELETIONS = "bs:deletions"

# --- Rasa ------------------------------------------------------------------------------------

# Rasa's tracker store keeps one key per conversation: this prefix + the conversation id.
RASA_TRACKER_PREFIX = "bs:rasa:tracker:"
# Rasa's lock store: a ticket lock per conversation while a turn runs (expires in minutes).
RASA_LOCK_PREFIX = "bs:rasa:lock:"


def in_script(script: str, **names: str) -> str:
    """A Lua script with each ``$NAME`` replaced by the name given for it, as a Lua string.

    A placeholder left over is a Lua syntax error, so a script never runs half-named.
    """
    for placeholder, name in names.items():
        if "'" in name or "\\" in name:
            raise ValueError(f"{name!r} cannot be put into a Lua script as it is")
        script = script.replace(f"${placeholder}", f"'{name}'")
    return script
