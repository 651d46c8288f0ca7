"""Knowledge search for agents: `GET /api/knowledge/search?q=…&k=5` (docs/protocol.md).

Agents look the citizen's question up in the same index the bot answers from,
so what they tell the citizen matches what the bot said. The gateway must not
pay for torch and the encoder (≈ 375 MB, seconds of loading) unless someone
searches: the index is loaded on the first search, off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, TypedDict

import structlog
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from handover.agents.auth import bearer_token
from handover.settings import Settings

if TYPE_CHECKING:
    from knowledge_index.search import KnowledgeIndex

log = structlog.get_logger(__name__)

MAX_QUERY_CHARS = 1000
MAX_RESULTS = 20


class Passage(TypedDict):
    """One search result: the service, the passage that fits the question best, its score."""

    title: str
    url: str
    section: str
    text: str
    score: float


class KnowledgeUnavailable(Exception):
    """No index has been built for the configured source, or it cannot be loaded."""


class KnowledgeSearch:
    """The configured index, loaded on first use.

    Loading and searching run on one worker thread of their own: the encoder's
    tokenizer must not be called from several threads at once, and one thread
    keeps a burst of searches from taking both cores away from the sockets.
    A failed load is not remembered, so an index built later is found.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._index: KnowledgeIndex | None = None
        self._loading = asyncio.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="knowledge")

    async def search(self, query: str, k: int = 5) -> list[Passage]:
        """The `k` best services for `query`, whatever the bot's confidence band."""
        index = await self._loaded()
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._worker, index.search, query, k)
        return [
            Passage(
                title=hit.title,
                url=hit.url,
                section=hit.passage.section,
                text=hit.passage.text,
                score=round(hit.score, 4),
            )
            for hit in result.hits
        ]

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)

    async def _loaded(self) -> KnowledgeIndex:
        async with self._loading:
            if self._index is None:
                loop = asyncio.get_running_loop()
                self._index = await loop.run_in_executor(self._worker, self._load)
            return self._index

    def _load(self) -> KnowledgeIndex:
        from knowledge_index.store import CURRENT, index_root

        path = index_root(self._settings.knowledge_dir, self._settings.knowledge_source) / CURRENT
        if not path.exists():
            log.error("knowledge_index_missing", path=str(path))
            raise KnowledgeUnavailable(
                "Für die Wissenssuche ist kein Index gebaut (make knowledge)."
            )
        started = time.perf_counter()
        try:
            from knowledge_index.search import KnowledgeIndex

            index = KnowledgeIndex.load(path)
        except Exception as exc:
            log.exception("knowledge_index_unloadable", path=str(path))
            raise KnowledgeUnavailable("Der Wissensindex kann nicht geladen werden.") from exc
        log.info(
            "knowledge_index_loaded",
            path=str(path),
            seconds=round(time.perf_counter() - started, 1),
        )
        return index


def add_knowledge_api(app: FastAPI, settings: Settings) -> KnowledgeSearch:
    """Mount the agents' knowledge search on the gateway's app."""
    knowledge = KnowledgeSearch(settings)

    @app.get("/api/knowledge/search")
    async def knowledge_search(
        request: Request,
        q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
        k: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 5,
    ) -> JSONResponse:
        token = bearer_token(request.headers.get("authorization"))
        agent = await request.app.state.auth.agent_for(token) if 0 < len(token) <= 512 else None
        if agent is None:
            return JSONResponse(
                {"error": "unauthorized", "message": "Bitte melden Sie sich an."}, status_code=401
            )
        if not q.strip():
            return JSONResponse(
                {
                    "error": "invalid",
                    "field": "q",
                    "message": "Bitte geben Sie einen Suchbegriff ein.",
                },
                status_code=422,
            )
        try:
            passages = await knowledge.search(q, k)
        except KnowledgeUnavailable as exc:
            return JSONResponse(
                {"error": "knowledge_unavailable", "message": str(exc)}, status_code=503
            )
        return JSONResponse(passages)

    return knowledge
