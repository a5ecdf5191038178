"""A lab cluster with controllers on a virtual clock: lab time moves only when a test
advances it (`await lab.clock.advance(s)`) or settles the controllers, so no test waits real
time and timers fire in the same order every run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from kubehop.lab.api.store import Store
from kubehop.lab.api.watches import Change
from kubehop.lab.clock import VirtualClock
from kubehop.lab.controllers.manager import Controllers
from kubehop.lab.controllers.runtime import Timing
from kubehop.lab.fixtures import objects as o
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.fixtures.specs import ClusterSpec, LabNodeSpec, LabPdbSpec, LabWorkloadSpec
from kubehop.lab.history import History


@dataclass
class Lab:
    store: Store
    clock: VirtualClock
    history: History
    ctl: Controllers
    removed: dict[str, float] = field(default_factory=dict)  # pod name → lab time it went

    def __post_init__(self) -> None:
        def note(change: Change) -> None:
            if change.resource == "pods" and change.type == "DELETED":
                self.removed[change.object["metadata"]["name"]] = self.clock.now()

        self.store.subscribe(note)

    async def settle(self, horizon: float | None = 60.0) -> None:
        await self.ctl.settle(timeout=20, horizon=horizon)
        assert self.ctl.errors == []

    def pods(self, namespace: str | None = None, *, live: bool = True) -> list[dict[str, Any]]:
        items = self.store.list("pods", namespace).items
        return [p for p in items if not (live and p["metadata"].get("deletionTimestamp"))]

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.peek("pods", namespace, name)

    def events(self, type_: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.history.since(0) if (type_ is None or e["type"] == type_)
                and all(e.get(k) == v for k, v in match.items())]

    def cordon(self, node: str, on: bool = True) -> None:
        self.store.mutate("nodes", "", node, lambda n: n["spec"].update(unschedulable=on))

    def set_node_ready(self, node: str, ready: bool) -> None:
        at = self.clock.timestamp()
        self.store.mutate("nodes", "", node, lambda n: n["status"].update(
            conditions=o.node_conditions(ready, at)))

    def pdb_status(self, namespace: str, name: str) -> dict[str, Any]:
        return self.store.get("poddisruptionbudgets.policy", namespace, name)["status"]


Factory = Callable[..., Awaitable[Lab]]


def small_spec(**kw: Any) -> ClusterSpec:
    """One control plane, two workers, a 3-replica web Deployment with a PDB, a DaemonSet."""
    defaults: dict[str, Any] = {
        "nodes": (LabNodeSpec("cp", roles=("control-plane",)), LabNodeSpec("w1"),
                  LabNodeSpec("w2")),
        "workloads": (
            LabWorkloadSpec("Deployment", "web", "frontend", replicas=3,
                         requests={"cpu": "100m", "memory": "128Mi"},
                         pdb=LabPdbSpec(max_unavailable=1)),
            LabWorkloadSpec("DaemonSet", "monitoring", "node-exporter"),
        ),
    }
    defaults.update(kw)
    return ClusterSpec(**defaults)


@pytest.fixture
async def make_lab() -> AsyncIterator[Factory]:
    labs: list[Lab] = []

    async def make(spec: ClusterSpec | None = None, *, timing: Timing | None = None,
                   setup: Callable[[Store], None] | None = None) -> Lab:
        clock = VirtualClock()
        store = Store(clock=lambda: datetime.fromtimestamp(clock.wall(), UTC))
        populate(spec or small_spec(), store)
        if setup is not None:
            setup(store)
        history = History()
        ctl = Controllers.install(store, clock, history, timing or Timing())
        lab = Lab(store, clock, history, ctl)
        labs.append(lab)
        ctl.start()
        return lab

    yield make
    for lab in labs:
        await lab.ctl.stop()
        lab.ctl.uninstall()
