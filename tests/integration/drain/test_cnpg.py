"""Stateful awareness: a CloudNativePG primary leaves its node by switchover, not by a refused
eviction; a single-instance cluster is refused before anything is touched."""

from __future__ import annotations

from kubehop.core.drain.rules import DrainError
from kubehop.lab.history import check_history
from tests.integration.drain.conftest import (
    by_kind,
    kubehop_drain,
    node_schedulable,
    pods_on,
    removed,
    scenario,
    start_labs,
)

CLUSTERS = "clusters.postgresql.cnpg.io"


async def test_draining_the_primarys_node_waits_for_the_switchover(stack, tmp_path):
    (lab,) = await start_labs(stack, "oldversion", tmp_path, 1)
    assert lab.store.peek(CLUSTERS, "db", "pg")["status"]["currentPrimary"] == "pg-1"
    before = pods_on(lab, "oldversion2")
    assert "db/pg-1" in before
    result, events = await kubehop_drain(lab, "oldversion2", "--ignore-daemonsets",
                                         "--delete-emptydir-data", "--timeout=60s")
    assert not isinstance(result, Exception), result
    assert "db/pg-1" in result.evicted

    switchover = [e for e in by_kind(events, "switchover") if e.pod == "db/pg-1"]
    assert [e.message for e in switchover] == [
        "waiting for CloudNativePG cluster db/pg to switch its primary pg-1 to another node",
        "CloudNativePG cluster db/pg switched over: pg-1 is a replica now"]
    kinds = [e.kind for e in events if e.pod == "db/pg-1"]
    assert kinds == ["switchover", "switchover", "evicting", "evicted"]

    status = lab.store.peek(CLUSTERS, "db", "pg")["status"]
    assert status["currentPrimary"] != "pg-1"
    history = lab.history.since(0)
    assert check_history(history) == []
    assert set(removed(lab, before).values()) == {"eviction"}
    # kubehop never asked to evict the primary while it was one.
    assert not [e for e in history if e["type"] == "eviction-refused" and e["name"] == "pg-1"]


async def test_a_single_instance_cluster_is_refused_before_cordoning(stack, tmp_path):
    workloads = """\
  - {kind: CNPGCluster, namespace: db, name: solo, instances: 1, primaryNode: w1}
  - {kind: Deployment, namespace: web, name: frontend, replicas: 2, node: w1}
"""
    path = scenario(tmp_path, "solo", workloads, workers=2)
    (lab,) = await start_labs(stack, path, tmp_path, 1)
    before = pods_on(lab, "w1")
    result, events = await kubehop_drain(lab, "w1", "--ignore-daemonsets",
                                         "--delete-emptydir-data")
    assert isinstance(result, DrainError)
    assert not result.left_cordoned
    assert str(result) == (
        "cannot drain node w1: CloudNativePG cluster db/solo has a single instance (primary "
        "solo-1 on node w1): there is no replica to switch over to and its PodDisruptionBudget "
        "solo-primary blocks the eviction; scale it to 2 instances for the drain (kubectl -n db "
        "patch clusters.postgresql.cnpg.io solo --type merge -p '{\"spec\":{\"instances\":2}}') "
        "and back afterwards, or accept the downtime with --disable-eviction (node w1 was left "
        "schedulable)")
    assert events == []
    assert node_schedulable(lab, "w1")
    assert removed(lab, before) == {}

    # The user's explicit choice: delete it anyway (PDBs bypassed).
    result, _ = await kubehop_drain(lab, "w1", "--ignore-daemonsets", "--delete-emptydir-data",
                                    "--disable-eviction", "--grace-period=0", "--timeout=30s")
    assert not isinstance(result, Exception), result
    assert removed(lab, before).get("db/solo-1") == "delete"
