"""Drain a node: kubectl's decisions, faster waiting, and a word on what blocks.

    result = await drain_node(client, "w1", DrainOptions(ignore_daemonsets=True), on_event=print)

The drain reads and writes through a `Reader` (`kubehop.shell.kube.reader`; a KubeClient is
wrapped in its ClusterReader, and unit tests pass a `FakeReader`).

The sequence follows kubectl (`pkg/cmd/drain`, `pkg/drain`): check the node's pods with the filter
chain (here before cordoning, so a refused drain leaves the node as it was), cordon only when
needed, list again, then evict every pod at once through policy/v1 Eviction. Unlike kubectl it
watches instead of polling: a pod's deletion is seen on a watch of the node's pods, and a
refused eviction (429) is retried the moment the PodDisruptionBudget's status allows one
(a watch on the namespace's PDBs), with a capped backoff as the fallback. A CloudNativePG
primary on the node is evicted only after the operator has switched over to another node; a
single-instance cluster is refused before anything is touched. On failure or --timeout the
node stays cordoned and the error names it and what each remaining pod waits for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from kubehop.core.drain.explain import DrainEvent, cnpg_primary_of, single_instance_refusal
from kubehop.core.drain.rules import (
    DrainDecision,
    DrainError,
    DrainOptions,
    DrainResult,
    plan_drain,
    should_skip_deleted,
)
from kubehop.model.cluster import PodInfo
from kubehop.model.errors import OperationError
from kubehop.shell.drain.budgets import Budgets
from kubehop.shell.drain.watch import PodInformer
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.errors import (
    ApiError,
    Forbidden,
    NotFound,
    ServerError,
    TooManyRequests,
    Unreachable,
)
from kubehop.shell.kube.reader import Reader, as_reader
from kubehop.shell.kube.wire import NodeWire

Emit = Callable[[DrainEvent], None]


class _PodFailed(Exception):
    """One pod could not be removed (kubectl reports these after the others finish)."""


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _seconds(value: float) -> str:
    return f"{value:g}s"


class Drainer:
    """Cordon, uncordon and drain nodes of one cluster with one set of options."""

    def __init__(self, source: KubeClient | Reader, options: DrainOptions | None = None,
                 on_event: Emit | None = None, *, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.reader = as_reader(source)
        self.options = options or DrainOptions()
        self.on_event = on_event
        self._wall = wall
        self._monotonic = monotonic
        self._start = monotonic()
        self._node = ""
        self._pods: PodInformer | None = None
        self._budgets = Budgets(self.reader, monotonic)
        self._daemonsets: dict[tuple[str, str], bool] = {}
        self._clusters: set[tuple[str, str]] = set()  # CNPG clusters that can switch over
        self._state: dict[str, tuple[str, str | None]] = {}  # pod → (what it waits for, pdb)

    def _emit(self, kind: str, node: str, **kw: Any) -> None:
        if self.on_event is not None:
            self.on_event(DrainEvent(kind, node, dry_run=self.options.dry_run,
                                     elapsed=self._monotonic() - self._start, **kw))

    # --- cordon -----------------------------------------------------------------------------

    async def get_node(self, node: str) -> NodeWire:
        try:
            return await self.reader.node(node)
        except NotFound as e:
            raise OperationError(f'node "{node}" not found; check the name with '
                                 "`kubectl get nodes`") from e

    async def set_unschedulable(self, node: str, desired: bool,
                                current: NodeWire | None = None) -> bool:
        """Cordon (True) or uncordon (False) `node` unless it already is; whether it changed."""
        obj = current if current is not None else await self.get_node(node)
        verb = "cordoned" if desired else "uncordoned"
        if obj.spec.unschedulable == desired:
            self._emit(f"already-{verb}", node)
            return False
        if not self.options.dry_run:
            await self.reader.set_unschedulable(node, desired)
        self._emit(verb, node)
        return True

    async def cordon(self, node: str) -> bool:
        return await self.set_unschedulable(node, True)

    async def uncordon(self, node: str) -> bool:
        return await self.set_unschedulable(node, False)

    # --- deciding ---------------------------------------------------------------------------

    async def _decide(self, pods: list[PodInfo]) -> DrainDecision:
        """kubectl's filter chain, after asking whether each owning DaemonSet still exists."""
        wanted = {(p.namespace, p.owner_name or "") for p in pods
                  if p.daemonset} - self._daemonsets.keys()

        async def exists(ns: str, name: str) -> None:
            self._daemonsets[(ns, name)] = await self.reader.daemonset_exists(ns, name)

        await asyncio.gather(*(exists(ns, name) for ns, name in wanted))
        return plan_drain(pods, self.options, self._daemonsets, self._wall())

    async def _stateful_refusals(self, evict: list[PodInfo], node: str) -> list[str]:
        """Refuse single-instance CloudNativePG clusters; remember the ones that switch over."""
        refusals = []
        for pod in evict:
            cluster = cnpg_primary_of(pod)
            if cluster is None or self.options.disable_eviction:
                continue
            try:
                obj = await self.reader.cnpg_cluster(pod.namespace, cluster)
            except NotFound:  # no such cluster (or no CNPG at all): an ordinary pod
                continue
            except Forbidden as e:
                self._emit("warning", node, pod=pod.key, message=(
                    f"cannot read CloudNativePG cluster {pod.namespace}/{cluster} ({e}); its "
                    "primary is evicted without waiting for a switchover"))
                continue
            if obj.spec.enablePDB is False:
                continue
            if obj.spec.instances <= 1:
                refusals.append(single_instance_refusal(pod.namespace, cluster, pod.name, node))
            else:
                self._clusters.add((pod.namespace, cluster))
        return refusals

    # --- removing one pod -------------------------------------------------------------------

    def _current(self, pod: PodInfo) -> PodInfo | None:
        assert self._pods is not None
        return self._pods.items.get(pod.uid)

    async def _await_switchover(self, pod: PodInfo, cluster: str) -> None:
        assert self._pods is not None
        what = f"CloudNativePG cluster {pod.namespace}/{cluster}"
        waiting = f"waiting for {what} to switch its primary {pod.name} to another node"
        self._state[pod.key] = (waiting, None)
        self._emit("switchover", self._node, pod=pod.key, message=waiting)

        def moved() -> bool:
            current = self._current(pod)
            return current is None or cnpg_primary_of(current) is None

        if not await self._pods.wait_for(moved, self.options.switchover_timeout):
            raise _PodFailed(
                f"{what} did not move its primary {pod.name} off node {self._node} within "
                f"{_seconds(self.options.switchover_timeout)}; check the operator "
                f"(kubectl -n {pod.namespace} get clusters.postgresql.cnpg.io {cluster})")
        self._emit("switchover", self._node, pod=pod.key,
                   message=f"{what} switched over: {pod.name} is a replica now")

    async def _evict(self, pod: PodInfo) -> bool:
        """POST the Eviction until accepted; False when the pod was already gone."""
        self._state[pod.key] = ("evicting", None)
        self._emit("evicting", self._node, pod=pod.key)
        last, attempt = "", -1
        while True:
            attempt += 1
            try:
                await self.reader.evict(pod.namespace, pod.name, self.options.grace_period)
                return True
            except NotFound:
                return False
            except TooManyRequests:
                mark = await self._budgets.mark(pod)
                reason, pdb = await self._budgets.reason(pod)
                self._state[pod.key] = (reason, pdb)
                if reason != last:
                    self._emit("blocked", self._node, pod=pod.key, message=reason, pdb=pdb)
                    last = reason
                await self._budgets.wait(pod, attempt, mark)
            except Forbidden as e:
                if "being terminated" not in str(e):
                    raise _PodFailed(self._evict_failed(pod, e)) from e
                current = self._current(pod)
                if current is not None and current.deletion_time is not None:
                    return True  # namespace deleting: the pod goes anyway
                await self._budgets.wait(pod, attempt, None)
            except (Unreachable, ServerError) as e:
                if isinstance(e, ServerError) and not e.transient:
                    raise _PodFailed(self._evict_failed(pod, e)) from e
                await self._budgets.wait(pod, attempt, None)  # an apiserver restarting
            except ApiError as e:
                raise _PodFailed(self._evict_failed(pod, e)) from e

    @staticmethod
    def _evict_failed(pod: PodInfo, error: ApiError) -> str:
        return f"error when evicting pods/{pod.name} -n {pod.namespace}: {error}"

    async def _delete(self, pod: PodInfo) -> bool:
        self._state[pod.key] = ("deleting", None)
        self._emit("deleting", self._node, pod=pod.key)
        try:
            await self.reader.delete_pod(pod.namespace, pod.name, self.options.grace_period)
        except NotFound:
            return False
        except ApiError as e:
            raise _PodFailed(f"error when deleting pods/{pod.name} -n {pod.namespace}: {e}") from e
        return True

    async def _wait_gone(self, pod: PodInfo) -> None:
        assert self._pods is not None
        skip = self.options.skip_wait_for_delete_timeout
        self._state[pod.key] = ("terminating", None)

        def gone() -> bool:
            current = self._current(pod)
            return current is None or should_skip_deleted(current, skip, self._wall())

        while not await self._pods.wait_for(gone, timeout=1.0 if skip > 0 else None):
            pass
        if self._current(pod) is not None:
            self._emit("warning", self._node, pod=pod.key, message=(
                f'pod "{pod.name}" has DeletionTimestamp older than {skip} seconds, skipping'))

    async def _remove(self, pod: PodInfo) -> str:
        current = self._current(pod) or pod
        cluster = cnpg_primary_of(current)
        if cluster and (pod.namespace, cluster) in self._clusters:
            await self._await_switchover(pod, cluster)
        if self.options.disable_eviction:
            await self._delete(pod)
        else:
            await self._evict(pod)
        await self._wait_gone(pod)
        self._state.pop(pod.key, None)
        self._emit("deleted" if self.options.disable_eviction else "evicted", self._node,
                   pod=pod.key)
        return pod.key

    # --- progress ---------------------------------------------------------------------------

    async def _report_progress(self) -> None:
        while True:
            await asyncio.sleep(self.options.progress_interval)
            groups: dict[tuple[str, str | None], list[str]] = {}
            for pod, (reason, pdb) in sorted(self._state.items()):
                if reason != "evicting":
                    groups.setdefault((reason, pdb), []).append(pod)
            for (reason, pdb), pods in groups.items():
                self._emit("waiting", self._node, pods=tuple(pods), message=reason, pdb=pdb)

    # --- the drain --------------------------------------------------------------------------

    async def drain(self, node: str) -> DrainResult:
        """Drain `node` (see the module docstring); raises DrainError naming what blocks."""
        self._start, self._node = self._monotonic(), node
        self._state.clear()
        self._clusters.clear()
        obj = await self.get_node(node)
        was_cordoned = obj.spec.unschedulable
        decision = await self._decide(await self.reader.pods(
            node=node, label_selector=self.options.pod_selector or None))
        refusals = decision.errors + await self._stateful_refusals(decision.evict, node)
        if refusals:
            where = "was cordoned already" if was_cordoned else "was left schedulable"
            raise DrainError(f"cannot drain node {node}: {'; '.join(refusals)} (node {node} "
                             f"{where})", node=node, left_cordoned=was_cordoned)
        if self.options.dry_run:
            return await self._dry_run(node, obj, decision)
        cordoned = await self.set_unschedulable(node, True, obj)
        try:
            async with asyncio.timeout(self.options.timeout or None):
                return await self._evict_all(node, cordoned)
        except TimeoutError:
            raise self._timed_out(node) from None
        finally:
            await self._stop()

    async def _evict_all(self, node: str, cordoned: bool) -> DrainResult:
        self._pods = await PodInformer(self.reader, node, self.options.pod_selector).start()
        decision = await self._decide(list(self._pods.items.values()))
        if decision.errors:  # pods landed on the node before the cordon took effect
            raise DrainError(f"cannot drain node {node}: {'; '.join(decision.errors)}; node "
                             f"{node} left cordoned", node=node, left_cordoned=True)
        for warning in decision.warnings:
            self._emit("warning", node, message=warning)
        if self.options.disable_eviction and decision.evict:
            self._emit("warning", node, message="--disable-eviction: deleting pods directly; "
                       "PodDisruptionBudgets are not checked")
        if not self.options.disable_eviction:  # ready before the first 429 comes back
            self._budgets.prefetch(p.namespace for p in decision.evict)
        progress = asyncio.create_task(self._report_progress())
        try:
            results = await asyncio.gather(*(self._remove(p) for p in decision.evict),
                                           return_exceptions=True)
        finally:
            progress.cancel()
        failures = [str(r) for r in results if isinstance(r, BaseException)]
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, _PodFailed | ApiError):
                raise r
        if failures:
            raise DrainError(f"cannot drain node {node}: {'; '.join(failures)}; node {node} "
                             "left cordoned", node=node, left_cordoned=True,
                             pending=list(self._state))
        self._emit("drained", node)
        return DrainResult(node, evicted=[r for r in results if isinstance(r, str)],
                           skipped=[p.key for p in decision.skipped], warnings=decision.warnings,
                           cordoned=cordoned, seconds=self._monotonic() - self._start)

    def _timed_out(self, node: str) -> DrainError:
        pending = sorted(self._state.items())
        shown = [f"{pod} ({reason})" for pod, (reason, _) in pending[:5]]
        if len(pending) > 5:
            shown.append(f"and {len(pending) - 5} more")
        return DrainError(
            f"drain of node {node} timed out after {_seconds(self.options.timeout)} with "
            f"{_plural(len(pending), 'pod')} left: {', '.join(shown) or 'none'}; node {node} "
            f"left cordoned (`kubehop uncordon {node}` makes it schedulable again)",
            node=node, left_cordoned=True, pending=[p for p, _ in pending])

    async def _stop(self) -> None:
        if self._pods is not None:
            await self._pods.stop()
        await self._budgets.stop()

    async def _dry_run(self, node: str, obj: NodeWire,
                       decision: DrainDecision) -> DrainResult:
        cordoned = await self.set_unschedulable(node, True, obj)
        for warning in decision.warnings:
            self._emit("warning", node, message=warning)
        blocked: dict[str, str] = {}
        pdb_of: dict[str, str] = {}
        if not self.options.disable_eviction:
            blocked, pdb_of = await self._budgets.predict(decision.evict)
            for pod in decision.evict:
                cluster = cnpg_primary_of(pod)
                if cluster and (pod.namespace, cluster) in self._clusters:
                    blocked[pod.key] = (f"waits for CloudNativePG cluster {pod.namespace}/"
                                        f"{cluster} to switch its primary to another node")
        for pod in decision.evict:
            self._emit("deleting" if self.options.disable_eviction else "evicting", node,
                       pod=pod.key)
            if pod.key in blocked:
                self._emit("blocked", node, pod=pod.key, message=blocked[pod.key],
                           pdb=pdb_of.get(pod.key))
        self._emit("drained", node)
        return DrainResult(node, evicted=[p.key for p in decision.evict],
                           skipped=[p.key for p in decision.skipped], warnings=decision.warnings,
                           cordoned=cordoned, dry_run=True, blocked=blocked,
                           seconds=self._monotonic() - self._start)


async def drain_node(client: KubeClient | Reader, node: str, options: DrainOptions | None = None,
                     on_event: Emit | None = None) -> DrainResult:
    """Drain `node` (the executor's entry point); DrainError names what blocks."""
    return await Drainer(client, options, on_event).drain(node)


async def uncordon_node(client: KubeClient | Reader, node: str, on_event: Emit | None = None,
                        *, dry_run: bool = False) -> bool:
    """Uncordon `node` unless it already is schedulable; whether it changed."""
    return await Drainer(client, DrainOptions(dry_run=dry_run), on_event).uncordon(node)
