"""The store's change stream: `Change` records for subscribers, `Watch` for HTTP watchers.

A Watch turns changes into the events a client filtering by namespace and selectors sees: a
label change that moves an object into its selection is ADDED, out of it DELETED.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple

from kubehop.lab.selectors import FieldSelector, LabelSelector

Obj = dict[str, Any]


class Change(NamedTuple):
    """One change: `type` ADDED/MODIFIED/DELETED, the new `object` (the last state for DELETED),
    the previous state `old` (None for ADDED), and its resourceVersion `rv`."""

    type: str
    resource: str
    object: Obj
    old: Obj | None
    rv: int


class WatchEvent(NamedTuple):
    """What a watch yields: unpacks as `(type, obj)`."""

    type: str
    object: Obj


class Watch:
    """An HTTP-style watch on one resource: async-iterate `(type, obj)` events; `close()` ends it.

    Registered when created, so no change between creation and the first `await` is lost.
    """

    def __init__(
        self,
        on_close: Callable[[Watch], None],
        resource: str,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> None:
        self._on_close = on_close
        self.resource = resource
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self.closed = False

    def _matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        return self.labels.matches(meta.get("labels")) and self.fields.matches(obj)

    def offer(self, change: Change) -> None:
        """Queue the event this change means to this watcher (selector transitions included)."""
        if self.closed or change.resource != self.resource:
            return
        new_ok = change.type != "DELETED" and self._matches(change.object)
        old_ok = self._matches(change.old if change.type != "DELETED" else change.object)
        if change.type == "DELETED":
            if old_ok:
                self.queue.put_nowait(WatchEvent("DELETED", change.object))
        elif new_ok and old_ok:
            self.queue.put_nowait(WatchEvent("MODIFIED", change.object))
        elif new_ok:
            self.queue.put_nowait(WatchEvent("ADDED", change.object))
        elif old_ok:
            self.queue.put_nowait(WatchEvent("DELETED", change.object))

    def close(self) -> None:
        """Stop the watch; a pending `__anext__` ends the iteration."""
        if not self.closed:
            self.closed = True
            self._on_close(self)
            self.queue.put_nowait(None)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> WatchEvent:
        if self.closed and self.queue.empty():
            raise StopAsyncIteration
        event = await self.queue.get()
        if event is None:
            raise StopAsyncIteration
        return event
