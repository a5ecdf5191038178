"""List+watch caches over a `Reader`: the drain's pods and PDBs, the executor's nodes.

An `Informer` lists a collection (limit 500 + continue), then watches it from the list's
resourceVersion; when the watch breaks (connection lost, 410 Gone, server timeout) it lists
again and carries on, so no deletion is missed (client-go's reflector,
kubernetes/kubernetes staging/src/k8s.io/client-go/tools/cache/reflector.go, does the same).
Waiters register a predicate and wake when a change makes it true (no polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Generic, TypeVar

import aiohttp
import msgspec

from kubehop.shell.kube import wire
from kubehop.shell.kube.errors import ApiError, status_error
from kubehop.shell.kube.reader import Reader
from kubehop.shell.kube.requests import Request

T = TypeVar("T")
W = TypeVar("W", bound=msgspec.Struct)
WATCH_SECONDS = 240  # server-side watch timeout; the informer re-watches from the last version
_status = msgspec.json.Decoder(wire.StatusWire)


def _backoff(failures: int) -> float:
    return min(5.0, 0.1 * 2**failures) * (0.5 + random.random() / 2)


class Informer(Generic[W, T]):
    """A list+watch cache of one collection: objects decoded as `kind` (a wire struct with
    `metadata`), kept as `convert(object)`, keyed by `key(item)`."""

    def __init__(self, reader: Reader, request: Request, kind: type[W],
                 convert: Callable[[W], T], key: Callable[[T], str]) -> None:
        self.reader = reader
        self.request = request
        self.key = key
        self._convert = convert
        self._page = msgspec.json.Decoder(wire.ItemList[kind])  # type: ignore[valid-type]
        self._item = msgspec.json.Decoder(kind)
        self.items: dict[str, T] = {}
        self.ready = asyncio.Event()
        self.relists = 0  # how often the watch broke and the collection was listed again
        self.touched: dict[str, int] = {}  # key → `changes` when the item last changed
        self.changes = 0
        self._rv = ""
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._sleep = asyncio.sleep

    @property
    def path(self) -> str:
        return self.request.path

    def _decode_page(self, page: bytes) -> tuple[list[T], wire.ListMeta]:
        """The items of one list page, and its list metadata."""
        doc = self._page.decode(page)
        return [self._convert(o) for o in doc.items], doc.metadata

    def _decode_item(self, raw: bytes) -> tuple[T, str]:
        """One watched object and its resourceVersion."""
        obj = self._item.decode(raw)
        return self._convert(obj), obj.metadata.resourceVersion

    # --- running -----------------------------------------------------------------------------

    async def start(self) -> Informer[W, T]:
        """List once (raising on failure), then keep watching in the background."""
        await self._list()
        self._task = asyncio.create_task(self._run(), name=f"watch {self.path}")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _list(self) -> None:
        items: dict[str, T] = {}
        token = ""
        while True:
            decoded, meta = self._decode_page(await self.reader.page(self.request, token))
            items.update((self.key(i), i) for i in decoded)
            if not meta.continue_:
                break
            token = meta.continue_
        self.items, self._rv = items, meta.resourceVersion
        self.changes += 1
        self.touched = dict.fromkeys(items, self.changes)
        self.ready.set()
        self._notify()

    async def _run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self._watch()  # returns when the server ends the watch (timeoutSeconds)
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError, ValueError,
                    msgspec.DecodeError):
                failures += 1
                await self._sleep(_backoff(failures))
                with contextlib.suppress(ApiError):
                    self.relists += 1
                    await self._list()
                continue
            failures = failures + 1 if loop.time() - started < 1.0 else 0
            if failures:  # a server that ends watches at once must not be hammered
                await self._sleep(_backoff(failures))

    async def _watch(self) -> None:
        async for line in self.reader.watch(self.request, self._rv, WATCH_SECONDS):
            event = wire.watch_event.decode(line)
            if event.type == "ERROR":  # 410 Gone: our version is too old; list again
                status = _status.decode(event.object)
                raise status_error(f"watch {self.path}: {status.message}", status.code,
                                   status.reason)
            if event.type == "BOOKMARK":
                rv = wire.watch_bookmark.decode(event.object).metadata.resourceVersion
                self._rv = rv or self._rv
                continue
            item, rv = self._decode_item(bytes(event.object))
            if rv:
                self._rv = rv
            key = self.key(item)
            if event.type == "DELETED":
                self.items.pop(key, None)
            else:
                self.items[key] = item
            self.changes += 1
            self.touched[key] = self.changes
            self._notify()

    # --- waiting -----------------------------------------------------------------------------

    def _notify(self) -> None:
        still = []
        for predicate, fut in self._waiters:
            if fut.done():
                continue
            if predicate():
                fut.set_result(None)
            else:
                still.append((predicate, fut))
        self._waiters = still

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until `predicate()` holds after some change (or now); False on timeout."""
        if predicate():
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return predicate()
        finally:
            fut.cancel()
        return True
