"""Every lab controller over one store: what kube-controller-manager, kube-scheduler, the
kubelets and the CloudNativePG operator do to a cluster's objects, on the lab's clock.

    controllers = Controllers.install(store, clock, history, Timing())
    controllers.start()                   # inside the running event loop
    api.on_evict = controllers.evict                  # POST pods/NAME/eviction
    api.on_pod_delete = controllers.deleter.on_pod_delete
    code, body, headers = controllers.evict("web", "frontend-abc", eviction_body)
    await controllers.settle()            # tests: run until nothing is left to do
    await controllers.stop()

`install` records the initial state into the history and subscribes to the store; nothing
runs until `start()` (or `settle()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubehop.lab.api.store import Store
from kubehop.lab.clock import LabClock
from kubehop.lab.controllers.cnpg import CnpgOperator
from kubehop.lab.controllers.daemonsets import DaemonSets
from kubehop.lab.controllers.disruption import Disruption
from kubehop.lab.controllers.evictions import Answer, PodDeleter
from kubehop.lab.controllers.kubelet import KubeletController
from kubehop.lab.controllers.nodes import NodeLifecycle
from kubehop.lab.controllers.recorder import HistoryRecorder
from kubehop.lab.controllers.runtime import Runtime, Timing
from kubehop.lab.controllers.scheduling import Scheduler
from kubehop.lab.controllers.statefulsets import StatefulSets
from kubehop.lab.controllers.workloads import Deployments, GarbageCollector, ReplicaSets
from kubehop.lab.history import History


class Controllers:
    """Every lab controller over one store, run by one asyncio task."""

    def __init__(self, runtime: Runtime, recorder: HistoryRecorder, deleter: PodDeleter) -> None:
        self.runtime = runtime
        self.recorder = recorder
        self.deleter = deleter
        self.kubelet: KubeletController
        self.scheduler: Scheduler

    @classmethod
    def install(
        cls,
        store: Store,
        clock: LabClock,
        history: History,
        timing: Timing | None = None,
        *,
        seed: int = 0,
    ) -> Controllers:
        """Record the initial state, subscribe to the store and queue a full resync."""
        rt = Runtime(store, clock, timing or Timing(), seed=seed)
        recorder = HistoryRecorder(store, clock, history)
        deleter = PodDeleter(store, clock, recorder.deleted_by, recorder.eviction_refused)
        self = cls(rt, recorder, deleter)
        self.kubelet = KubeletController(rt)
        self.scheduler = Scheduler(rt)
        for c in (
            NodeLifecycle(rt, deleter),
            self.scheduler,
            self.kubelet,
            Deployments(rt),
            ReplicaSets(rt, deleter),
            StatefulSets(rt, deleter),
            DaemonSets(rt, deleter),
            CnpgOperator(rt, deleter),
            Disruption(rt),
            GarbageCollector(rt, deleter),
        ):
            rt.add(c)
        recorder.attach()
        rt.attach()
        return self

    # --- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the controllers' task on the running event loop (idempotent)."""
        self.runtime.start()

    async def stop(self) -> None:
        """Stop the task; the store and history keep their state."""
        await self.runtime.stop()

    def uninstall(self) -> None:
        """Unsubscribe from the store (after `stop`)."""
        self.runtime.detach()
        self.recorder.detach()

    async def settle(self, timeout: float = 30.0, horizon: float | None = 60.0) -> None:
        """Run until no work is queued and no timer is due within `horizon` lab seconds
        (None: none at all), e.g. PDB re-checks (120 s) and taint evictions (300 s) are left
        pending; TimeoutError after `timeout` real seconds."""
        await self.runtime.settle(timeout, horizon)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions controllers raised (logged and skipped; tests assert there are none)."""
        return self.runtime.errors

    # --- what the API server calls ------------------------------------------------------------

    def evict(
        self, namespace: str, name: str, body: dict[str, Any], dry_run: Sequence[str] = ()
    ) -> Answer:
        """POST .../pods/NAME/eviction → (HTTP status, v1 Status body, headers); the
        `LabApi.on_evict` hook."""
        return self.deleter.evict(namespace, name, body, dry_run=dry_run)

    def delete_pod(
        self,
        namespace: str,
        name: str,
        *,
        by: str = "delete",
        grace_seconds: int | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """DELETE .../pods/NAME (graceful); returns the pod as the DELETE answers it."""
        return self.deleter.delete_pod(namespace, name, by=by, grace_seconds=grace_seconds,
                                       uid=uid, resource_version=resource_version)
