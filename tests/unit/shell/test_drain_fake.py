"""The drain through the `FakeReader`: kubectl's sequence (check, cordon, evict, wait), what a
PodDisruptionBudget refusal says and how the retry wakes, timeouts, dry runs, stateful
refusals; and the executor's KubeCluster over the same fake."""

from __future__ import annotations

import asyncio

import pytest

from kubehop.core.drain.explain import DrainEvent
from kubehop.core.drain.rules import DrainError, DrainOptions
from kubehop.model.errors import OperationError
from kubehop.shell.drain.node import Drainer
from kubehop.shell.executor.cluster import KubeCluster
from kubehop.shell.kube.errors import NotFound, ServerError
from kubehop.shell.kube.fake import FakeReader

FRONT = {"matchLabels": {"app": "front"}}


def cluster() -> FakeReader:
    api = FakeReader()
    api.add_node("w1")
    api.add_node("w2")
    api.add_daemonset("kube-system", "proxy")
    api.add_pod("web", "front-1", node="w1", labels={"app": "front"}, owner=("ReplicaSet", "f"))
    api.add_pod("web", "front-2", node="w2", labels={"app": "front"}, owner=("ReplicaSet", "f"))
    api.add_pod("kube-system", "proxy-1", node="w1", owner=("DaemonSet", "proxy"))
    api.add_pod("kube-system", "etcd-w1", node="w1", mirror=True)
    return api


async def drain(api: FakeReader, node: str = "w1", **options: object
                ) -> tuple[object, list[DrainEvent]]:
    events: list[DrainEvent] = []
    settings: dict[str, object] = {"ignore_daemonsets": True, "timeout": 5.0, **options}
    opts = DrainOptions(**settings)  # type: ignore[arg-type]
    result = await Drainer(api, opts, events.append).drain(node)
    return result, events


async def test_cordons_then_evicts_what_kubectl_would_and_leaves_the_rest():
    api = cluster()
    result, events = await drain(api)
    assert api.actions == [("cordon", "w1"), ("evict", "web/front-1")]
    assert result.evicted == ["web/front-1"]
    assert set(result.skipped) == {"kube-system/proxy-1", "kube-system/etcd-w1"}
    assert result.cordoned
    assert api.pod_names("w1") == ["kube-system/etcd-w1", "kube-system/proxy-1"]
    assert [e.kind for e in events][-1] == "drained"


async def test_a_refused_drain_leaves_the_node_as_it_was():
    api = cluster()
    with pytest.raises(DrainError, match="DaemonSet-managed") as err:
        await drain(api, ignore_daemonsets=False)
    assert not err.value.left_cordoned
    assert api.actions == []


async def test_an_already_cordoned_node_is_not_patched_again():
    api = cluster()
    await api.set_unschedulable("w1", True)
    api.actions.clear()
    result, events = await drain(api)
    assert api.actions == [("evict", "web/front-1")]
    assert not result.cordoned
    assert events[0].kind == "already-cordoned"


async def test_a_pdb_refusal_is_explained_and_retried_when_the_pdb_allows_again():
    api = cluster()
    api.add_pdb("web", "front", FRONT, allowed=0, expected=2, desired=2, healthy=2)

    def on_event(e: DrainEvent) -> None:
        events.append(e)
        if e.kind == "blocked":  # the replacement became Ready: the controller allows one
            asyncio.get_running_loop().call_later(
                0.05, lambda: api.set_pdb("web", "front", allowed=1))

    events: list[DrainEvent] = []
    result = await Drainer(api, DrainOptions(ignore_daemonsets=True, timeout=5.0),
                           on_event).drain("w1")
    blocked = [e for e in events if e.kind == "blocked"]
    assert blocked
    assert blocked[0].pdb == "web/front"
    assert blocked[0].message.startswith("pdb web/front: 2 of 2 replicas must stay Ready")
    assert result.evicted == ["web/front-1"]
    assert api.actions.count(("evict", "web/front-1")) >= 2


