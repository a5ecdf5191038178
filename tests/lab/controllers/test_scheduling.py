"""Pending pods are bound where they fit, or stay Pending saying why, and are retried."""

from __future__ import annotations

from kubehop.lab.controllers import scheduler as pure
from kubehop.lab.controllers.placement import feasible_nodes_to_find
from kubehop.lab.fixtures import objects as o
from kubehop.lab.fixtures.specs import LabWorkloadSpec
from tests.lab.controllers.conftest import Factory, small_spec

BIG = LabWorkloadSpec("Deployment", "batch", "big", replicas=2, requests={"cpu": "3"})


def pending(lab) -> list[dict]:
    return [p for p in lab.pods("batch") if not p["spec"].get("nodeName")]


def scheduled_condition(pod: dict) -> dict:
    return next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")


async def test_pod_stays_pending_with_the_schedulers_message(make_lab: Factory):
    lab = await make_lab(small_spec(workloads=(BIG,)))
    await lab.settle()
    lab.store.mutate("deployments.apps", "batch", "big", lambda d: d["spec"].update(replicas=3))
    await lab.settle()
    (pod,) = pending(lab)
    assert pod["status"]["phase"] == "Pending"
    cond = scheduled_condition(pod)
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    expected = pure.schedule(pod, lab.store.list("nodes").items, lab.store.list("pods").items)
    assert expected.node is None
    assert cond["message"] == expected.message
    assert cond["message"] == (
        "0/3 nodes are available: 1 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes "
        "are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims "
        "found for incoming pod.."
    )
    event = lab.store.get("events", "batch", f"{pod['metadata']['name']}.failedscheduling")
    assert (event["reason"], event["type"], event["message"]) == (
        "FailedScheduling", "Warning", cond["message"])
    assert lab.events("pod", name=pod["metadata"]["name"], event="scheduled") == []


async def test_pending_pod_is_placed_when_a_node_joins(make_lab: Factory):
    lab = await make_lab(small_spec(workloads=(BIG,)))
    await lab.settle()
    lab.store.mutate("deployments.apps", "batch", "big", lambda d: d["spec"].update(replicas=3))
    await lab.settle()
    (pod,) = pending(lab)
    lab.store.create("nodes", o.node("w3", internal_ip="127.77.0.50", pod_cidr="127.128.50.0/24",
                                     created=lab.clock.timestamp()))
    await lab.settle()
    placed = lab.pod("batch", pod["metadata"]["name"])
    assert placed["spec"]["nodeName"] == "w3"
    assert placed["status"]["phase"] == "Running"
    assert scheduled_condition(placed)["status"] == "True"


async def test_pending_pod_is_placed_when_room_is_freed(make_lab: Factory):
    lab = await make_lab(small_spec(workloads=(BIG,)))
    await lab.settle()
    lab.cordon("w2")
    victim = next(p for p in lab.pods("batch") if p["spec"]["nodeName"] == "w2")
    lab.ctl.delete_pod("batch", victim["metadata"]["name"])
    await lab.settle()
    (pod,) = pending(lab)
    assert "1 node(s) were unschedulable" in scheduled_condition(pod)["message"]
    lab.cordon("w2", False)
    await lab.settle()
    assert pending(lab) == []
    assert lab.pod("batch", pod["metadata"]["name"])["spec"]["nodeName"] == "w2"


async def test_uncordoned_and_cordoned_nodes(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    lab.cordon("w1")
    for p in lab.pods("web"):
        lab.ctl.delete_pod("web", p["metadata"]["name"])
    await lab.settle()
    assert {p["spec"]["nodeName"] for p in lab.pods("web")} == {"w2"}


def test_feasible_nodes_to_find_matches_the_adaptive_default():
    assert feasible_nodes_to_find(3) == 3
    assert feasible_nodes_to_find(99) == 99
    assert feasible_nodes_to_find(100) == 100  # 49% of 100 is below the minimum of 100
    assert feasible_nodes_to_find(1000) == 420  # 50 - 1000/125 = 42%
    assert feasible_nodes_to_find(5000) == 500  # 10%
    assert feasible_nodes_to_find(10000) == 500  # floor of 5%
