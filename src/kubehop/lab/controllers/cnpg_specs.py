"""CloudNativePG's behaviour around node drains, on plain API dicts.

The PDBs a Cluster owns follow cloudnative-pg `pkg/specs/poddisruptionbudget.go` and
`reconcilePodDisruptionBudget` (internal/controller/cluster_create.go); the switchover of a
primary off a cordoned node follows `reconcileTargetPrimaryForNonReplicaCluster`,
`shouldSetPrimaryToSchedulableNode` and `isNodeUnschedulableOrBeingDrained`
(internal/controller/replicas.go). Replica clusters (spec.replica.enabled) are not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubehop.lab.controllers.disruption_arithmetic import is_deleting, is_pod_ready

CLUSTER_LABEL = "cnpg.io/cluster"
INSTANCE_ROLE_LABEL = "cnpg.io/instanceRole"
POD_ROLE_LABEL = "cnpg.io/podRole"
PRIMARY = "primary"
REPLICA = "replica"
PRIMARY_PDB_SUFFIX = "-primary"
# Operator configuration DRAIN_TAINTS, default (cloudnative-pg docs, operator_conf.md).
DEFAULT_DRAIN_TAINTS = (
    "node.kubernetes.io/unschedulable",
    "ToBeDeletedByClusterAutoscaler",
    "karpenter.sh/disrupted",
    "karpenter.sh/disruption",
)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _pdb(cluster: Mapping[str, Any], name: str, role: str, min_available: int) -> dict[str, Any]:
    """A PDB as BuildPrimary/ReplicasPodDisruptionBudget + SetInheritedDataAndOwnership build it."""
    meta = _meta(cluster)
    inherited = (cluster.get("spec") or {}).get("inheritedMetadata") or {}
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": meta.get("namespace"),
        "labels": {**(inherited.get("labels") or {}), CLUSTER_LABEL: meta.get("name")},
    }
    if inherited.get("annotations"):
        metadata["annotations"] = dict(inherited["annotations"])
    metadata["ownerReferences"] = [
        {
            "apiVersion": cluster.get("apiVersion", "postgresql.cnpg.io/v1"),
            "kind": cluster.get("kind", "Cluster"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "controller": True,
        }
    ]
    selector = {"matchLabels": {CLUSTER_LABEL: meta.get("name"), INSTANCE_ROLE_LABEL: role}}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata,
        "spec": {"selector": selector, "minAvailable": min_available},
    }


def desired_pdbs(cluster: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The PDBs the operator keeps for a Cluster (any other PDB it owns is deleted).

    `<name>-primary` (minAvailable 1, the primary) always; `<name>` (minAvailable instances-2,
    the replicas) from 3 instances. None with enablePDB false. During a node maintenance window
    with reusePVC (default true) there is no replicas PDB, and no primary PDB for one instance.
    """
    spec = cluster.get("spec") or {}
    if spec.get("enablePDB", True) is False:
        return []
    instances = int(spec.get("instances", 1))
    name = _meta(cluster).get("name", "")
    primary = _pdb(cluster, name + PRIMARY_PDB_SUFFIX, PRIMARY, 1)
    replicas = _pdb(cluster, name, REPLICA, instances - 2) if instances >= 3 else None
    window = spec.get("nodeMaintenanceWindow") or {}
    if window.get("inProgress") and window.get("reusePVC", True) is not False:
        replicas = None
        if instances == 1:
            primary = None
    return [pdb for pdb in (primary, replicas) if pdb is not None]


