"""The Redis address when Sentinel manages the primary: `redis+sentinel://h1:p1,h2:p2/service`.

Standard library only: Rasa's tracker and lock stores (the bot environment) read it too.
Every process connects to whichever primary the sentinels name, and after a failover to
the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

SCHEME = "redis+sentinel://"


@dataclass(frozen=True, slots=True)
class SentinelAddress:
    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    password: str | None = None  # of the primary and its replicas


def sentinel_url(sentinels: str, service: str) -> str:
    """The URL of REDIS_SENTINELS ("host:port,host:port") and the service name."""
    return f"{SCHEME}{sentinels.replace(' ', '')}/{service}"


def parse_sentinel_url(url: str) -> SentinelAddress | None:
    """The address in a `redis+sentinel://` URL; None for any other URL."""
    if not url.startswith(SCHEME):
        return None
    rest = url[len(SCHEME) :]
    password = None
    if "@" in rest:
        userinfo, rest = rest.rsplit("@", 1)
        password = unquote(userinfo.partition(":")[2]) or None
    hosts, _, path = rest.partition("/")
    service, _, db = path.partition("/")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ValueError(f"A sentinel must be host:port, not {host!r}")
        sentinels.append((name.strip("[]"), int(port)))
    if not service:
        raise ValueError("The sentinel URL names no service: redis+sentinel://h:p,…/service")
    return SentinelAddress(sentinels, service, int(db or 0), password)