async def test_a_drain_that_times_out_names_what_waits_and_leaves_the_node_cordoned():
    api = cluster()
    api.add_pdb("web", "front", FRONT, allowed=0, expected=2, desired=2, healthy=2)
    with pytest.raises(DrainError, match="timed out") as err:
        await drain(api, timeout=0.5)
    assert err.value.left_cordoned
    assert err.value.pending == ["web/front-1"]
    assert "pdb web/front" in str(err.value)
    assert (await api.node("w1")).spec.unschedulable


async def test_a_pod_selected_by_two_pdbs_fails_with_the_servers_error():
    api = cluster()
    api.add_pdb("web", "a", FRONT, allowed=1)
    api.add_pdb("web", "b", {}, allowed=1)
    with pytest.raises(DrainError, match="more than one PodDisruptionBudget"):
        await drain(api)


async def test_a_pod_gone_before_its_eviction_counts_as_removed():
    api = cluster()
    api.fail[("evict", "web/front-1")] = NotFound("not found (404)", status=404)
    api.remove("pods", "web", "front-1")  # the informer never sees it; the list did
    result, _ = await drain(api)
    assert result.evicted == []


async def test_a_server_error_on_eviction_fails_the_pod():
    api = cluster()
    api.fail[("evict", "web/front-1")] = ServerError("boom", status=500)
    with pytest.raises(DrainError, match="error when evicting pods/front-1"):
        await drain(api)


async def test_a_dry_run_writes_nothing_and_predicts_the_wait():
    api = cluster()
    api.add_pdb("web", "front", FRONT, allowed=0, expected=2, desired=2, healthy=2)
    result, events = await drain(api, dry_run=True)
    assert api.actions == []
    assert result.dry_run
    assert result.evicted == ["web/front-1"]
    assert "pdb web/front" in result.blocked["web/front-1"]
    assert {"cordoned", "evicting", "blocked", "drained"} <= {e.kind for e in events}


async def test_a_single_instance_database_primary_is_refused_before_anything_changes():
    api = cluster()
    api.add_pod("db", "pg-1", node="w1", owner=("Cluster", "pg"),
                labels={"cnpg.io/cluster": "pg", "cnpg.io/instanceRole": "primary"})
    api.add_cnpg("db", "pg", instances=1, primary="pg-1")
    with pytest.raises(DrainError, match="single instance"):
        await drain(api)
    assert api.actions == []


async def test_an_unknown_node_is_one_line():
    with pytest.raises(OperationError, match='node "nope" not found'):
        await drain(FakeReader(), "nope")


async def test_the_executor_cluster_reads_and_drains_through_the_reader():
    api = cluster()
    api.add_cnpg("db", "pg", instances=2, primary="pg-1")
    api.add_pod("db", "pg-1", node="w2", labels={"cnpg.io/cluster": "pg"})
    api.kubeadm_version = "v1.28.9"
    kube = KubeCluster(api)
    await kube.start()
    try:
        assert {n.name for n in await kube.nodes()} == {"w1", "w2"}
        assert await kube.evictable_pods("w1") == ["web/front-1"]
        assert await kube.kubernetes_version() == "v1.28.9"
        assert await kube.primaries_on("w2", ("db/pg", "db/gone")) == ["db/pg"]
        assert await kube.set_schedulable("w2", False)
        assert await kube.changed(1.0) is None
        assert (await kube.node("w2")).schedulable is False  # seen through the node watch
        await kube.drain("w1", DrainOptions(ignore_daemonsets=True), None)
        assert await kube.evictable_pods("w1") == []
    finally:
        await kube.close()


async def test_apiservers_are_found_by_the_one_discovery_and_asked_directly():
    api = cluster()
    api.endpoints = ["127.77.0.1:6443", "127.77.0.2:6443"]
    api.readyz_text["127.77.0.2:6443"] = "[-]etcd failed"
    kube = KubeCluster(api)
    await kube.start()
    try:
        assert await kube.apiserver_problems() == ["apiserver 127.77.0.2:6443 /readyz: "
                                                   "[-]etcd failed"]
    finally:
        await kube.close()
