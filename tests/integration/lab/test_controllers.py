"""The controllers behind the lab's HTTP API: evictions, DELETEs and drains over the wire.

The API server delegates evictions (`on_evict`) and the end of graceful deletions
(`on_pod_delete`) to the controllers; everything is judged from the lab history.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from kubehop.lab.api.server import LabServer
from kubehop.lab.api.store import Store
from kubehop.lab.clock import LabClock
from kubehop.lab.controllers.manager import Controllers
from kubehop.lab.controllers.runtime import Timing
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.fixtures.specs import ClusterSpec, LabNodeSpec, LabPdbSpec, LabWorkloadSpec
from kubehop.lab.history import History, check_history

TIME_SCALE = 0.005
TIMING = Timing(podStop=10)  # terminating pods stay visible across a few HTTP calls


@dataclass
class Running:
    server: LabServer
    ctl: Controllers
    history: History
    http: aiohttp.ClientSession

    @property
    def store(self) -> Store:
        return self.server.store

    async def request(self, method: str, path: str, body: Any = None,
                      content_type: str = "application/json") -> tuple[int, Any]:
        async with self.http.request(method, self.server.url + path, json=body,
                                     headers={"Content-Type": content_type}) as resp:
            return resp.status, await resp.json()

    async def cordon(self, node: str, on: bool = True) -> None:
        status, _ = await self.request("PATCH", f"/api/v1/nodes/{node}",
                                       {"spec": {"unschedulable": on}},
                                       "application/strategic-merge-patch+json")
        assert status == 200

    async def evict(self, namespace: str, name: str) -> tuple[int, Any]:
        return await self.request(
            "POST", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
            {"apiVersion": "policy/v1", "kind": "Eviction",
             "metadata": {"name": name, "namespace": namespace}})

    def events(self, type_: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.history.since(0) if e["type"] == type_
                and all(e.get(k) == v for k, v in match.items())]


def cluster(workers: int, replicas: int) -> ClusterSpec:
    return ClusterSpec(
        nodes=(LabNodeSpec("cp", roles=("control-plane",)), LabNodeSpec("w", count=workers)),
        workloads=(
            LabWorkloadSpec("Deployment", "web", "frontend", replicas=replicas,
                         requests={"cpu": "100m", "memory": "64Mi"},
                         pdb=LabPdbSpec(max_unavailable=1)),
            LabWorkloadSpec("StatefulSet", "db", "pg", replicas=2, pdb=LabPdbSpec(min_available=1)),
            LabWorkloadSpec("DaemonSet", "monitoring", "node-exporter"),
        ),
    )


async def start(spec: ClusterSpec) -> tuple[LabServer, Controllers, History]:
    clock = LabClock(TIME_SCALE)
    store = Store(clock=lambda: datetime.fromtimestamp(clock.wall(), UTC))
    populate(spec, store)
    server = LabServer(store=store, tls=False)
    history = History()
    ctl = Controllers.install(store, clock, history, TIMING)
    server.api.on_pod_delete = ctl.deleter.on_pod_delete
    server.api.on_evict = ctl.evict
    await server.start()
    ctl.start()
    return server, ctl, history


@pytest.fixture
async def lab() -> AsyncIterator[Running]:
    server, ctl, history = await start(cluster(workers=3, replicas=4))
    try:
        async with aiohttp.ClientSession() as http:
            yield Running(server, ctl, history, http)
    finally:
        await ctl.stop()
        await server.stop()
    assert ctl.errors == []


async def test_eviction_over_http_replaces_the_pod(lab: Running) -> None:
    await lab.ctl.settle()
    name = lab.store.list("pods", "web").items[0]["metadata"]["name"]
    status, body = await lab.evict("web", name)
    assert (status, body["status"]) == (201, "Success")
    pdb = lab.store.get("poddisruptionbudgets.policy", "web", "frontend")["status"]
    assert pdb["disruptionsAllowed"] == 0
    status, body = await lab.request("GET", f"/api/v1/namespaces/web/pods/{name}")
    assert status == 200
    assert body["metadata"]["deletionTimestamp"]
    other = next(p["metadata"]["name"] for p in lab.store.list("pods", "web").items
                 if p["metadata"]["name"] != name)
    status, body = await lab.evict("web", other)
    assert status == 429
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    await lab.ctl.settle()
    status, _ = await lab.request("GET", f"/api/v1/namespaces/web/pods/{name}")
    assert status == 404
    _, pods = await lab.request("GET", "/api/v1/namespaces/web/pods")
    assert len(pods["items"]) == 4
    assert all(p["status"]["phase"] == "Running" for p in pods["items"])
    assert [e["by"] for e in lab.events("pod", name=name, event="deleted")] == ["eviction"]
    assert lab.events("eviction-refused", name=other)[0]["pdb"] == "web/frontend"
    assert check_history(lab.history.since(0)) == []


async def test_delete_over_http_terminates_gracefully_and_is_judged(lab: Running) -> None:
    await lab.ctl.settle()
    names = [p["metadata"]["name"] for p in lab.store.list("pods", "web").items][:2]
    for name in names:
        status, body = await lab.request("DELETE", f"/api/v1/namespaces/web/pods/{name}")
        assert status == 200
        assert body["metadata"]["deletionTimestamp"]
    await lab.ctl.settle()
    assert [e["by"] for e in lab.events("pod", event="deleted")] == ["delete", "delete"]
    violations = check_history(lab.history.since(0))
    assert {v.invariant for v in violations} == {2}
    assert any("fell to 2 healthy pods, below the 3" in v.message for v in violations)


async def drain(lab: Running, node: str) -> None:
    """Cordon over HTTP, then evict the node's pods until only DaemonSet/mirror pods remain."""
    await lab.cordon(node)
    for _ in range(300):
        left = [p for p in lab.store.by_index("pods", "spec.nodeName", node)
                if p["metadata"]["ownerReferences"][0]["kind"] not in ("DaemonSet", "Node")]
        if not left:
            return
        for p in left:
            if not p["metadata"].get("deletionTimestamp"):
                await lab.evict(p["metadata"]["namespace"], p["metadata"]["name"])
        await asyncio.sleep(1 * TIME_SCALE)
    raise AssertionError(f"{node} did not drain")


