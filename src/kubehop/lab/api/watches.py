"""The store's change stream: `Change` records for subscribers, `Watch` for HTTP watchers.

A Watch turns changes into the events a client filtering by namespace and selectors sees: a
label change that moves an object into its selection is ADDED, out of it DELETED.

`Watches` routes each change only to the watches that may care, so a change costs the same with
one watch open or a thousand (a drain of 100 nodes opens one pod watch per node): watches are
grouped by resource, then by the value a field selector pins on a routed field (a pod watch
with `spec.nodeName=X`, any watch with `metadata.name=Y`), else by namespace, else kept in the
resource's catch-all set. A watch pinned to `f=v` can only see an event for a change whose new
or previous object has `f` equal to `v` (its selector matches neither otherwise), so the change
is offered to the watches under the old value and the new one; that covers selector transitions
(a pod bound to a node is ADDED to that node's watch; one whose nodeName moves is DELETED from
the old node's watch). A namespaced watch likewise only matches objects of its namespace, and
an object's namespace never changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from kubehop.lab.api.selectors import FieldSelector, LabelQuery, field_getter

Obj = dict[str, Any]

# Fields whose equality selector routes changes to a watch, most selective first, per resource
# (the fields must be selectable on it: see selectors.SELECTABLE_FIELDS).
_COMMON_ROUTED = ("metadata.name",)
ROUTED_FIELDS: dict[str, tuple[str, ...]] = {"pods": ("metadata.name", "spec.nodeName")}
_GETTERS = {f: field_getter(f) for fs in (_COMMON_ROUTED, *ROUTED_FIELDS.values()) for f in fs}


class Change(NamedTuple):
    """One change: `type` ADDED/MODIFIED/DELETED, the new `object` (the last state for DELETED),
    the previous state `old` (None for ADDED), and its resourceVersion `rv`."""

    type: str
    resource: str
    object: Obj
    old: Obj | None
    rv: int


class StoreWatchEvent(NamedTuple):
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
        labels: LabelQuery,
        fields: FieldSelector,
    ) -> None:
        self._on_close = on_close
        self.resource = resource
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.queue: asyncio.Queue[StoreWatchEvent | None] = asyncio.Queue()
        self.closed = False
        # The routed field and value its field selector pins, if any (see `Watches`).
        self.route: tuple[str, str] | None = None
        for field in ROUTED_FIELDS.get(resource, _COMMON_ROUTED):
            value = fields.equality_value(field)
            if value is not None:
                self.route = (field, value)
                break

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
                self.queue.put_nowait(StoreWatchEvent("DELETED", change.object))
        elif new_ok and old_ok:
            self.queue.put_nowait(StoreWatchEvent("MODIFIED", change.object))
        elif new_ok:
            self.queue.put_nowait(StoreWatchEvent("ADDED", change.object))
        elif old_ok:
            self.queue.put_nowait(StoreWatchEvent("DELETED", change.object))

    def pending(self, limit: int = 256) -> list[StoreWatchEvent]:
        """Up to `limit` events already queued, taken without waiting (a server writes them
        with the one it awaited); the end of the watch stays queued for `__anext__`."""
        out: list[StoreWatchEvent] = []
        queue = self.queue
        while len(out) < limit and not queue.empty():
            event = queue.get_nowait()
            if event is None:
                queue.put_nowait(None)
                break
            out.append(event)
        return out

    def close(self) -> None:
        """Stop the watch; a pending `__anext__` ends the iteration."""
        if not self.closed:
            self.closed = True
            self._on_close(self)
            self.queue.put_nowait(None)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> StoreWatchEvent:
        if self.closed and self.queue.empty():
            raise StopAsyncIteration
        event = await self.queue.get()
        if event is None:
            raise StopAsyncIteration
        return event


class _Routes:
    """The open watches of one resource, filed by routed field value, by namespace, or neither."""

    __slots__ = ("by_field", "by_ns", "rest")

    def __init__(self) -> None:
        self.rest: set[Watch] = set()  # all namespaces, no routed field pinned
        self.by_ns: dict[str, set[Watch]] = {}  # namespace → its watches (no routed field pinned)
        self.by_field: dict[str, dict[str, set[Watch]]] = {}  # field → value → watches

    def slot(self, w: Watch) -> tuple[dict[str, set[Watch]] | None, str]:
        if w.route is not None:
            field, value = w.route
            return self.by_field.setdefault(field, {}), value
        if w.namespace:
            return self.by_ns, w.namespace
        return None, ""

    def empty(self) -> bool:
        return not (self.rest or self.by_ns or any(self.by_field.values()))


class Watches:
    """The open watches, indexed so that `offer(change)` reaches only those that may care."""

    def __init__(self) -> None:
        self._routes: dict[str, _Routes] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Watch]:
        """Every open watch (a snapshot: closing them while iterating is fine)."""
        out: list[Watch] = []
        for r in self._routes.values():
            out.extend(r.rest)
            for ws in r.by_ns.values():
                out.extend(ws)
            for slots in r.by_field.values():
                for ws in slots.values():
                    out.extend(ws)
        return iter(out)

    def add(self, w: Watch) -> None:
        """File `w` under its resource and its route (pinned field value, or namespace)."""
        r = self._routes.get(w.resource)
        if r is None:
            r = self._routes[w.resource] = _Routes()
        table, key = r.slot(w)
        ws = r.rest if table is None else table.setdefault(key, set())
        if w not in ws:
            ws.add(w)
            self._count += 1

    def discard(self, w: Watch) -> None:
        """Forget `w` (no-op if it is not open)."""
        r = self._routes.get(w.resource)
        if r is None:
            return
        table, key = r.slot(w)
        ws = r.rest if table is None else table.get(key)
        if ws is None or w not in ws:
            return
        ws.remove(w)
        self._count -= 1
        if table is not None and not ws:
            del table[key]
        if r.empty():
            del self._routes[w.resource]

    def offer(self, change: Change) -> None:
        """Offer `change` to every watch whose selection its new or previous object may be in."""
        r = self._routes.get(change.resource)
        if r is None:
            return
        obj, old = change.object, change.old
        if r.rest:
            for w in list(r.rest):
                w.offer(change)
        if r.by_ns:
            ws = r.by_ns.get((obj.get("metadata") or {}).get("namespace") or "")
            if ws:
                for w in list(ws):
                    w.offer(change)
        for field, slots in r.by_field.items():
            if not slots:
                continue
            get = _GETTERS[field]
            value = get(obj)
            ws = slots.get(value)
            if ws:
                for w in list(ws):
                    w.offer(change)
            if old is not None and old is not obj:
                before = get(old)
                if before != value and (ws := slots.get(before)):
                    for w in list(ws):
                        w.offer(change)

    @staticmethod
    def replay(w: Watch, changes: Iterable[Change]) -> None:
        """Offer `w` past `changes` of its resource, skipping those its route rules out."""
        if w.route is None:
            for change in changes:
                w.offer(change)
            return
        field, value = w.route
        get = _GETTERS[field]
        for change in changes:
            if get(change.object) == value or (
                change.old is not None and get(change.old) == value
            ):
                w.offer(change)
