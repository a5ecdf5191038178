"""The incremental scheduler decides exactly as the pure one on clusters it scans fully."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kubehop.lab import objects as o
from kubehop.lab import scheduler as pure
from kubehop.lab.clock import LabClock
from kubehop.lab.controllers import Timing
from kubehop.lab.controllers.runtime import Runtime
from kubehop.lab.controllers.scheduling import Scheduler
from kubehop.lab.store import Store

CPUS = ["100m", "500m", "1", "2", "4"]
MEMORY = ["64Mi", "256Mi", "1Gi", "4Gi"]

node_specs = st.lists(
    st.fixed_dictionaries({
        "cpu": st.sampled_from(["1", "2", "4"]),
        "memory": st.sampled_from(["1Gi", "4Gi", "8Gi"]),
        "pods": st.sampled_from(["2", "5", "110"]),
        "unschedulable": st.booleans(),
        "ready": st.sampled_from([True, True, False]),
        "tainted": st.booleans(),
        "zone": st.sampled_from(["a", "b"]),
    }),
    min_size=1, max_size=6,
)
requests = st.fixed_dictionaries({}, optional={"cpu": st.sampled_from(CPUS),
                                               "memory": st.sampled_from(MEMORY)})
pending = st.fixed_dictionaries({
    "requests": requests,
    "tolerate": st.sampled_from([None, "unschedulable", "all"]),
    "zone": st.sampled_from([None, "a", "b"]),
    "never": st.booleans(),
})


def build(nodes: list[dict], bound: list[tuple[int, dict]]) -> Store:
    store = Store()
    for i, spec in enumerate(nodes):
        node = o.node(f"n{i}", cpu=spec["cpu"], memory=spec["memory"], pods=spec["pods"],
                      unschedulable=spec["unschedulable"], ready=spec["ready"],
                      labels={"zone": spec["zone"]})
        if spec["tainted"]:
            node["spec"].setdefault("taints", []).append(
                {"key": "dedicated", "value": "db", "effect": "NoSchedule"})
        store.create("nodes", node)
    for j, (i, req) in enumerate(bound):
        store.create("pods", o.pod("default", f"p{j}", node_name=f"n{i % len(nodes)}",
                                   containers=[o.container("c", "img", requests=req or None)]))
    return store


def pending_pod(spec: dict) -> dict:
    pod = o.pod("default", "new", containers=[o.container("c", "img",
                                                          requests=spec["requests"] or None)])
    if spec["tolerate"] == "unschedulable":
        pod["spec"]["tolerations"].append({"key": pure.UNSCHEDULABLE_TAINT, "operator": "Exists",
                                           "effect": "NoSchedule"})
    elif spec["tolerate"] == "all":
        pod["spec"]["tolerations"] = [{"operator": "Exists"}]
    if spec["zone"]:
        pod["spec"]["nodeSelector"] = {"zone": spec["zone"]}
    if spec["never"]:
        pod["spec"]["preemptionPolicy"] = "Never"
    return pod


@settings(max_examples=150, deadline=None)
@given(node_specs, st.lists(st.tuples(st.integers(0, 5), requests), max_size=12), pending)
def test_incremental_placement_equals_the_pure_scheduler(nodes, bound, spec):
    store = build(nodes, bound)
    rt = Runtime(store, LabClock(1.0), Timing())
    scheduler = Scheduler(rt)
    rt.add(scheduler)
    rt.attach()
    pod = pending_pod(spec)
    node, message = scheduler.place(pod)
    want = pure.schedule(pod, store.list("nodes").items, store.list("pods").items)
    assert (node, message) == (want.node, want.message)
    rt.detach()


def test_pinned_pods_only_consider_their_node():
    store = build([{"cpu": "1", "memory": "1Gi", "pods": "110", "unschedulable": True,
                    "ready": True, "tainted": False, "zone": "a"}] * 3, [])
    rt = Runtime(store, LabClock(1.0), Timing())
    scheduler = Scheduler(rt)
    rt.add(scheduler)
    rt.attach()
    pod = pending_pod({"requests": {"cpu": "2"}, "tolerate": "unschedulable", "zone": None,
                       "never": False})
    pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                               {"nodeSelectorTerms": [{"matchFields": [
                                   {"key": "metadata.name", "operator": "In",
                                    "values": ["n1"]}]}]}}}
    want = pure.schedule(pod, store.list("nodes").items, [])
    assert scheduler.place(pod) == (None, want.message)
    assert "2 node(s) didn't match Pod's node affinity/selector" in want.message
    del pod["spec"]["containers"][0]["resources"]["requests"]
    assert scheduler.place(pod) == ("n1", "")
