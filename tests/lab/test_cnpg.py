"""CloudNativePG: the PDBs a Cluster owns, and the switchover off a cordoned node."""

import pytest

from kubehop.lab.api.eviction import decide_eviction
from kubehop.lab.clock import rfc3339
from kubehop.lab.controllers.cnpg_specs import (
    decide_switchover,
    desired_pdbs,
    instance_pods,
    is_node_draining,
)
from kubehop.lab.controllers.disruption_arithmetic import compute_pdb_status, scale_resolver

NOW = 1714564800.0


def cluster(instances=3, primary="pg-1", target=None, **spec):
    status = {
        "currentPrimary": primary,
        "instanceNames": [f"pg-{i}" for i in range(1, instances + 1)],
    }
    if target:
        status["targetPrimary"] = target
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "pg", "namespace": "db", "uid": "pg-uid"},
        "spec": {"instances": instances, **spec},
        "status": status,
    }


def instance(n, node, role="replica", ready=True, phase="Running", deleting=False):
    meta = {
        "name": f"pg-{n}",
        "namespace": "db",
        "labels": {
            "cnpg.io/cluster": "pg",
            "cnpg.io/instanceName": f"pg-{n}",
            "cnpg.io/podRole": "instance",
            "cnpg.io/instanceRole": role,
        },
        "ownerReferences": [
            {
                "apiVersion": "postgresql.cnpg.io/v1",
                "kind": "Cluster",
                "name": "pg",
                "uid": "pg-uid",
                "controller": True,
            }
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW)
    return {
        "metadata": meta,
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def node(name, unschedulable=False, taints=None):
    spec = {"unschedulable": True} if unschedulable else {}
    if taints:
        spec["taints"] = [{"key": k, "effect": "NoSchedule"} for k in taints]
    return {"metadata": {"name": name}, "spec": spec}


def three_instances(ready=(True, True, True)):
    return [
        instance(1, "w1", "primary", ready=ready[0]),
        instance(2, "w2", ready=ready[1]),
        instance(3, "w3", ready=ready[2]),
    ]


NODES = [node("w1", unschedulable=True), node("w2"), node("w3")]


# --- PodDisruptionBudgets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_cluster", "expected"),
    [
        (cluster(1), [("pg-primary", "primary", 1)]),
        (cluster(2), [("pg-primary", "primary", 1)]),
        (cluster(3), [("pg-primary", "primary", 1), ("pg", "replica", 1)]),
        (cluster(5), [("pg-primary", "primary", 1), ("pg", "replica", 3)]),
        (cluster(3, enablePDB=False), []),
        (cluster(3, enablePDB=True), [("pg-primary", "primary", 1), ("pg", "replica", 1)]),
        # Maintenance window with reusePVC (default true): no replicas PDB; none at all for one.
        (cluster(3, nodeMaintenanceWindow={"inProgress": True}), [("pg-primary", "primary", 1)]),
        (cluster(1, nodeMaintenanceWindow={"inProgress": True, "reusePVC": True}), []),
        (
            cluster(3, nodeMaintenanceWindow={"inProgress": True, "reusePVC": False}),
            [("pg-primary", "primary", 1), ("pg", "replica", 1)],
        ),
        (cluster(1, nodeMaintenanceWindow={"inProgress": False}), [("pg-primary", "primary", 1)]),
    ],
)
def test_desired_pdbs(the_cluster, expected):
    got = [
        (
            p["metadata"]["name"],
            p["spec"]["selector"]["matchLabels"]["cnpg.io/instanceRole"],
            p["spec"]["minAvailable"],
        )
        for p in desired_pdbs(the_cluster)
    ]
    assert got == expected


def test_pdb_object_shape():
    the_cluster = cluster(
        3, inheritedMetadata={"labels": {"team": "data"}, "annotations": {"a": "b"}}
    )
    primary, _ = desired_pdbs(the_cluster)
    assert primary == {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": "pg-primary",
            "namespace": "db",
            "labels": {"team": "data", "cnpg.io/cluster": "pg"},
            "annotations": {"a": "b"},
            "ownerReferences": [
                {
                    "apiVersion": "postgresql.cnpg.io/v1",
                    "kind": "Cluster",
                    "name": "pg",
                    "uid": "pg-uid",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "selector": {
                "matchLabels": {"cnpg.io/cluster": "pg", "cnpg.io/instanceRole": "primary"}
            },
            "minAvailable": 1,
        },
    }


def test_pdbs_let_one_replica_go_and_hold_the_primary():
    pods = three_instances()
    resolve = scale_resolver([cluster(3)])
    primary_pdb, replicas_pdb = (
        {**p, "metadata": {**p["metadata"], "generation": 1}} for p in desired_pdbs(cluster(3))
    )
    primary_status = compute_pdb_status(primary_pdb, pods, resolve, NOW)
    replicas_status = compute_pdb_status(replicas_pdb, pods, resolve, NOW)
    assert (primary_status["currentHealthy"], primary_status["disruptionsAllowed"]) == (1, 0)
    assert (replicas_status["currentHealthy"], replicas_status["disruptionsAllowed"]) == (2, 1)
    primary_pdb["status"] = primary_status
    refused = decide_eviction(
        pods[0], [primary_pdb, replicas_pdb], {"metadata": {"name": "pg-1"}}, "pg-1", NOW
    )
    assert refused.code == 429
    assert refused.body["details"]["causes"][0]["message"] == (
        "The disruption budget pg-primary needs 1 healthy pods and has 1 currently"
    )


def test_instance_pods_skip_other_clusters_poolers_jobs_and_deleting_pods():
    pooler = instance(9, "w1")
    pooler["metadata"]["labels"]["cnpg.io/podRole"] = "pooler"
    job = instance(8, "w1")
    job["metadata"]["labels"]["cnpg.io/jobRole"] = "initdb"
    other = instance(7, "w1")
    other["metadata"]["labels"]["cnpg.io/cluster"] = "other"
    pods = [*three_instances(), pooler, job, other, instance(4, "w2", deleting=True)]
    assert [p["metadata"]["name"] for p in instance_pods(cluster(3), pods)] == [
        "pg-1",
        "pg-2",
        "pg-3",
    ]


@pytest.mark.parametrize(
    ("the_node", "draining"),
    [
        (node("n"), False),
        (node("n", unschedulable=True), True),
        (node("n", taints=["karpenter.sh/disrupted"]), True),
        (node("n", taints=["ToBeDeletedByClusterAutoscaler"]), True),
        (node("n", taints=["unknown.io/taint"]), False),
    ],
)
def test_is_node_draining(the_node, draining):
    assert is_node_draining(the_node) is draining


# --- switchover ------------------------------------------------------------------------------


def test_primary_on_a_cordoned_node_switches_to_the_first_ready_replica():
    decision = decide_switchover(cluster(3), three_instances(), NODES)
    assert decision.target == "pg-2"
    assert (
        decision.reason
        == "primary pg-1 runs on unschedulable node w1: switching over to pg-2 on w2"
    )


def test_drain_taint_triggers_the_switchover_too():
    nodes = [node("w1", taints=["node.kubernetes.io/unschedulable"]), node("w2"), node("w3")]
    assert decide_switchover(cluster(3), three_instances(), nodes).target == "pg-2"


@pytest.mark.parametrize(
    ("the_cluster", "pods", "nodes", "reason"),
    [
        (
            cluster(3),
            three_instances(),
            [node("w1"), node("w2"), node("w3")],
            "primary pg-1 runs on schedulable node w1",
        ),
        (
            cluster(1),
            [instance(1, "w1", "primary")],
            NODES,
            "single-instance cluster: primary pg-1 on cordoned node w1 "
            "has no replica to switch over to, so its PodDisruptionBudget blocks the drain",
        ),
        (
            cluster(2),
            [instance(1, "w1", "primary"), instance(2, "w1")],
            NODES,
            "primary pg-1 runs on unschedulable node w1, "
            "but no other instance runs on a schedulable node",
        ),
        (
            cluster(3),
            [instance(1, "w1", "primary"), instance(2, "w2"), instance(3, "w4")],
            [*NODES, node("w4", unschedulable=True)],
            "primary pg-1 runs on unschedulable node w1; "
            "waiting: 3/3 instances ready, 1 on schedulable nodes",
        ),
        (
            cluster(3),
            three_instances(ready=(True, True, False)),
            NODES,
            "primary pg-1 runs on unschedulable node w1; "
            "waiting: 2/3 instances ready, 2 on schedulable nodes",
        ),
        (
            cluster(3, target="pg-3"),
            three_instances(),
            NODES,
            "a switchover to pg-3 is already in progress",
        ),
        (
            cluster(3),
            three_instances(ready=(False, True, True)),
            NODES,
            "primary pg-1 is not ready: that is a failover, not a switchover",
        ),
        (
            cluster(3, primary=None),
            three_instances(),
            NODES,
            "the cluster has no current primary yet",
        ),
    ],
)
def test_no_switchover(the_cluster, pods, nodes, reason):
    decision = decide_switchover(the_cluster, pods, nodes)
    assert decision.target is None
    assert decision.reason == reason


def test_a_failed_instance_does_not_hold_the_switchover_back():
    pods = [
        instance(1, "w1", "primary"),
        instance(2, "w2"),
        instance(3, "w3", ready=False, phase="Failed"),
    ]
    assert decide_switchover(cluster(3), pods, NODES).target == "pg-2"


def test_ready_instances_from_the_cluster_status_win():
    the_cluster = cluster(3)
    the_cluster["status"]["readyInstances"] = 2
    assert decide_switchover(the_cluster, three_instances(), NODES).target is None


def test_the_choice_is_deterministic():
    pods = [instance(1, "w1", "primary"), instance(3, "w3"), instance(2, "w2")]
    assert decide_switchover(cluster(3), pods, NODES).target == "pg-2"
    assert (
        decide_switchover(cluster(3), list(reversed(pods)), list(reversed(NODES))).target == "pg-2"
    )
