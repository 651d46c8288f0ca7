"""The assistant the benchmarks measure: real Redis, actions, Rasa and (optionally) gateway."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.services import (
    Service,
    free_port,
    start_actions,
    start_gateway,
    start_rasa,
    start_redis,
)


@dataclass(frozen=True)
class Assistant:
    rasa: Service
    gateway: Service | None
    redis_url: str | None = None


@contextmanager
def running_assistant(
    prefix: str, with_gateway: bool = True, env: Mapping[str, str] | None = None
) -> Iterator[Assistant]:
    """Start the processes in a fresh folder; stop them (last started first) on the way out.

    `env` is extra settings for the action server and the gateway, e.g.
    `{"KNOWLEDGE_SOURCE": ...}` to answer from another catalogue (Rasa needs none of them).
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    extra = dict(env or {})
    with ExitStack() as started:

        def keep(service: Service) -> Service:
            started.callback(service.stop)
            return service

        # Rasa keeps its trackers in Redis, with or without the gateway.
        redis = keep(start_redis(tmp))
        redis_url = f"redis://127.0.0.1:{redis.port}/0"
        # Chosen first: the action server reaches the case API on the gateway.
        gateway_port = free_port()
        actions = keep(start_actions(tmp, f"http://127.0.0.1:{gateway_port}", env=extra))
        rasa = keep(start_rasa(tmp, actions, redis_url))
        gateway = None
        if with_gateway:
            gateway = keep(start_gateway(
                tmp, "gateway", redis_url, rasa.port,
                env={"LOG_LEVEL": "warning", "CITIZEN_MESSAGE_LIMITS": "100/10 seconds",
                     **extra},
                port=gateway_port,
            ))  # fmt: skip
        redis_url = f"redis://127.0.0.1:{redis.port}/0" if redis is not None else None
        yield Assistant(rasa=rasa, gateway=gateway, redis_url=redis_url)
