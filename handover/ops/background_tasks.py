"""Tasks a component starts and does not await, kept until they end.

The event loop holds tasks only weakly, so a started task must be referenced
somewhere or it may vanish mid-way; and a failure nobody awaits must still be
logged. Shutdown waits for the tasks (a bot turn in flight) or cancels them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class BackgroundTasks:
    def __init__(self, on_failure: Callable[[BaseException], None]) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_failure = on_failure

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._on_failure(exc)

    async def wait(self, timeout: float) -> None:
        """Let the running tasks finish, for at most `timeout` seconds."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    def running(self) -> list[asyncio.Task[None]]:
        return list(self._tasks)