async def test_rolling_drain_keeps_every_budget(lab: Running) -> None:
    await lab.ctl.settle()
    for node in ("w-1", "w-2", "w-3"):
        await drain(lab, node)
        await lab.cordon(node, False)
        await lab.ctl.settle()
    events = lab.history.since(0)
    assert check_history(events, max_unavailable=1) == []
    deleted = [e for e in events if e["type"] == "pod" and e["event"] == "deleted"]
    assert deleted
    assert {e["by"] for e in deleted} == {"eviction"}
    assert {e["namespace"] for e in deleted} >= {"web", "db"}
    pods = lab.store.list("pods", "web").items + lab.store.list("pods", "db").items
    assert len(pods) == 6
    assert all(p["status"]["phase"] == "Running" for p in pods)
    assert sorted(p["metadata"]["name"] for p in lab.store.list("pods", "db").items) == [
        "pg-0", "pg-1"]


async def test_hundreds_of_nodes_settle_quickly() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    server, ctl, _history = await start(cluster(workers=300, replicas=3000))
    try:
        await ctl.settle(timeout=60)
        ready = loop.time()
        node = "w-7"
        pods = [p for p in server.store.by_index("pods", "spec.nodeName", node)
                if p["metadata"]["namespace"] == "web"]
        for p in pods:
            ctl.delete_pod("web", p["metadata"]["name"])
        await ctl.settle(timeout=60)
        assert len([p for p in server.store.list("pods", "web").items
                    if p["status"]["phase"] == "Running"]) == 3000
        assert ready - t0 < 30
        assert loop.time() - ready < 10
        assert ctl.errors == []
    finally:
        await ctl.stop()
        await server.stop()
