"""Pod start and graceful termination on the nodes; the node lifecycle controller."""

from __future__ import annotations

from kubehop.lab.addresses import pod_cidr
from kubehop.lab.controllers.runtime import Timing
from kubehop.lab.fixtures import objects as o
from kubehop.lab.fixtures.specs import LabWorkloadSpec
from tests.lab.controllers.conftest import Factory, small_spec

SCRATCH = LabWorkloadSpec("Pod", "default", "scratch", node="w1")


def ready(pod: dict) -> str:
    return next(c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready")


def taints(lab, node: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in lab.store.get("nodes", "", node)["spec"].get(
        "taints", [])}


async def test_graceful_deletion_takes_the_shorter_of_grace_and_pod_stop(make_lab: Factory):
    lab = await make_lab(small_spec(workloads=(SCRATCH,)), timing=Timing(podStop=6))
    await lab.settle()
    start = lab.clock.now()
    pod = lab.ctl.delete_pod("default", "scratch", grace_seconds=3)
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 3
    await lab.settle()
    (deleted,) = lab.events("pod", name="scratch", event="deleted")
    assert deleted["by"] == "delete"
    assert deleted["t"] - start < 1
    assert 3 <= lab.removed["scratch"] - start < 9
    assert lab.pods("default", live=False) == []  # owned by nothing: not recreated


async def test_a_second_delete_may_only_shorten_the_grace_period(make_lab: Factory):
    lab = await make_lab(small_spec(workloads=(SCRATCH,)), timing=Timing(podStop=1000))
    await lab.settle()
    first = lab.ctl.delete_pod("default", "scratch", grace_seconds=30)
    again = lab.ctl.delete_pod("default", "scratch", grace_seconds=60)
    assert again["metadata"]["deletionTimestamp"] == first["metadata"]["deletionTimestamp"]
    lab.ctl.delete_pod("default", "scratch", grace_seconds=0)  # force
    assert lab.pod("default", "scratch") is None


async def test_unscheduled_pods_are_deleted_at_once(make_lab: Factory):
    lab = await make_lab()
    lab.store.create("pods", o.pod("default", "lonely", containers=[
        o.container("c", "registry.k8s.io/pause:3.9", requests={"cpu": "64"})]))
    await lab.settle()
    assert not lab.pod("default", "lonely")["spec"].get("nodeName")
    lab.ctl.delete_pod("default", "lonely")
    assert lab.pod("default", "lonely") is None


async def test_nothing_moves_on_a_node_that_is_not_ready(make_lab: Factory):
    lab = await make_lab(small_spec(workloads=(SCRATCH,)))
    await lab.settle()
    lab.set_node_ready("w1", False)
    await lab.settle()
    pod = lab.pod("default", "scratch")
    assert ready(pod) == "False"  # MarkPodsNotReady
    assert pod["status"]["phase"] == "Running"
    assert {("node.kubernetes.io/not-ready", "NoSchedule"),
            ("node.kubernetes.io/not-ready", "NoExecute")} <= taints(lab, "w1")
    lab.ctl.delete_pod("default", "scratch", grace_seconds=1)
    await lab.settle()
    assert lab.pod("default", "scratch")["metadata"]["deletionTimestamp"]  # stuck Terminating
    lab.set_node_ready("w1", True)
    await lab.settle()
    assert lab.pod("default", "scratch") is None
    assert not {k for k, _ in taints(lab, "w1")} & {"node.kubernetes.io/not-ready"}


async def test_pods_come_back_ready_with_their_node(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    on_w1 = [p["metadata"]["name"] for p in lab.pods("web") if p["spec"]["nodeName"] == "w1"]
    lab.set_node_ready("w1", False)
    await lab.settle()
    assert {ready(lab.pod("web", n)) for n in on_w1} == {"False"}
    assert lab.pdb_status("web", "frontend")["currentHealthy"] == 3 - len(on_w1)
    lab.set_node_ready("w1", True)
    await lab.settle()
    assert {ready(lab.pod("web", n)) for n in on_w1} == {"True"}
    assert lab.pdb_status("web", "frontend")["currentHealthy"] == 3


async def test_a_bound_pod_waits_for_its_node_to_be_ready(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    lab.set_node_ready("w1", False)
    await lab.settle()
    pod = o.pod("default", "pinned")
    pod["spec"]["nodeName"] = "w1"  # bound by hand, as a static pod's mirror would be
    lab.store.create("pods", pod)
    await lab.clock.advance(20)
    await lab.settle()
    assert lab.pod("default", "pinned")["status"]["phase"] == "Pending"
    lab.set_node_ready("w1", True)
    await lab.settle()
    started = lab.pod("default", "pinned")
    assert started["status"]["phase"] == "Running"
    assert ready(started) == "True"
    w1_cidr = lab.store.peek("nodes", "", "w1")["spec"]["podCIDR"]
    assert w1_cidr == pod_cidr(1)
    assert started["status"]["podIP"].startswith(w1_cidr.rsplit(".", 1)[0] + ".")


async def test_cordon_adds_and_uncordon_removes_the_unschedulable_taint(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    lab.cordon("w1")
    await lab.settle()
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in taints(lab, "w1")
    lab.cordon("w1", False)
    await lab.settle()
    assert taints(lab, "w1") == set()
    assert taints(lab, "cp") == {("node-role.kubernetes.io/control-plane", "NoSchedule")}


async def test_pods_leave_a_node_not_ready_for_longer_than_they_tolerate(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    # The DaemonSet controller's own pods tolerate not-ready forever (fixture pods may not).
    for p in lab.pods("monitoring"):
        if p["spec"]["nodeName"] == "w1":
            lab.ctl.delete_pod("monitoring", p["metadata"]["name"], grace_seconds=0)
    await lab.settle()
    web_on_w1 = {p["metadata"]["name"] for p in lab.pods("web") if p["spec"]["nodeName"] == "w1"}
    ds_on_w1 = {p["metadata"]["name"] for p in lab.pods("monitoring")
                if p["spec"]["nodeName"] == "w1"}
    assert web_on_w1
    assert ds_on_w1
    lab.set_node_ready("w1", False)
    await lab.clock.advance(310)  # past the 300 s default tolerationSeconds
    await lab.settle()
    deleted = {e["name"]: e["by"] for e in lab.events("pod", event="deleted")}
    assert all(deleted.get(n) is None for n in ds_on_w1)  # DaemonSet pods tolerate it
    assert {deleted[n] for n in web_on_w1} == {"controller"}
    # Web pods were deleted by the taint manager; they stay Terminating on the dead node.
    for name in web_on_w1:
        assert lab.pod("web", name)["metadata"]["deletionTimestamp"]
    assert len(lab.pods("web")) == 3  # replaced elsewhere
    assert all(p["spec"]["nodeName"] != "w1" for p in lab.pods("web"))


async def test_pods_of_a_deleted_node_are_collected(make_lab: Factory):
    lab = await make_lab(small_spec(workloads=(SCRATCH,)))
    await lab.settle()
    lab.store.delete("nodes", "", "w1")
    await lab.settle()
    assert lab.pod("default", "scratch") is None
    assert all(p["spec"].get("nodeName") != "w1" for p in lab.pods(None, live=False))


async def test_readiness_fault_injection(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    name = lab.pods("web")[0]["metadata"]["name"]
    lab.ctl.kubelet.set_ready("web", name, False)
    await lab.settle()
    assert ready(lab.pod("web", name)) == "False"
    assert [e["event"] for e in lab.events("pod", name=name)][-1] == "unready"