def instance_pods(
    cluster: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The Cluster's PostgreSQL instance pods (not poolers or jobs), not being deleted."""
    meta = _meta(cluster)
    result = []
    for pod in pods:
        labels = _meta(pod).get("labels") or {}
        if (
            _meta(pod).get("namespace") == meta.get("namespace")
            and labels.get(CLUSTER_LABEL) == meta.get("name")
            and labels.get(POD_ROLE_LABEL, "instance") == "instance"
            and "cnpg.io/jobRole" not in labels
            and not is_deleting(pod)
        ):
            result.append(dict(pod))
    return result


def is_node_draining(
    node: Mapping[str, Any], drain_taints: Sequence[str] = DEFAULT_DRAIN_TAINTS
) -> bool:
    """isNodeUnschedulableOrBeingDrained: cordoned, or carrying a drain taint."""
    spec = node.get("spec") or {}
    return any(t.get("key") in drain_taints for t in spec.get("taints") or []) or bool(
        spec.get("unschedulable")
    )


@dataclass(frozen=True, slots=True)
class Switchover:
    """The operator's decision: promote `target` (None: leave the primary where it is), why."""

    target: str | None
    reason: str


def decide_switchover(
    cluster: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
    nodes: Iterable[Mapping[str, Any]],
    drain_taints: Sequence[str] = DEFAULT_DRAIN_TAINTS,
) -> Switchover:
    """Whether the operator moves the primary off an unschedulable node, and to which replica.

    Upstream picks the most advanced replica; the lab's replicas are all caught up, so that is
    the first Ready replica by name. It waits while an instance is not ready or not yet on a
    schedulable node, unless some instance has failed.
    """
    spec, status = cluster.get("spec") or {}, cluster.get("status") or {}
    current = status.get("currentPrimary")
    if not current:
        return Switchover(None, "the cluster has no current primary yet")
    if status.get("targetPrimary", current) != current:
        target = status.get("targetPrimary")
        return Switchover(None, f"a switchover to {target} is already in progress")
    by_node = {_meta(n).get("name"): n for n in nodes}
    members = instance_pods(cluster, pods)
    primary = next((p for p in members if _meta(p).get("name") == current), None)
    if primary is None or not is_pod_ready(primary):
        return Switchover(
            None, f"primary {current} is not ready: that is a failover, not a switchover"
        )
    primary_node = (primary.get("spec") or {}).get("nodeName")
    node = by_node.get(primary_node)
    if node is None or not is_node_draining(node, drain_taints):
        return Switchover(None, f"primary {current} runs on schedulable node {primary_node}")

    def schedulable_elsewhere(pod: Mapping[str, Any]) -> bool:
        where = (pod.get("spec") or {}).get("nodeName")
        other = by_node.get(where)
        return (
            where != primary_node
            and other is not None
            and not is_node_draining(other, drain_taints)
        )

    replicas = [p for p in members if _meta(p).get("name") != current]
    elsewhere = [p for p in replicas if schedulable_elsewhere(p)]
    instances = int(spec.get("instances", 1))
    if not elsewhere:
        if instances == 1:
            return Switchover(
                None,
                f"single-instance cluster: primary {current} on cordoned node {primary_node} "
                "has no replica to switch over to, so its PodDisruptionBudget blocks the drain",
            )
        return Switchover(
            None,
            f"primary {current} runs on unschedulable node {primary_node}, but no other instance "
            "runs on a schedulable node",
        )
    # utils.ListStatusPods: an instance neither ready nor active (Succeeded/Failed) has failed.
    failed = any(
        not is_pod_ready(p) and (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        for p in members
    )
    ready = status.get("readyInstances", sum(is_pod_ready(p) for p in members))
    if not failed and (instances != ready or len(elsewhere) < instances - 1):
        return Switchover(
            None,
            f"primary {current} runs on unschedulable node {primary_node}; waiting: "
            f"{ready}/{instances} instances ready, {len(elsewhere)} on schedulable nodes",
        )
    # The status list sorts reachable instances first, then by replication progress, then name.
    candidate = sorted(replicas, key=lambda p: (not is_pod_ready(p), _meta(p).get("name", "")))[0]
    if not is_pod_ready(candidate):
        return Switchover(None, f"replica {_meta(candidate).get('name')} reports no status yet")
    name = _meta(candidate).get("name")
    where = (candidate.get("spec") or {}).get("nodeName")
    return Switchover(
        name,
        f"primary {current} runs on unschedulable node {primary_node}: switching over to {name} "
        f"on {where}",
    )
