"""One background task that handles items in order: executor progress callbacks are plain
functions, and what they set off (a webhook post, a Node annotation) must neither block the run
nor be reordered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class InOrder(Generic[T]):
    """`put` queues an item for `handle` (started on the first item); `close` waits for the
    queue to drain for at most `timeout` seconds, then says `gave_up` through `warn`."""

    def __init__(self, handle: Callable[[T], Awaitable[None]], *, timeout: float,
                 warn: Callable[[str], None], gave_up: str) -> None:
        self._handle = handle
        self._timeout = timeout
        self._warn = warn
        self._gave_up = gave_up
        self._queue: asyncio.Queue[tuple[T] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def put(self, item: T) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._worker())
        self._queue.put_nowait((item,))

    async def _worker(self) -> None:
        while (entry := await self._queue.get()) is not None:
            await self._handle(entry[0])

    async def close(self) -> None:
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self._timeout)
        except TimeoutError:
            self._warn(self._gave_up)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
