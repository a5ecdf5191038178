"""The Eviction subresource against live PDBs, and what it leaves in the history."""

from __future__ import annotations

from kubehop.lab.api.eviction import VIOLATES_BUDGET
from kubehop.lab.fixtures import objects as o
from tests.lab.controllers.conftest import Factory


def body(name: str, **options: object) -> dict:
    b: dict = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
    if options:
        b["deleteOptions"] = options
    return b


def conditions(pod: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in pod["status"]["conditions"]}


async def test_eviction_below_budget_is_refused_with_429(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    first, second, _ = (p["metadata"]["name"] for p in lab.pods("web"))
    lab.ctl.kubelet.set_ready("web", first, False)
    await lab.settle()
    assert lab.pdb_status("web", "frontend")["disruptionsAllowed"] == 0
    code, answer, headers = lab.ctl.evict("web", second, body(second))
    assert code == 429
    assert answer["reason"] == "TooManyRequests"
    assert answer["message"] == VIOLATES_BUDGET
    assert answer["details"]["causes"] == [{
        "reason": "DisruptionBudget",
        "message": "The disruption budget frontend needs 2 healthy pods and has 2 currently"}]
    assert "Retry-After" not in headers
    assert not lab.pod("web", second)["metadata"].get("deletionTimestamp")
    (refused,) = lab.events("eviction-refused")
    assert {k: refused[k] for k in ("namespace", "name", "code", "pdb")} == {
        "namespace": "web", "name": second, "code": 429, "pdb": "web/frontend"}


async def test_allowed_eviction_decrements_the_budget_and_replaces_the_pod(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    name = lab.pods("web")[0]["metadata"]["name"]
    code, answer, _ = lab.ctl.evict("web", name, body(name))
    assert (code, answer["status"]) == (201, "Success")
    status = lab.pdb_status("web", "frontend")
    assert status["disruptionsAllowed"] == 0
    assert name in status["disruptedPods"]  # until the disruption controller sees it go
    pod = lab.pod("web", name)
    assert pod["metadata"]["deletionTimestamp"]
    assert conditions(pod)["DisruptionTarget"] == "True"
    # A second eviction right away is refused: the budget is spent.
    other = lab.pods("web")[0]["metadata"]["name"]
    assert lab.ctl.evict("web", other, body(other))[0] == 429
    await lab.settle()
    assert lab.pod("web", name) is None
    pods = lab.pods("web")
    assert len(pods) == 3
    assert all(conditions(p)["Ready"] == "True" for p in pods)
    (deleted,) = lab.events("pod", name=name, event="deleted")
    assert (deleted["by"], deleted["pdb"]) == ("eviction", "web/frontend")
    final = lab.pdb_status("web", "frontend")
    assert (final["currentHealthy"], final["desiredHealthy"], final["disruptionsAllowed"]) == (
        3, 2, 1)
    assert "disruptedPods" not in final
    assert lab.ctl.evict("web", other, body(other))[0] == 201


async def test_dry_run_eviction_changes_nothing(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    name = lab.pods("web")[0]["metadata"]["name"]
    before = lab.store.resource_version
    assert lab.ctl.evict("web", name, body(name), dry_run=["All"])[0] == 201
    assert lab.store.resource_version == before


async def test_pods_without_budget_and_pending_pods_are_evicted(make_lab: Factory):
    lab = await make_lab()
    lab.store.create("pods", o.pod("web", "stuck", labels={"app": "frontend"}, containers=[
        o.container("c", "registry.k8s.io/pause:3.9", requests={"cpu": "64"})]))
    await lab.settle()
    assert lab.ctl.evict("web", "stuck", body("stuck"))[0] == 201  # Pending: no PDB check
    assert lab.pod("web", "stuck") is None
    ds = lab.pods("monitoring")[0]["metadata"]["name"]
    assert lab.ctl.evict("monitoring", ds, body(ds))[0] == 201
    code, answer, _ = lab.ctl.evict("web", "nope", body("nope"))
    assert (code, answer["reason"]) == (404, "NotFound")
    assert lab.ctl.evict("web", "stuck", body("other"))[0] == 400
    assert lab.events("eviction-refused") == []


async def test_eviction_grace_period_from_delete_options(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    name = lab.pods("web")[0]["metadata"]["name"]
    assert lab.ctl.evict("web", name, body(name, gracePeriodSeconds=0))[0] == 201
    assert lab.pod("web", name) is None


async def test_stale_resource_version_precondition_conflicts(make_lab: Factory):
    lab = await make_lab()
    await lab.settle()
    name = lab.pods("web")[0]["metadata"]["name"]
    code, answer, _ = lab.ctl.evict("web", name, body(name, preconditions={
        "resourceVersion": "1"}))
    assert (code, answer["reason"]) == (409, "Conflict")
    assert not lab.pod("web", name)["metadata"].get("deletionTimestamp")
