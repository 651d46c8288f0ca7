"""Real processes for the tests: redis-server, the Rasa server, the action server, the gateway.

Each is started once per test session on a free port and stopped at the end.
Nothing is mocked: the gateway under test is the `python -m handover` process a
user runs, talking to a real Redis and a real trained Rasa model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from handover.conversation.log import ConversationLog
from handover.ops.redis_connection import connect
from handover.settings import Settings
from tests.services import (
    Service,
    actions_ready,
    free_port,
    rasa_ready,
    start_actions,
    start_gateway,
    start_rasa,
    start_redis,
)


@pytest.fixture(scope="session")
def service_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_server(service_dir: Path) -> Iterator[Service]:
    service = start_redis(service_dir)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: Service) -> str:
    return f"redis://127.0.0.1:{redis_server.port}/0"


@pytest.fixture(scope="session")
def gateway_port() -> int:
    """Chosen before anything starts: the action server must know where the gateway will be."""
    return free_port()


@pytest.fixture(scope="session")
def bot_servers(
    service_dir: Path, gateway_port: int, redis_url: str
) -> Iterator[tuple[Service, Service]]:
    """The action server and Rasa, loading side by side (each takes seconds of its own)."""
    actions = start_actions(service_dir, f"http://127.0.0.1:{gateway_port}", wait=False)
    with ExitStack() as stop:
        stop.callback(actions.stop)
        # Rasa keeps its trackers in the tests' Redis, as `make run`'s in the gateway's.
        rasa = start_rasa(service_dir, actions, redis_url, wait=False)
        stop.callback(rasa.stop)
        yield actions_ready(actions), rasa_ready(rasa)


@pytest.fixture(scope="session")
def action_server(bot_servers: tuple[Service, Service]) -> Service:
    return bot_servers[0]


@pytest.fixture(scope="session")
def rasa_server(bot_servers: tuple[Service, Service]) -> Service:
    return bot_servers[1]


@pytest.fixture(scope="session")
def gateway(
    service_dir: Path, redis_url: str, rasa_server: Service, gateway_port: int
) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway", redis_url, rasa_server.port, port=gateway_port)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def ws_url(gateway: Service) -> str:
    return f"ws://127.0.0.1:{gateway.port}/ws/chat"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the session's redis-server, as every app process connects (decoded)."""
    client = connect(Settings(redis_url=redis_url))
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def store(redis_url: str) -> Iterator[SyncRedis]:
    """A plain (synchronous) client of the session's Redis, to look at what was stored."""
    client = SyncRedis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def log(redis: Redis) -> Iterator[ConversationLog]:
    """A conversation log (retention an hour) that holds, until the test ends, what a test
    puts in `log.held` (as a socket holds its conversation: its first event stores it)."""
    log = ConversationLog(redis, 3600)
    with ExitStack() as held:
        log.held = held  # type: ignore[attr-defined]
        yield log


@pytest.fixture(scope="session")
def alina_account(redis_url: str) -> None:
    """Alina's account (agent of general and bauamt): the channel tests' person to hand over to."""
    from tests.test_handover import add_agent

    done = add_agent(redis_url, "alina", "Alina Berger", "--skills", "general,bauamt",
                     "--capacity", "20")  # fmt: skip
    assert done.returncode == 0, done.stderr
