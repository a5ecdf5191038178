"""The lab's in-memory object store: plain JSON dicts keyed by (resource, namespace, name).

Resources are named like the API (`pods`, `nodes`, `deployments.apps`,
`clusters.postgresql.cnpg.io`); cluster-scoped objects have namespace "". One global
resourceVersion counts every change. Stored objects are never mutated in place: `get` returns a
private copy, `list` returns the stored dicts themselves (read them, never change them), and every
write replaces the whole object. Controllers subscribe with `subscribe(callback)` (called
synchronously, in order, after each change); HTTP watchers use `watch(...)`, replayed from a
bounded history (too old → `Gone`). Pods are indexed by namespace and by `spec.nodeName` so 150k
pods on 5,000 nodes stay cheap to page and to select per node; open watches are indexed the same
way (`watches.Watches`), so a change costs the same with one watch open or a thousand, and the
history is kept per resource too, so resuming a watch replays only its resource's tail.
"""

from __future__ import annotations

import bisect
import itertools
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from kubehop.lab.api.buckets import DEFAULT_INDEXES, Bucket
from kubehop.lab.api.paging import ListResult, bisect_after, decode_continue, encode_continue
from kubehop.lab.api.selectors import FieldSelector, LabelQuery
from kubehop.lab.api.status import (
    AlreadyExists,
    BadRequest,
    ConflictStatus,
    GoneStatus,
    Invalid,
    NotFoundStatus,
)
from kubehop.lab.api.watches import Change, StoreWatchEvent, Watch, Watches

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)

