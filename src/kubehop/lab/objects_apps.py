"""Builders of workload objects: apps/v1 Deployments, ReplicaSets, StatefulSets, DaemonSets
(with the status their controllers report at steady state), policy/v1 PDBs and ConfigMaps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubehop.lab.objects import EPOCH, meta

Obj = dict[str, Any]


def pod_template(labels: Mapping[str, str], containers: list[Obj],
                 volumes: list[Obj] | None = None) -> Obj:
    """A PodTemplateSpec for workload controllers."""
    spec: Obj = {
        "containers": containers,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler",
    }
    if volumes:
        spec["volumes"] = volumes
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def workload(
    kind: str,
    namespace: str,
    name: str,
    *,
    replicas: int | None,
    labels: Mapping[str, str],
    containers: list[Obj],
    volumes: list[Obj] | None = None,
    created: str = EPOCH,
) -> Obj:
    """A Deployment, ReplicaSet, StatefulSet or DaemonSet (replicas None for DaemonSets)."""
    spec: Obj = {
        "selector": {"matchLabels": dict(labels)},
        "template": pod_template(labels, containers, volumes),
    }
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    status: Obj = {"observedGeneration": 1}
    if kind == "Deployment":
        spec["strategy"] = {"type": "RollingUpdate",
                            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
        spec["revisionHistoryLimit"] = 10
        spec["progressDeadlineSeconds"] = 600
        status.update(replicas=replicas, updatedReplicas=replicas, readyReplicas=replicas,
                      availableReplicas=replicas)
    elif kind == "StatefulSet":
        spec["serviceName"] = name
        spec["podManagementPolicy"] = "OrderedReady"
        spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        status.update(replicas=replicas, readyReplicas=replicas, currentReplicas=replicas,
                      updatedReplicas=replicas, availableReplicas=replicas)
    elif kind == "ReplicaSet":
        status.update(replicas=replicas, readyReplicas=replicas, availableReplicas=replicas,
                      fullyLabeledReplicas=replicas)
    else:
        spec["updateStrategy"] = {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
        status.update(currentNumberScheduled=0, desiredNumberScheduled=0, numberMisscheduled=0,
                      numberReady=0)
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": meta(name, namespace, labels=labels, created=created),
        "spec": spec,
        "status": status,
    }


def pdb(
    namespace: str,
    name: str,
    *,
    selector: Mapping[str, str],
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
    created: str = EPOCH,
) -> Obj:
    """A policy/v1 PodDisruptionBudget with an empty (not yet computed) status."""
    spec: Obj = {"selector": {"matchLabels": dict(selector)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(name, namespace, created=created),
        "spec": spec,
        "status": {"observedGeneration": 0, "disruptionsAllowed": 0, "currentHealthy": 0,
                   "desiredHealthy": 0, "expectedPods": 0},
    }


def configmap(namespace: str, name: str, data: Mapping[str, str], *, created: str = EPOCH) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": meta(name, namespace, created=created), "data": dict(data)}
