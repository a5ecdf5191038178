"""The incremental scheduler decides exactly as the pure one on clusters it scans fully."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kubehop.lab.api.store import Store
from kubehop.lab.clock import LabClock
from kubehop.lab.controllers import scheduler as pure
from kubehop.lab.controllers.placement import (
    anti_affinity_penalty,
    anti_affinity_terms,
    failure_message,
    feasible_nodes_to_find,
    filter_node,
    least_allocated,
    pinned_node,
)
from kubehop.lab.controllers.placement import requests as requests_of
from kubehop.lab.controllers.runtime import Runtime, Timing
from kubehop.lab.controllers.scheduling import Scheduler
from kubehop.lab.fixtures import objects as o

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


def attached(store) -> tuple[Runtime, Scheduler]:
    """A scheduler attached to `store` (the caller detaches the runtime)."""
    rt = Runtime(store, LabClock(1.0), Timing())
    scheduler = Scheduler(rt)
    rt.add(scheduler)
    rt.attach()
    return rt, scheduler


@settings(max_examples=150, deadline=None)
@given(node_specs, st.lists(st.tuples(st.integers(0, 5), requests), max_size=12), pending)
def test_incremental_placement_equals_the_pure_scheduler(nodes, bound, spec):
    store = build(nodes, bound)
    rt, scheduler = attached(store)
    pod = pending_pod(spec)
    node, message = scheduler.place(pod)
    want = pure.schedule(pod, store.list("nodes").items, store.list("pods").items)
    assert (node, message) == (want.node, want.message)
    rt.detach()


def test_pinned_pods_only_consider_their_node():
    store = build([{"cpu": "1", "memory": "1Gi", "pods": "110", "unschedulable": True,
                    "ready": True, "tainted": False, "zone": "a"}] * 3, [])
    _rt, scheduler = attached(store)
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


# --- the inlined fast path decides exactly as filter_node + least_allocated ----------------

def reference_place(scheduler: Scheduler, pod: dict) -> tuple[str | None, str]:
    """The placement loop before the fast path: every node through `filter_node`."""
    req, nz = requests_of(pod), requests_of(pod, non_zero=True)
    required, preferred = anti_affinity_terms(pod)
    pinned = pinned_node(pod)
    total = len(scheduler.names)
    if pinned is not None:
        order, want, start = ([pinned] if pinned in scheduler.nodes else []), 1, 0
    else:
        order, want = scheduler.names, feasible_nodes_to_find(total)
        start = scheduler.next_start
    feasible: list[tuple[int, str]] = []
    reasons: dict[str, int] = {}
    resolvable: list[bool] = []
    n = len(order)
    processed = 0
    for i in range(n):
        name = order[(start + i) % n]
        info = scheduler.nodes[name]
        processed += 1
        on_node = scheduler._pods_on(name) if required or preferred else []
        failed, can = filter_node(pod, req, info, required, on_node)
        if failed:
            resolvable.append(can)
            for r in failed:
                reasons[r] = reasons.get(r, 0) + 1
            continue
        score = least_allocated(info, nz) - 2 * anti_affinity_penalty(pod, preferred, on_node)
        feasible.append((-score, name))
        if len(feasible) >= want:
            break
    if pinned is None and n:
        scheduler.next_start = (start + processed) % n
    if feasible:
        return min(feasible)[1], ""
    if pinned is not None and total - len(order):
        why = "node(s) didn't match Pod's node affinity/selector"
        reasons[why] = reasons.get(why, 0) + total - len(order)
        resolvable += [False] * (total - len(order))
    return None, failure_message(pod, total, reasons, resolvable)


big_cluster = st.lists(
    st.fixed_dictionaries({
        "cpu": st.sampled_from(["1", "2", "4"]),
        "memory": st.sampled_from(["1Gi", "4Gi", "8Gi"]),
        "pods": st.sampled_from(["2", "5", "110"]),
        "unschedulable": st.sampled_from([False] * 5 + [True]),
        "ready": st.sampled_from([True] * 8 + [False]),
        "tainted": st.sampled_from([False] * 8 + [True]),
        "zone": st.sampled_from(["a", "b"]),
    }),
    min_size=100, max_size=260,
)
anti = st.sampled_from([None, "required", "preferred"])


@settings(max_examples=25, deadline=None)
@given(big_cluster, st.lists(st.tuples(st.integers(0, 40), requests), max_size=90),
       st.lists(st.tuples(pending, anti, st.integers(0, 3)), min_size=1, max_size=12))
def test_fast_placement_equals_the_filter_node_loop_while_sampling(nodes, bound, pods):
    store = build(nodes, bound)
    rt, scheduler = attached(store)
    for i, (spec, affinity, app) in enumerate(pods):
        pod = pending_pod(spec)
        pod["metadata"]["name"] = f"new{i}"
        pod["metadata"]["labels"] = {"app": str(app)}
        term = {"labelSelector": {"matchLabels": {"app": str(app)}},
                "topologyKey": "kubernetes.io/hostname"}
        if affinity == "required":
            pod["spec"]["affinity"] = {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [term]}}
        elif affinity == "preferred":
            pod["spec"]["affinity"] = {"podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 50, "podAffinityTerm": term}]}}
        start = scheduler.next_start
        want = reference_place(scheduler, pod)
        after = scheduler.next_start
        scheduler.next_start = start
        assert scheduler.place(pod) == want
        assert scheduler.next_start == after
        if want[0] is not None:  # bind it, so later pods see the room it takes
            pod["spec"]["nodeName"] = want[0]
            pod["status"] = {"phase": "Running"}
            store.create("pods", pod)
    rt.detach()