# Resources whose spec changes bump metadata.generation (their controllers report
# status.observedGeneration).
GENERATION_RESOURCES = frozenset(
    {
        "deployments.apps",
        "replicasets.apps",
        "daemonsets.apps",
        "statefulsets.apps",
        "poddisruptionbudgets.policy",
        "clusters.postgresql.cnpg.io",
    }
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def clone(obj: Obj) -> Obj:
    """A deep copy of a JSON object (a msgspec round trip: several times faster than deepcopy)."""
    return _decode(_encode(obj))


def _now() -> datetime:
    return datetime.now(UTC)


def format_time(t: datetime) -> str:
    """RFC 3339 at second precision, as metav1.Time serializes."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rv_of(change: Change) -> int:
    return change.rv


def _key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class Store:
    """In-memory objects, one resourceVersion counter, change history, watches, subscribers."""

    def __init__(
        self,
        *,
        history_limit: int = 20_000,
        clock: Callable[[], datetime] = _now,
        uid_factory: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._buckets: dict[str, Bucket] = {}
        self._rv = 0
        self._history: deque[Change] = deque(maxlen=history_limit)
        self._compacted = 0  # changes with rv <= this are no longer in the history
        # The same changes per resource, so a watch replays only its resource's.
        self._history_of: dict[str, deque[Change]] = {}
        self._watches = Watches()
        self._subscribers: list[Callable[[Change], None]] = []
        self._pending: deque[Change] = deque()
        self._dispatching = False
        self.clock = clock
        self.uid_factory = uid_factory

    # --- bookkeeping ---------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion handed out."""
        return self._rv

    def _bucket(self, resource: str) -> Bucket:
        b = self._buckets.get(resource)
        if b is None:
            b = self._buckets[resource] = Bucket(DEFAULT_INDEXES.get(resource, {}))
        return b

    def add_index(self, resource: str, name: str, fn: Callable[[Obj], str | None]) -> None:
        """Index `resource` by `fn(obj)`; a field selector `name=value` then uses the index."""
        self._bucket(resource).add_index(name, fn)

    def resources(self) -> list[str]:
        """Resources that hold objects."""
        return sorted(r for r, b in self._buckets.items() if b.objects)

    def count(self, resource: str, namespace: str | None = None) -> int:
        """How many objects of `resource` (in `namespace`, if given) exist."""
        b = self._bucket(resource)
        if namespace is None:
            return len(b.objects)
        return len(b.by_ns.get(namespace, {}))

    def _record(self, change: Change) -> None:
        history = self._history
        if len(history) == history.maxlen:
            oldest = history[0]
            self._compacted = oldest.rv
            self._history_of[oldest.resource].popleft()  # also the oldest of its resource
        history.append(change)
        mine = self._history_of.get(change.resource)
        if mine is None:
            mine = self._history_of[change.resource] = deque()
        mine.append(change)
        self._watches.offer(change)
        if not self._subscribers:
            return
        self._pending.append(change)
        if self._dispatching:
            return  # a subscriber wrote to the store: deliver after the current change, in order
        self._dispatching = True
        try:
            while self._pending:
                c = self._pending.popleft()
                for cb in list(self._subscribers):
                    cb(c)
        finally:
            self._dispatching = False
            self._pending.clear()

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    # --- reads -----------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        """A private deep copy of one object; NotFound if absent."""
        obj = self._bucket(resource).objects.get((namespace or "", name))
        if obj is None:
            raise NotFoundStatus(resource, name)
        return clone(obj)

    def peek(self, resource: str, namespace: str, name: str) -> Obj | None:
        """The stored object itself (read-only) or None: cheap existence checks for controllers."""
        b = self._buckets.get(resource)
        return None if b is None else b.objects.get((namespace or "", name))

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: LabelQuery | str | None = None,
        field_selector: FieldSelector | str | None = None,
        *,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        """Objects in key order (namespace, name), filtered, optionally one page at a time.

        `namespace` None means all namespaces. With `limit`, the result carries a continue token
        while more keys remain (like etcd, the last page may then be empty).
        """
        labels = _as_labels(label_selector)
        fields = _as_fields(field_selector, resource)
        b = self._bucket(resource)
        keys, source, plain = b.candidates(namespace, fields)
        rv = self._rv
        start = 0
        if continue_token:
            rv, after = decode_continue(continue_token)
            start = bisect_after(keys, after)
        keys_list = keys if isinstance(keys, list) else list(keys)
        filtered = not (labels.empty and fields.empty)
        items: list[Obj] = []
        i = start
        n = len(keys_list)
        while i < n and (limit is None or limit <= 0 or len(items) < limit):
            obj = source.get(keys_list[i])
            i += 1
            if obj is None:
                continue
            if filtered and not (
                labels.matches(obj["metadata"].get("labels")) and fields.matches(obj)
            ):
                continue
            items.append(obj)
        token = encode_continue(rv, keys_list[i - 1]) if i < n and items else ""
        remaining = n - i if token and plain and not filtered else None
        return ListResult(items, str(rv if continue_token else self._rv), token, remaining)

    def iter(self, resource: str, namespace: str | None = None) -> Iterator[Obj]:
        """Every stored object of `resource` (read-only, unordered): the cheap controller scan."""
        b = self._bucket(resource)
        if namespace is None:
            return iter(list(b.objects.values()))
        return iter(list(b.by_ns.get(namespace, {}).values()))

    def by_index(self, resource: str, index: str, value: str) -> list[Obj]:
        """Stored objects whose index `index` has `value` (e.g. pods by `spec.nodeName`)."""
        return list(self._bucket(resource).indexes.get(index, {}).get(value, {}).values())

    # --- writes ----------------------------------------------------------------------------

    def create(self, resource: str, obj: Obj, *, adopt: bool = False) -> Obj:
        """Store a new object; sets uid, creationTimestamp, resourceVersion (and generation).

        The store keeps a copy of `obj` and returns another; with `adopt=True` (bulk loading)
        it keeps `obj` itself, which the caller must no longer touch, and returns it.
        `metadata.generateName` is honoured when `name` is empty.
        """
        if not adopt:
            obj = clone(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise Invalid(resource, obj.get("kind", ""), "",
                          [("metadata.name", "Required value: name or generateName is required")])
        key = _key_of(obj)
        b = self._bucket(resource)
        if key in b.objects:
            raise AlreadyExists(resource, key[1])
        meta.setdefault("uid", self.uid_factory())
        meta.setdefault("creationTimestamp", format_time(self.clock()))
        if resource in GENERATION_RESOURCES:
            meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        meta["resourceVersion"] = str(self._next_rv())
        b.put(key, obj, None)
        self._record(Change("ADDED", resource, obj, None, self._rv))
        return obj if adopt else clone(obj)

    def update(self, resource: str, obj: Obj) -> Obj:
        """Replace an object; a `metadata.resourceVersion` that is not current → Conflict.

        Immutable metadata (uid, creationTimestamp) is carried over; generation increases when
        `spec` changed. Returns a copy of what was stored.
        """
        return self._update(resource, clone(obj))

    def _update(self, resource: str, obj: Obj) -> Obj:
        """`update` of an object the store may keep (a private copy nobody else holds)."""
        key = _key_of(obj)
        b = self._bucket(resource)
        old = b.objects.get(key)
        if old is None:
            raise NotFoundStatus(resource, key[1])
        meta = obj.setdefault("metadata", {})
        old_meta = old["metadata"]
        wanted = meta.get("resourceVersion")
        if wanted and wanted != old_meta["resourceVersion"]:
            raise ConflictStatus(resource, key[1])
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise ConflictStatus(resource, key[1], "Precondition failed: UID in precondition: "
                                 f"{meta['uid']}, UID in object meta: {old_meta['uid']}")
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if k in old_meta and k not in meta:
                meta[k] = old_meta[k]
        if resource in GENERATION_RESOURCES:
            gen = old_meta.get("generation", 1)
            meta["generation"] = gen + 1 if obj.get("spec") != old.get("spec") else gen
        meta["resourceVersion"] = str(self._next_rv())
        b.put(key, obj, old)
        self._record(Change("MODIFIED", resource, obj, old, self._rv))
        return clone(obj)

    def mutate(
        self,
        resource: str,
        namespace: str,
        name: str,
        fn: Callable[[Obj], Obj | None],
    ) -> Obj:
        """Read-modify-write: `fn` gets a private copy, changes it in place (or returns a new
        object); the result is stored unless it equals the current object (no new rv then)."""
        stored = self._bucket(resource).objects.get((namespace or "", name))
        if stored is None:
            raise NotFoundStatus(resource, name)
        current = clone(stored)
        result = fn(current)
        new = current if result is None else result
        # Stored objects are never changed in place, so `stored` is still the state `fn` started
        # from; and they are plain JSON data (every write stores a msgspec round trip, fixtures
        # build JSON), so comparing with it is comparing with a fresh copy of it.
        if new == stored:
            return current if new is current else clone(stored)
        new.setdefault("metadata", {})["resourceVersion"] = stored["metadata"]["resourceVersion"]
        # `current` is ours alone: store it as is; an object `fn` built may share parts with
        # its caller, so that one is copied.
        return self._update(resource, new if new is current else clone(new))

    def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Remove an object now (preconditions on uid / resourceVersion → Conflict).

        Returns the last state, with the deletion's resourceVersion.
        """
        key = (namespace or "", name)
        b = self._bucket(resource)
        old = b.objects.get(key)
        if old is None:
            raise NotFoundStatus(resource, name)
        meta = old["metadata"]
        if uid and uid != meta.get("uid"):
            raise ConflictStatus(resource, name, "Precondition failed: UID in precondition: "
                                 f"{uid}, UID in object meta: {meta.get('uid')}")
        if resource_version and resource_version != meta.get("resourceVersion"):
            raise ConflictStatus(resource, name)
        b.remove(key, old)
        last = dict(old)
        last["metadata"] = dict(meta, resourceVersion=str(self._next_rv()))
        self._record(Change("DELETED", resource, last, old, self._rv))
        return clone(last)

    # --- change streams --------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call `callback(change)` synchronously after every change; returns an unsubscriber.

        Writes a callback makes are delivered after the current change, so every subscriber
        sees changes in resourceVersion order.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def watch(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        resource_version: str | int | None = None,
        label_selector: LabelQuery | str | None = None,
        field_selector: FieldSelector | str | None = None,
    ) -> Watch:
        """Start a watch; iterate it with `async for type, obj in watch`.

        No (or "0") resourceVersion: ADDED for every current object first, then changes. A
        resourceVersion N: every change after N from the history; N older than the retained
        history → Gone ("too old resource version").
        """
        labels = _as_labels(label_selector)
        fields = _as_fields(field_selector, resource)
        w = Watch(self._watches.discard, resource, namespace, labels, fields)
        rv = int(resource_version) if resource_version not in (None, "", "0", 0) else None
        if rv is None:
            for obj in self.list(resource, namespace, labels, fields).items:
                w.queue.put_nowait(StoreWatchEvent("ADDED", obj))
        else:
            if rv < self._compacted:
                raise GoneStatus(f"too old resource version: {rv} ({self._compacted + 1})")
            # The resource's history is in rv order: replay only its tail after rv (walked
            # from the right: watches resume near the head).
            history = self._history_of.get(resource)
            if history:
                newer = len(history) - bisect.bisect_right(history, rv, key=_rv_of)
                self._watches.replay(w, reversed(list(itertools.islice(reversed(history), newer))))
        self._watches.add(w)
        return w

    def close_watches(self) -> None:
        """End every watch (server shutdown)."""
        for w in list(self._watches):
            w.close()


def _as_labels(sel: LabelQuery | str | None) -> LabelQuery:
    if isinstance(sel, LabelQuery):
        return sel
    try:
        return LabelQuery.parse(sel)
    except ValueError as e:
        raise BadRequest(str(e)) from e


def _as_fields(sel: FieldSelector | str | None, resource: str) -> FieldSelector:
    if isinstance(sel, FieldSelector):
        return sel
    try:
        return FieldSelector.parse(sel, resource)
    except ValueError as e:
        raise BadRequest(str(e)) from e
