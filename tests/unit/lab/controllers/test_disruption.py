"""PodDisruptionBudget status follows its pods, its spec and its controllers' scale."""

from __future__ import annotations

import asyncio

from kubehop.lab.clock import rfc3339
from kubehop.lab.fixtures import PdbSpec, WorkloadSpec
from tests.unit.lab.controllers.conftest import TIME_SCALE, Factory, small_spec


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
    spec = small_spec(workloads=(WorkloadSpec("StatefulSet", "web", "db", replicas=2,
                                              pdb=PdbSpec(min_available=2)),))
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
    await asyncio.sleep(121 * TIME_SCALE)
    await lab.settle(horizon=None)
    assert counts(lab) == (3, 2, 3, 1)
    assert "disruptedPods" not in lab.pdb_status("web", "frontend")
