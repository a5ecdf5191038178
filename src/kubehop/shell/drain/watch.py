"""List+watch caches for the drain loop: the pods on one node, the PDBs of one namespace.

An `Informer` lists a collection (limit 500 + continue), then watches it from the list's
resourceVersion; when the watch breaks (connection lost, 410 Gone, server timeout) it lists
again and carries on, so no deletion is missed. Waiters register a predicate and wake when a
change makes it true (no polling). Pods are decoded with msgspec into small structs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import aiohttp
import msgspec

from kubehop.core.drain.explain import PdbInfo, pdb_from_dict
from kubehop.core.drain.rules import pod_from_dict
from kubehop.model.cluster import PodInfo
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.errors import ApiError

T = TypeVar("T")
WATCH_SECONDS = 240  # server-side watch timeout; the informer re-watches from the last version


class _Owner(msgspec.Struct):
    kind: str = ""
    name: str = ""
    controller: bool | None = None


class _Meta(msgspec.Struct, omit_defaults=True):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    ownerReferences: list[_Owner] | None = None
    deletionTimestamp: str | None = None


class _Volume(msgspec.Struct, omit_defaults=True):
    emptyDir: dict[str, Any] | None = None


class _Spec(msgspec.Struct, omit_defaults=True):
    nodeName: str | None = None
    volumes: list[_Volume] | None = None


class _Condition(msgspec.Struct, omit_defaults=True):
    type: str = ""
    status: str = ""
    message: str = ""


class _Status(msgspec.Struct, omit_defaults=True):
    phase: str | None = None
    conditions: list[_Condition] | None = None


class _Pod(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    spec: _Spec = msgspec.field(default_factory=_Spec)
    status: _Status = msgspec.field(default_factory=_Status)


class _ListMeta(msgspec.Struct):
    resourceVersion: str = ""
    continue_: str = msgspec.field(default="", name="continue")


class _PodList(msgspec.Struct):
    metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)
    items: list[_Pod] = msgspec.field(default_factory=list)


class _AnyList(msgspec.Struct):
    metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)
    items: list[dict[str, Any]] = msgspec.field(default_factory=list)


class _PodEvent(msgspec.Struct):
    type: str
    object: _Pod


class _AnyEvent(msgspec.Struct):
    type: str
    object: dict[str, Any]


def _backoff(failures: int) -> float:
    return min(5.0, 0.1 * 2**failures) * (0.5 + random.random() / 2)


def _pod_info(pod: _Pod) -> PodInfo:
    return pod_from_dict(msgspec.to_builtins(pod))


async def list_pods(client: KubeClient, path: str, params: dict[str, str]) -> list[PodInfo]:
    """Every pod of a (paged) list, as PodInfo."""
    return await client.list_items(path, params, lambda page: [
        _pod_info(p) for p in msgspec.json.decode(page, type=_PodList).items])


async def list_pdbs(client: KubeClient, namespace: str) -> list[PdbInfo]:
    """The PodDisruptionBudgets of one namespace."""
    page = await client.request("GET", f"/apis/policy/v1/namespaces/{namespace}/"
                                "poddisruptionbudgets")
    return [pdb_from_dict(i) for i in msgspec.json.decode(page, type=_AnyList).items]


class Informer(Generic[T]):
    """A list+watch cache of one collection, keyed by `key(item)`."""

    def __init__(self, client: KubeClient, path: str, params: dict[str, str]) -> None:
        self.client = client
        self.path = path
        self.params = params
        self.items: dict[str, T] = {}
        self.ready = asyncio.Event()
        self.relists = 0  # how often the watch broke and the collection was listed again
        self.touched: dict[str, int] = {}  # key → `changes` when the item last changed
        self.changes = 0
        self._rv = ""
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._sleep = asyncio.sleep

    # --- what subclasses define ------------------------------------------------------------

    def _decode_page(self, page: bytes) -> tuple[list[T], _ListMeta]:
        raise NotImplementedError

    def _decode_event(self, line: bytes) -> tuple[str, T | None, str, dict[str, Any] | None]:
        """(type, item, resourceVersion, Status body of an ERROR event)."""
        raise NotImplementedError

    def key(self, item: T) -> str:
        raise NotImplementedError

    # --- running -----------------------------------------------------------------------------

    async def start(self) -> Informer[T]:
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
        query = dict(self.params, limit="500")
        while True:
            page = await self.client.request("GET", self.path, params=query)
            decoded, meta = self._decode_page(page)
            items.update((self.key(i), i) for i in decoded)
            if not meta.continue_:
                break
            query["continue"] = meta.continue_
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
        query = dict(self.params, resourceVersion=self._rv, timeoutSeconds=str(WATCH_SECONDS),
                     allowWatchBookmarks="true")
        async for line in self.client.watch(self.path, query, timeout=WATCH_SECONDS + 30):
            kind, item, rv, error = self._decode_event(line)
            if kind == "ERROR":  # 410 Gone: our version is too old; list again
                raise ApiError(f"watch {self.path}: {(error or {}).get('message', '')}",
                               status=int((error or {}).get("code", 0)))
            if rv:
                self._rv = rv
            if item is None or kind == "BOOKMARK":
                continue
            key = self.key(item)
            if kind == "DELETED":
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


class PodInformer(Informer[PodInfo]):
    """The pods of one node (fieldSelector spec.nodeName), keyed by uid."""

    def __init__(self, client: KubeClient, node: str, label_selector: str = "") -> None:
        params = {"fieldSelector": f"spec.nodeName={node}"}
        if label_selector:
            params["labelSelector"] = label_selector
        super().__init__(client, "/api/v1/pods", params)

    def _decode_page(self, page: bytes) -> tuple[list[PodInfo], _ListMeta]:
        doc = msgspec.json.decode(page, type=_PodList)
        return [_pod_info(p) for p in doc.items], doc.metadata

    def _decode_event(self, line: bytes) -> tuple[str, PodInfo | None, str,
                                                   dict[str, Any] | None]:
        ev = msgspec.json.decode(line, type=_PodEvent)
        if ev.type == "ERROR":
            return ev.type, None, "", msgspec.to_builtins(ev.object)
        return ev.type, _pod_info(ev.object), ev.object.metadata.resourceVersion, None

    def key(self, item: PodInfo) -> str:
        return item.uid


class PdbInformer(Informer[PdbInfo]):
    """The PodDisruptionBudgets of one namespace, keyed by name."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        super().__init__(client, f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets",
                         {})

    def _decode_page(self, page: bytes) -> tuple[list[PdbInfo], _ListMeta]:
        doc = msgspec.json.decode(page, type=_AnyList)
        return [pdb_from_dict(i) for i in doc.items], doc.metadata

    def _decode_event(self, line: bytes) -> tuple[str, PdbInfo | None, str,
                                                   dict[str, Any] | None]:
        ev = msgspec.json.decode(line, type=_AnyEvent)
        if ev.type == "ERROR":
            return ev.type, None, "", ev.object
        rv = (ev.object.get("metadata") or {}).get("resourceVersion", "")
        return ev.type, pdb_from_dict(ev.object), rv, None

    def key(self, item: PdbInfo) -> str:
        return item.name
