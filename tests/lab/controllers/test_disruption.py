"""PodDisruptionBudget status follows its pods, its spec and its controllers' scale."""

from __future__ import annotations

from kubehop.lab.clock import rfc3339
from kubehop.lab.controllers.disruption import PDB, Disruption
from kubehop.lab.controllers.disruption_arithmetic import (
    PodTally,
    lookup_resolver,
    pods_for_pdb,
    sync_pdb,
)
from kubehop.lab.fixtures.specs import LabPdbSpec, LabWorkloadSpec
from tests.lab.controllers.conftest import Factory, small_spec


def counts(lab, name: str = "frontend") -> tuple[int, int, int, int]:
    s = lab.pdb_status("web", name)
    return s["expectedPods"], s["desiredHealthy"], s["currentHealthy"], s["disruptionsAllowed"]


async def test_status_tracks_pods_going_unready_and_ready(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    assert counts(lab) == (3, 2, 3, 1)
    a, b, _ = (p["metadata"]["name"] for p in lab.pods("web"))
    lab.ctl.kubelet.set_ready("web", a, False)
    await lab.settle()
    assert counts(lab) == (3, 2, 2, 0)
    cond = lab.pdb_status("web", "frontend")["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "DisruptionAllowed", "False", "InsufficientPods")
    lab.ctl.kubelet.set_ready("web", b, False)
    await lab.settle()
    assert counts(lab) == (3, 2, 1, 0)
    lab.ctl.kubelet.set_ready("web", a, True)
    lab.ctl.kubelet.set_ready("web", b, True)
    await lab.settle()
    assert counts(lab) == (3, 2, 3, 1)
    pdb_events = [(e["current_healthy"], e["disruptions_allowed"]) for e in lab.events("pdb")
                  if e["name"] == "frontend"]
    assert pdb_events[-3:] == [(2, 0), (1, 0), (3, 1)]  # both came back in one sync


async def test_spec_change_is_observed(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()

    def to_min_available(p: dict) -> None:
        p["spec"].pop("maxUnavailable")
        p["spec"]["minAvailable"] = "34%"

    lab.store.mutate("poddisruptionbudgets.policy", "web", "frontend", to_min_available)
    await lab.settle()
    pdb = lab.store.get("poddisruptionbudgets.policy", "web", "frontend")
    assert pdb["status"]["observedGeneration"] == pdb["metadata"]["generation"] == 2
    assert counts(lab) == (3, 2, 3, 1)  # 34% of 3 rounds up to 2


async def test_scaling_the_deployment_changes_expected_pods(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    lab.store.mutate("deployments.apps", "web", "frontend", lambda d: d["spec"].update(replicas=5))
    await lab.settle()
    assert counts(lab) == (5, 4, 5, 1)


async def test_integer_min_available_counts_matching_pods(make_lab: Factory):
    spec = small_spec(workloads=(LabWorkloadSpec("StatefulSet", "web", "db", replicas=2,
                                              pdb=LabPdbSpec(min_available=2)),))
    lab = await make_lab(spec)
    await lab.settle()
    assert counts(lab, "db") == (2, 2, 2, 0)


async def test_disrupted_pods_entry_expires_after_two_minutes(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    name = lab.pods("web")[0]["metadata"]["name"]
    at = rfc3339(lab.clock.wall())

    def disrupt(p: dict) -> None:  # an eviction whose delete never happened
        p["status"]["disruptedPods"] = {name: at}
        p["status"]["disruptionsAllowed"] = 0

    lab.store.mutate("poddisruptionbudgets.policy", "web", "frontend", disrupt)
    await lab.settle()
    assert counts(lab) == (3, 2, 2, 0)
    await lab.clock.advance(121)
    await lab.settle(horizon=None)
    assert counts(lab) == (3, 2, 3, 1)
    assert "disruptedPods" not in lab.pdb_status("web", "frontend")


def assert_tallies_match_the_store(lab) -> None:
    """Every PDB's incremental tally is what counting its pods afresh gives, and its status is
    what the pod-by-pod sync computes over the store."""
    ctl = next(c for c in lab.ctl.runtime.controllers if isinstance(c, Disruption))
    pdbs = list(lab.store.iter(PDB))
    assert set(ctl.tallies) == {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pdbs}
    for pdb in pdbs:
        ns = pdb["metadata"]["namespace"]
        pods = list(lab.store.iter("pods", ns))
        tally, fresh = ctl.tallies[(ns, pdb["metadata"]["name"])], PodTally.of(
            ns, pods_for_pdb(pdb, pods))
        assert (tally.pods, tally.ready, set(tally.unmanaged)) == (
            fresh.pods, fresh.ready, set(fresh.unmanaged))
        assert {k: set(v) for k, v in tally.refs.items()} == {
            k: set(v) for k, v in fresh.refs.items()}
        full = sync_pdb(pdb, pods, lookup_resolver(ctl._lookup), lab.clock.wall())
        assert not full.changed, (pdb["status"], full.status)


async def test_tallies_follow_every_kind_of_pod_change(make_lab: Factory):
    spec = small_spec(workloads=(
        LabWorkloadSpec("Deployment", "web", "frontend", replicas=4,
                     pdb=LabPdbSpec(max_unavailable=1)),
        LabWorkloadSpec("StatefulSet", "web", "db", replicas=2, pdb=LabPdbSpec(min_available=1)),
    ))
    lab = await make_lab(spec)
    await lab.settle()
    assert_tallies_match_the_store(lab)
    a, b, c, *_ = sorted(p["metadata"]["name"] for p in lab.pods("web")
                         if p["metadata"]["name"].startswith("frontend-"))
    lab.ctl.kubelet.set_ready("web", a, False)  # Ready → not Ready
    lab.ctl.delete_pod("web", b)  # deleting, then gone and replaced
    # Relabelled out of the PDB (and out of its ReplicaSet's template labels).
    lab.store.mutate("pods", "web", c, lambda p: p["metadata"]["labels"].update(app="moved"))
    await lab.settle()
    assert_tallies_match_the_store(lab)
    # Orphaned: no controller any more, an unmanaged pod of the PDB.
    lab.store.mutate("pods", "web", c, lambda p: p["metadata"].update(
        labels=dict(p["metadata"]["labels"], app="frontend"), ownerReferences=[]))
    lab.store.mutate("deployments.apps", "web", "frontend", lambda d: d["spec"].update(replicas=2))
    await lab.settle()
    assert_tallies_match_the_store(lab)
    lab.store.mutate("poddisruptionbudgets.policy", "web", "frontend", lambda p: p["spec"].update(
        selector={"matchExpressions": [{"key": "app", "operator": "In",
                                        "values": ["frontend", "db"]}]}))
    await lab.settle()
    assert_tallies_match_the_store(lab)
