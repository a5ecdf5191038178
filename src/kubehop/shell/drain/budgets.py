"""The PodDisruptionBudgets a drain runs into: why an eviction was refused, when to retry.

One PDB informer (list+watch) per namespace the drain evicts from, shared by the drains
running at once. After a 429 the drain notes
the covering PDB's change counter, explains the refusal in one line (from the PDB's status and
the pods it selects), then waits until the watch shows that PDB changed and allows a
disruption again — or, as a fallback, a capped exponential backoff with jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import replace

from kubehop.core.drain.explain import explain_blocked, multiple_pdbs, pdbs_for, predict_blocks
from kubehop.core.selectors import selector_from_api
from kubehop.model.cluster import PdbInfo, PodInfo
from kubehop.shell.drain.watch import PdbInformer
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.errors import ApiError
from kubehop.shell.kube.reader import Reader, as_reader

BACKOFF_BASE, BACKOFF_CAP = 0.25, 8.0  # seconds: the fallback when no PDB change wakes a retry
WORKLOAD_TTL = 1.0  # seconds a PDB's pod list is reused for explanations
Mark = tuple[str, int]  # (PDB name, its change counter when an eviction was refused)


def backoff(attempt: int) -> float:
    """Seconds before retry `attempt` (0-based): 0.25 s doubling up to 8 s, ±25 % jitter."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 6)) * (0.75 + random.random() / 2)


class _SharedInformers:
    """PDB informers shared by every drain on one reader, counted by users: one watch per
    namespace however many nodes drain at once (100 drains of a wave would otherwise open a
    watch per namespace each, and the server would send every PDB change to each)."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[PdbInformer]] = {}
        self.users: dict[str, int] = {}

    def acquire(self, reader: Reader, namespace: str) -> None:
        task = self.tasks.get(namespace)
        if task is None or (task.done() and (task.cancelled() or task.exception())):
            # (a failed start is not shared: the next user tries again)
            self.tasks[namespace] = asyncio.create_task(PdbInformer(reader, namespace).start())
        self.users[namespace] = self.users.get(namespace, 0) + 1

    async def release(self, namespace: str) -> None:
        self.users[namespace] -= 1
        if self.users[namespace]:
            return
        del self.users[namespace]
        task = self.tasks.pop(namespace)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ApiError):
                await task
        elif not task.cancelled() and task.exception() is None:
            await task.result().stop()


_SHARED: weakref.WeakKeyDictionary[Reader, _SharedInformers] = weakref.WeakKeyDictionary()


class Budgets:
    """PDB caches for one drain."""

    def __init__(self, source: KubeClient | Reader,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.reader = as_reader(source)
        self._monotonic = monotonic
        self._shared = _SHARED.setdefault(self.reader, _SharedInformers())
        self._namespaces: set[str] = set()
        self._workloads: dict[str, tuple[float, list[PodInfo]]] = {}

    def prefetch(self, namespaces: Iterable[str]) -> None:
        """Start watching these namespaces now, so the first 429 finds the PDBs ready."""
        for ns in sorted(set(namespaces) - self._namespaces):
            self._shared.acquire(self.reader, ns)
            self._namespaces.add(ns)

    async def informer(self, namespace: str) -> PdbInformer:
        self.prefetch([namespace])
        return await asyncio.shield(self._shared.tasks[namespace])

    async def stop(self) -> None:
        for ns in sorted(self._namespaces):
            await self._shared.release(ns)
        self._namespaces.clear()

    async def workload(self, pdb: PdbInfo) -> list[PodInfo]:
        """The pods `pdb` selects (cached for a second: many pods may wait on one PDB)."""
        cached = self._workloads.get(pdb.key)
        if cached is not None and self._monotonic() - cached[0] < WORKLOAD_TTL:
            return cached[1]
        selector = selector_from_api(pdb.selector)  # a null selector selects no pod
        pods = [] if selector.nothing else await self.reader.pods(
            pdb.namespace, label_selector=selector.query())
        self._workloads[pdb.key] = (self._monotonic(), pods)
        return pods

    async def _covering(self, pod: PodInfo) -> tuple[PdbInformer, list[PdbInfo]] | str:
        """The pod's namespace informer and the PDBs selecting the pod, or why not known."""
        try:
            informer = await self.informer(pod.namespace)
        except ApiError as e:  # e.g. no permission to list PDBs: explain less, back off
            return f"cannot read the PodDisruptionBudgets of namespace {pod.namespace}: {e}"
        return informer, pdbs_for(pod, informer.items.values())

    async def mark(self, pod: PodInfo) -> Mark | None:
        """The covering PDB and its change counter now (None: not exactly one PDB)."""
        found = await self._covering(pod)
        if isinstance(found, str) or len(found[1]) != 1:
            return None
        informer, (pdb,) = found
        return pdb.name, informer.touched.get(pdb.name, 0)

    async def reason(self, pod: PodInfo) -> tuple[str, str | None]:
        """(one line on why the eviction was refused, the PDB's `ns/name`)."""
        found = await self._covering(pod)
        if isinstance(found, str):
            return f"the eviction was refused (429); {found}", None
        covering = found[1]
        if len(covering) > 1:
            return multiple_pdbs(pod, covering), None
        if not covering:
            return "the eviction was refused (429) though no PodDisruptionBudget selects it", None
        pdb = replace(covering[0], disruptions_allowed=0)  # the server just said so
        try:
            pods = await self.workload(pdb)
        except ApiError:
            pods = []
        return explain_blocked(pdb, pods), pdb.key

    async def wait(self, pod: PodInfo, attempt: int, mark: Mark | None) -> None:
        """Until the PDB of `mark` changed and allows a disruption, or `backoff(attempt)`."""
        delay = backoff(attempt)
        if mark is None:
            await asyncio.sleep(delay)
            return
        informer = await self.informer(pod.namespace)
        name, seen = mark

        def allowed() -> bool:
            pdb = informer.items.get(name)
            return informer.touched.get(name, 0) > seen and pdb is not None and \
                pdb.disruptions_allowed > 0 and pdb.processed

        await informer.wait_for(allowed, timeout=delay)

    async def predict(self, evict: list[PodInfo]) -> tuple[dict[str, str], dict[str, str]]:
        """For a dry run: (pod → why it would wait, pod → its PDB), from one list per namespace."""
        pdbs: list[PdbInfo] = []
        for ns in sorted({p.namespace for p in evict}):
            pdbs += await self.reader.pdbs(ns)
        involved = {b.key: b for p in evict for b in pdbs_for(p, pdbs)}
        pods_of = {key: await self.workload(b) for key, b in involved.items()}
        pdb_of = {p.key: c[0].key for p in evict if len(c := pdbs_for(p, pdbs)) == 1}
        return predict_blocks(evict, pdbs, pods_of), pdb_of
