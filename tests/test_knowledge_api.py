"""Agents search the city's knowledge index over HTTP: real gateway, real index, real login."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.services import Service, start_gateway
from tests.test_handover import PASSWORD, agents  # noqa: F401

pytestmark = pytest.mark.rasa

SOLAR = "Brauche ich für eine Solaranlage auf dem Dach eine Genehmigung?"


@pytest.fixture(scope="module")
def token(gateway: Service, agents: None) -> str:  # noqa: F811
    response = httpx.post(
        f"{gateway.url}/api/agent/login", json={"username": "alina", "password": PASSWORD}
    )
    return str(response.json()["token"])


async def search(base_url: str, token: str | None, **params: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient(timeout=120) as client:
        return await client.get(f"{base_url}/api/knowledge/search", params=params, headers=headers)


async def test_an_agent_finds_the_passage_with_its_link(gateway: Service, token: str) -> None:
    response = await search(gateway.url, token, q=SOLAR)
    assert response.status_code == 200
    passages = response.json()
    assert 1 <= len(passages) <= 5
    assert set(passages[0]) == {"title", "url", "section", "text", "score"}
    assert "Photovoltaik" in passages[0]["title"]
    assert passages[0]["url"].startswith("https://")
    assert passages[0]["text"]
    scores = [p["score"] for p in passages]
    assert scores == sorted(scores, reverse=True)

    fewer = await search(gateway.url, token, q=SOLAR, k=2)
    assert len(fewer.json()) == 2


async def test_without_a_valid_agent_token_there_is_no_search(gateway: Service) -> None:
    assert (await search(gateway.url, None, q=SOLAR)).status_code == 401
    refused = await search(gateway.url, "forged", q=SOLAR)
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"


@pytest.mark.parametrize("query", [{"q": ""}, {"q": "   "}, {}])
async def test_an_empty_query_is_refused(
    gateway: Service, token: str, query: dict[str, str]
) -> None:
    response = await search(gateway.url, token, **query)
    assert response.status_code == 422
    assert response.json()["field"] == "q"


async def test_k_out_of_range_is_refused(gateway: Service, token: str) -> None:
    assert (await search(gateway.url, token, q=SOLAR, k=0)).status_code == 422
    assert (await search(gateway.url, token, q=SOLAR, k=500)).status_code == 422


async def test_without_a_built_index_the_search_says_so(
    service_dir: Path, redis_url: str, rasa_server: Service, token: str, tmp_path: Path
) -> None:
    gateway = start_gateway(
        service_dir, "gateway-without-knowledge", redis_url, rasa_server.port,
        env={"KNOWLEDGE_DIR": str(tmp_path)},
    )  # fmt: skip
    try:
        response = await search(gateway.url, token, q=SOLAR)
    finally:
        gateway.stop()
    assert response.status_code == 503
    assert response.json() == {
        "error": "knowledge_unavailable",
        "message": "Für die Wissenssuche ist kein Index gebaut (make knowledge).",
    }
