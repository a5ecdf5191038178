"""Deployments, ReplicaSets, StatefulSets and DaemonSets keep their pods."""

from __future__ import annotations

import copy

from kubehop.lab.controllers.disruption_arithmetic import is_pod_ready
from kubehop.lab.controllers.pods import is_active
from kubehop.lab.controllers.runtime import Timing
from kubehop.lab.controllers.workloads import ReplicaSets
from kubehop.lab.fixtures import objects as o
from kubehop.lab.fixtures.specs import LabWorkloadSpec
from tests.lab.controllers.conftest import Factory, small_spec


def owner(pod: dict) -> str:
    return pod["metadata"]["ownerReferences"][0]["name"]


async def test_deleted_deployment_pod_is_replaced_on_a_schedulable_ready_node(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    lab.cordon("w2")
    victim = next(p for p in lab.pods("web") if p["spec"]["nodeName"] == "w1")
    name = victim["metadata"]["name"]
    lab.ctl.delete_pod("web", name)
    assert lab.pod("web", name)["metadata"]["deletionTimestamp"]  # terminating, not gone
    await lab.settle()
    assert lab.pod("web", name) is None
    pods = lab.pods("web")
    assert len(pods) == 3
    new = [p for p in pods if p["metadata"]["creationTimestamp"] > victim["metadata"][
        "creationTimestamp"]]
    assert len(new) == 1
    fresh = new[0]
    assert owner(fresh) == owner(victim)
    assert fresh["metadata"]["labels"]["pod-template-hash"] == victim["metadata"]["labels"][
        "pod-template-hash"]
    assert fresh["spec"]["nodeName"] == "w1"  # w2 cordoned, cp tainted
    assert fresh["status"]["phase"] == "Running"
    assert {c["type"]: c["status"] for c in fresh["status"]["conditions"]}["Ready"] == "True"
    events = {e["event"]: e for e in lab.events("pod", name=fresh["metadata"]["name"])}
    assert set(events) == {"created", "scheduled", "ready"}
    assert events["ready"]["t"] - events["scheduled"]["t"] >= Timing().podStart
    assert events["ready"]["t"] - events["scheduled"]["t"] < 3 * Timing().podStart  # jitter
    (gone,) = lab.events("pod", name=name, event="deleted")
    assert gone["by"] == "delete"
    created = lab.events("pod", name=fresh["metadata"]["name"], event="created")[0]
    assert gone["seq"] < created["seq"]


async def test_replacement_starts_while_the_old_pod_terminates(make_lab: Factory):
    lab = await make_lab(timing=Timing(podStop=30))
    await lab.settle()
    victim = lab.pods("web")[0]["metadata"]["name"]
    lab.ctl.delete_pod("web", victim, grace_seconds=30)
    await lab.settle()
    removed = lab.removed[victim]
    created = lab.events("pod", event="created", namespace="web")[-1]
    ready = lab.events("pod", event="ready", namespace="web")[-1]
    assert created["name"] == ready["name"] != victim
    assert created["t"] < removed - 25  # replaced as soon as the old pod began terminating
    assert ready["t"] < removed


async def test_rolling_update_keeps_every_replica_available(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    ready_counts: list[int] = []

    def count(_change: object) -> None:
        ready_counts.append(sum(
            1 for p in lab.store.iter("pods", "web")
            if not p["metadata"].get("deletionTimestamp") and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", []))))

    unsubscribe = lab.store.subscribe(count)
    lab.store.mutate("deployments.apps", "web", "frontend", lambda d: d["spec"]["template"][
        "spec"]["containers"][0].update(image="docker.io/library/nginx:1.27.0"))
    await lab.settle()
    unsubscribe()
    rss = lab.store.list("replicasets.apps", "web").items
    assert len(rss) == 2
    new = next(r for r in rss if r["spec"]["replicas"] == 3)
    old = next(r for r in rss if r is not new)
    assert old["spec"]["replicas"] == 0
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    pods = lab.pods("web")
    assert len(pods) == 3
    assert {owner(p) for p in pods} == {new["metadata"]["name"]}
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {
        "docker.io/library/nginx:1.27.0"}
    # maxUnavailable 25% of 3 rounds down to 0: three pods stay Ready throughout.
    assert min(ready_counts) >= 3
    d = lab.store.get("deployments.apps", "web", "frontend")
    assert d["status"]["updatedReplicas"] == 3
    assert d["status"]["availableReplicas"] == 3
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]


async def test_scale_down_removes_pods_by_controller(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    lab.store.mutate("deployments.apps", "web", "frontend", lambda d: d["spec"].update(replicas=1))
    await lab.settle()
    assert len(lab.pods("web", live=False)) == 1
    assert {e["by"] for e in lab.events("pod", event="deleted", namespace="web")} == {
        "controller"}


async def test_statefulset_pod_comes_back_with_its_name(make_lab: Factory):
    spec = small_spec(workloads=(LabWorkloadSpec("StatefulSet", "db", "pg", replicas=2),))
    lab = await make_lab(spec)
    await lab.settle()
    old_uid = lab.pod("db", "pg-1")["metadata"]["uid"]
    lab.ctl.delete_pod("db", "pg-1")
    await lab.settle()
    pod = lab.pod("db", "pg-1")
    assert pod["metadata"]["uid"] != old_uid
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "pg-1"
    assert pod["status"]["phase"] == "Running"
    created = lab.events("pod", name="pg-1", event="created")[-1]
    deleted = lab.events("pod", name="pg-1", event="deleted")[-1]
    assert created["t"] >= deleted["t"]  # a new pg-1 only once the old one is gone
    assert sorted(p["metadata"]["name"] for p in lab.pods("db")) == ["pg-0", "pg-1"]


async def test_statefulset_scales_up_in_order(make_lab: Factory):
    spec = small_spec(workloads=(LabWorkloadSpec("StatefulSet", "db", "pg", replicas=1),))
    lab = await make_lab(spec)
    await lab.settle()
    lab.store.mutate("statefulsets.apps", "db", "pg", lambda s: s["spec"].update(replicas=3))
    await lab.settle()
    ready = {e["name"]: e["t"] for e in lab.events("pod", event="ready", namespace="db")}
    created = {e["name"]: e["t"] for e in lab.events("pod", event="created", namespace="db")}
    assert created["pg-2"] >= ready["pg-1"] >= created["pg-1"]
    sts = lab.store.get("statefulsets.apps", "db", "pg")
    assert sts["status"]["readyReplicas"] == 3


async def test_daemonset_pods_stay_on_cordoned_nodes_and_start_on_new_ones(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    lab.cordon("w1")
    node = o.node("w3", internal_ip="127.77.0.99", pod_cidr="127.128.99.0/24", unschedulable=True,
                  created=lab.clock.timestamp())
    lab.store.create("nodes", node)
    await lab.settle()
    ds_pods = {p["spec"]["nodeName"] for p in lab.pods("monitoring")}
    assert ds_pods == {"cp", "w1", "w2", "w3"}
    on_w3 = next(p for p in lab.pods("monitoring") if p["spec"]["nodeName"] == "w3")
    assert on_w3["status"]["phase"] == "Running"
    tolerations = on_w3["spec"]["tolerations"]
    assert {"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
            "effect": "NoSchedule"} in tolerations
    ds = lab.store.get("daemonsets.apps", "monitoring", "node-exporter")
    # The fixture's pod on the tainted control plane is kept (NoSchedule only) but is not
    # where this DaemonSet, which has no toleration for it, should run.
    assert ds["status"]["desiredNumberScheduled"] == 3
    assert ds["status"]["numberMisscheduled"] == 1
    assert ds["status"]["numberReady"] == 3
    # A deleted DaemonSet pod on the cordoned node is replaced there.
    lab.ctl.delete_pod("monitoring", on_w3["metadata"]["name"])
    await lab.settle()
    assert "w3" in {p["spec"]["nodeName"] for p in lab.pods("monitoring")}
    # Deployment pods never land on the cordoned nodes.
    for p in lab.pods("web"):
        lab.ctl.delete_pod("web", p["metadata"]["name"])
    await lab.settle()
    assert {p["spec"]["nodeName"] for p in lab.pods("web")} == {"w2"}


async def test_bare_pods_are_not_recreated(make_lab: Factory):
    spec = small_spec(workloads=(LabWorkloadSpec("Pod", "default", "scratch", node="w1"),))
    lab = await make_lab(spec)
    await lab.settle()
    lab.ctl.delete_pod("default", "scratch")
    await lab.settle()
    assert lab.pods("default") == []


async def test_deleting_a_deployment_collects_its_replicasets_and_pods(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    lab.store.delete("deployments.apps", "web", "frontend")
    await lab.settle()
    assert lab.store.list("replicasets.apps", "web").items == []
    assert lab.pods("web", live=False) == []


async def test_daemonset_rolls_one_node_at_a_time(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    unavailable: list[int] = []

    def count(_change: object) -> None:
        nodes = {p["spec"].get("nodeName") for p in lab.store.iter("pods", "monitoring")
                 if not p["metadata"].get("deletionTimestamp") and any(
                     c["type"] == "Ready" and c["status"] == "True"
                     for c in p["status"].get("conditions", []))}
        unavailable.append(len({"w1", "w2"} - nodes))

    unsubscribe = lab.store.subscribe(count)
    lab.store.mutate("daemonsets.apps", "monitoring", "node-exporter", lambda d: d["spec"][
        "template"]["spec"]["containers"][0].update(image="quay.io/prometheus/node-exporter:v2"))
    await lab.settle()
    unsubscribe()
    images = {p["spec"]["nodeName"]: p["spec"]["containers"][0]["image"]
              for p in lab.pods("monitoring")}
    assert images["w1"] == images["w2"] == "quay.io/prometheus/node-exporter:v2"
    assert max(unavailable) == 1  # maxUnavailable 1
    ds = lab.store.get("daemonsets.apps", "monitoring", "node-exporter")
    assert ds["status"]["updatedNumberScheduled"] == 2


async def test_statefulset_rolls_from_the_highest_ordinal(make_lab: Factory):
    spec = small_spec(workloads=(LabWorkloadSpec("StatefulSet", "db", "pg", replicas=3),))
    lab = await make_lab(spec)
    await lab.settle()
    lab.store.mutate("statefulsets.apps", "db", "pg", lambda s: s["spec"]["template"]["spec"][
        "containers"][0].update(image="ghcr.io/cloudnative-pg/postgresql:17.0"))
    await lab.settle()
    order = [e["name"] for e in lab.events("pod", event="deleted", namespace="db")]
    assert order == ["pg-2", "pg-1", "pg-0"]
    assert {p["spec"]["containers"][0]["image"] for p in lab.pods("db")} == {
        "ghcr.io/cloudnative-pg/postgresql:17.0"}


def assert_replicaset_counts_match_the_store(lab) -> None:
    """The ReplicaSet controller's incremental counts equal a fresh walk of each set's pods."""
    ctl = next(c for c in lab.ctl.runtime.controllers if isinstance(c, ReplicaSets))
    checked = 0
    for rs in lab.store.iter("replicasets.apps"):
        uid = rs["metadata"]["uid"]
        counts = ctl.counts.get(uid)
        if counts is None:
            continue
        labels = rs["spec"]["template"]["metadata"].get("labels") or {}
        active = [p for p in lab.ctl.runtime.owned("pods", uid) if is_active(p)]
        walked = (len(active), sum(is_pod_ready(p) for p in active),
                  sum(all(p["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())
                      for p in active))
        assert (counts.active, counts.ready, counts.labeled) == walked
        status = rs["status"]
        assert (status["replicas"], status["readyReplicas"], status["availableReplicas"],
                status["fullyLabeledReplicas"]) == (walked[0], walked[1], walked[1], walked[2])
        checked += 1
    assert checked


async def test_replicaset_counts_follow_every_kind_of_pod_change(make_lab: Factory):
    lab = await make_lab(small_spec(workloads=(
        LabWorkloadSpec("Deployment", "web", "frontend", replicas=4),)))
    await lab.settle()
    assert_replicaset_counts_match_the_store(lab)
    a, b, c, d = sorted(p["metadata"]["name"] for p in lab.pods("web"))
    lab.ctl.kubelet.set_ready("web", a, False)
    lab.ctl.delete_pod("web", b)
    lab.store.mutate("pods", "web", c, lambda p: p["metadata"]["labels"].update(app="moved"))
    await lab.settle()
    assert_replicaset_counts_match_the_store(lab)
    lab.store.mutate("pods", "web", c, lambda p: p["metadata"].update(ownerReferences=[]))
    lab.store.mutate("pods", "web", d, lambda p: p["status"].update(phase="Failed"))
    await lab.settle()
    assert_replicaset_counts_match_the_store(lab)
    # A new template (labels too): the rollout's new ReplicaSet and the scaled-down old one.
    lab.store.mutate("deployments.apps", "web", "frontend", lambda dep: dep["spec"][
        "template"]["metadata"]["labels"].update(track="canary"))
    lab.store.mutate("deployments.apps", "web", "frontend",
                     lambda dep: dep["spec"].update(replicas=2))
    await lab.settle()
    assert_replicaset_counts_match_the_store(lab)
    # A ReplicaSet of its own whose template labels are edited: counted afresh.
    template = copy.deepcopy(next(iter(lab.store.iter("replicasets.apps", "web")))["spec"][
        "template"])
    template["metadata"]["labels"] = {"app": "solo"}
    lab.store.create("replicasets.apps", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "solo", "namespace": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "solo"}},
                 "template": template}})
    await lab.settle()
    assert_replicaset_counts_match_the_store(lab)
    lab.store.mutate("replicasets.apps", "web", "solo", lambda r: r["spec"]["template"][
        "metadata"]["labels"].update(extra="x"))
    await lab.settle()
    assert_replicaset_counts_match_the_store(lab)
    assert lab.store.get("replicasets.apps", "web", "solo")["status"][
        "fullyLabeledReplicas"] == 0
