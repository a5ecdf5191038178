"""One evictability rule (kubehop.core.drain.rules.drain_evicts), after kubectl
pkg/drain/filters.go, and the check, the wave planner and the drain's own filter chain
agreeing on it."""

from __future__ import annotations

import pytest

from kubehop.core.checks.workloads import capacity_findings, drain_findings, evictable
from kubehop.core.drain.rules import DrainOptions, drain_evicts, plan_drain, pod_from_dict
from kubehop.core.workloads import WorkloadIndex
from kubehop.model.cluster import ClusterState, NodeState, PodInfo, Resources

NOW = 1_000_000.0
GI = 2**30


@pytest.mark.parametrize(("facts", "evicts"), [
    (dict(daemonset=False, mirror=False, phase="Running"), True),
    (dict(daemonset=False, mirror=False, phase="Pending"), True),
    (dict(daemonset=True, mirror=False, phase="Running"), False),  # daemonSetFilter
    (dict(daemonset=False, mirror=True, phase="Running"), False),  # mirrorPodFilter
    (dict(daemonset=False, mirror=False, phase="Succeeded"), False),  # deleted, not evicted
    (dict(daemonset=False, mirror=False, phase="Failed"), False),
    # skipDeletedFilter: a pod being deleted still counts (the drain waits for it) ...
    (dict(daemonset=False, mirror=False, phase="Running", deletion_time=NOW - 600), True),
    # ... unless it has been deleting for longer than --skip-wait-for-delete-timeout
    (dict(daemonset=False, mirror=False, phase="Running", deletion_time=NOW - 600,
          skip_after=60, now=NOW), False),
    (dict(daemonset=False, mirror=False, phase="Running", deletion_time=NOW - 30,
          skip_after=60, now=NOW), True),
])
def test_drain_evicts_as_kubectls_filters(facts, evicts):
    assert drain_evicts(**facts) is evicts


# (name, owner kind, phase, mirror, being deleted)
PODS = [("web-1", "ReplicaSet", "Running", False, False),
        ("web-2", "ReplicaSet", "Running", False, True),
        ("agent", "DaemonSet", "Running", False, False),
        ("kube-apiserver-w1", "Node", "Running", True, False),
        ("job-1", "Job", "Succeeded", False, False),
        ("bare", None, "Running", False, True)]


def _model_pods() -> tuple[PodInfo, ...]:
    return tuple(PodInfo("web", name, "w1", kind, "x" if kind else None, phase=phase,
                         mirror=mirror, deletion_time=NOW - 5 if deleting else None,
                         requests=Resources(1000, GI, 1))
                 for name, kind, phase, mirror, deleting in PODS)


def _state(cpu: int = 8000) -> ClusterState:
    nodes = tuple(NodeState(name=n, allocatable=Resources(cpu, 16 * GI, 110))
                  for n in ("w1", "w2"))
    return ClusterState(nodes=nodes, pods=_model_pods(), workloads_observed=True)


def test_one_pod_record_for_observe_and_the_drain():
    raw = {"metadata": {"namespace": "web", "name": "a", "labels": {"b": "2", "a": "1"},
                        "deletionTimestamp": "1970-01-12T13:46:40Z",
                        "ownerReferences": [{"kind": "DaemonSet", "name": "d",
                                             "controller": True}]},
           "spec": {"nodeName": "w1"}, "status": {"phase": "Running"}}
    pod = pod_from_dict(raw)
    assert isinstance(pod, PodInfo)
    assert (pod.labels, pod.daemonset, pod.deleting, pod.deletion_time) == \
        ((("a", "1"), ("b", "2")), True, True, NOW)


def test_check_planner_and_drain_count_the_same_pods():
    expected = {"web/web-1", "web/web-2", "web/bare"}
    assert {p.key for p in _model_pods() if evictable(p)} == expected
    assert WorkloadIndex(_state()).load("w1").evictable == len(expected)
    decision = plan_drain(_model_pods(), DrainOptions(ignore_daemonsets=True, force=True),
                          now=NOW)
    assert {p.key for p in decision.evict if p.phase == "Running"} == expected


def test_a_pod_being_deleted_still_needs_room_elsewhere():
    # w2 has room for two of w1's three evicted pods: the terminating one must count too.
    found = [f for f in capacity_findings(_state(cpu=2000)) if f.subject == "node/w1"]
    assert len(found) == 1
    assert "the 3 pods a drain of node w1 evicts" in found[0].message


def test_a_bare_pod_being_deleted_is_still_refused_without_force():
    assert [f.subject for f in drain_findings(_state())
            if f.id == "drain.pod-without-controller"] == ["pod/web/bare"]
