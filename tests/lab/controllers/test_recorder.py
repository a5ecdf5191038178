"""The lab history: initial state first, then every change; judged by check_history."""

from __future__ import annotations

from kubehop.lab.history import check_history
from tests.lab.controllers.conftest import Factory, Lab
from tests.lab.controllers.test_evictions import body


async def test_first_events_describe_the_initial_state(make_lab: Factory):
    lab = await make_lab()
    initial = lab.history.since(0)
    assert max(e["t"] for e in initial) - min(e["t"] for e in initial) < 1  # one snapshot
    nodes = {e["node"]: e for e in initial if e["type"] == "node"}
    assert set(nodes) == {"cp", "w1", "w2"}
    assert nodes["cp"]["roles"] == ["control-plane"]
    assert nodes["w1"]["roles"] == []
    assert all(n["ready"] and n["schedulable"] for n in nodes.values())
    components = {(e["node"], e["component"]): (e["version"], e["running"])
                  for e in initial if e["type"] == "component"}
    for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert components[("cp", comp)] == ("v1.28.9", True)
    assert components[("cp", "etcd")] == ("3.5.12-0", True)
    for node in ("cp", "w1", "w2"):
        assert components[(node, "kubelet")] == ("v1.28.9", True)
        assert components[(node, "kube-proxy")] == ("v1.28.9", True)
    assert components[(None, "coredns")] == ("v1.10.1", True)
    assert components[(None, "cni")] == ("v3.27.0", True)
    created = {(e["namespace"], e["name"]) for e in initial
               if e["type"] == "pod" and e["event"] == "created"}
    assert created == {(p["metadata"]["namespace"], p["metadata"]["name"])
                       for p in lab.pods(None)}
    web = [e for e in initial if e["type"] == "pod" and e["namespace"] == "web"]
    assert {e["pdb"] for e in web} == {"web/frontend"}
    assert {e["owner"].split("/")[0] for e in web} == {"ReplicaSet"}
    (pdb,) = [e for e in initial if e["type"] == "pdb"]
    assert (pdb["expected"], pdb["desired_healthy"], pdb["current_healthy"],
            pdb["disruptions_allowed"]) == (3, 2, 3, 1)
    assert check_history(initial) == []


async def test_node_and_component_changes_are_recorded(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    lab.cordon("w1")
    lab.store.mutate("nodes", "", "w1", lambda n: n["status"]["nodeInfo"].update(
        kubeletVersion="v1.29.15"))
    await lab.settle()
    assert lab.events("node", node="w1")[-1]["schedulable"] is False
    assert lab.events("component", node="w1", component="kubelet")[-1]["version"] == "v1.29.15"
    lab.ctl.delete_pod("kube-system", "kube-apiserver-cp", grace_seconds=0)
    assert lab.events("component", node="cp", component="kube-apiserver")[-1]["running"] is False


async def drain(lab: Lab, node: str) -> None:
    """kubectl drain --ignore-daemonsets: cordon, then evict until nothing evictable is left."""
    lab.cordon(node)
    for _ in range(200):
        left = [p for p in lab.store.by_index("pods", "spec.nodeName", node)
                if p["metadata"]["ownerReferences"][0]["kind"] not in ("DaemonSet", "Node")]
        if not left:
            return
        for p in left:
            if not p["metadata"].get("deletionTimestamp"):
                name = p["metadata"]["name"]
                lab.ctl.evict(p["metadata"]["namespace"], name, body(name))
        await lab.ctl.settle(timeout=5, horizon=5)
    raise AssertionError(f"{node} did not drain")


async def test_an_eviction_only_drain_keeps_every_budget(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    for node in ("w1", "w2"):  # a rolling node upgrade: drain, (upgrade), uncordon
        await drain(lab, node)
        lab.cordon(node, False)
        await lab.settle()
    events = lab.history.since(0)
    deleted = [e for e in events if e["type"] == "pod" and e["event"] == "deleted"]
    # w1's two pods, then all three (they moved to w2) from w2.
    assert len(deleted) == 5
    assert {e["by"] for e in deleted} == {"eviction"}
    assert [e for e in events if e["type"] == "eviction-refused"]  # the budget held them back
    assert check_history(events) == []


async def test_plain_delete_below_budget_is_a_violation(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    a, b, _ = (p["metadata"]["name"] for p in lab.pods("web"))
    lab.ctl.delete_pod("web", a)
    lab.ctl.delete_pod("web", b)
    await lab.settle()
    violations = check_history(lab.history.since(0))
    assert violations
    assert {v.invariant for v in violations} == {2}
    assert any(a in v.message and "plain DELETE" in v.message for v in violations)
    assert any("fell to 1 healthy pods, below the 2" in v.message for v in violations)
    assert check_history(lab.history.since(0), plain_delete_allowed=True) != []
