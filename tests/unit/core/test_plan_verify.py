"""A plan file is checked against the planner before it runs: untouched plans pass (whatever
their waves and switchovers), every tampering is named by its first differing step and field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubehop.core.plan_verify import verify_plan
from kubehop.core.planner.make import plan_upgrade
from kubehop.model.cluster import ClusterState, PodInfo, Resources
from kubehop.model.errors import UsageError
from kubehop.model.plan import Plan, PlanOptions
from kubehop.model.versions import parse_kube_version as v
from tests.unit.core.plan_strategies import (
    cluster,
    clusters,
    cp_node,
    oldversion_state,
    release_data,
    worker,
)

DATA = release_data()
STATE = oldversion_state()
REPO = "1.29/oldversion1/repo-switch"


def planned(target: str = "1.29", state: ClusterState = STATE, **options: Any) -> dict[str, Any]:
    """A plan as its JSON file holds it."""
    return plan_upgrade(state, target, DATA, PlanOptions(**options)).to_dict()


def step(doc: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in doc["steps"] if s["id"] == step_id)


def verdict(doc: dict[str, Any], observed: ClusterState = STATE, **kw: Any) -> str:
    """The refusal `apply` would print ("" when the plan passes)."""
    kw.setdefault("baseline", observed)
    found = verify_plan(Plan.from_dict(doc), observed, DATA, **kw)
    return "" if found is None else str(found)


@pytest.mark.parametrize("target", ["1.29", "1.30", "v1.28.15"])
@pytest.mark.parametrize("options", [{}, {"worker_strategy": "every-minor"},
                                     {"drain_policy": "always", "max_unavailable": "50%"}])
def test_an_untouched_plan_passes(target, options):
    assert verdict(planned(target, **options)) == ""


def test_a_plan_with_other_waves_and_switchovers_than_today_still_passes():
    # Planned with the primary on oldversion3: the switchover and wave order follow the pods.
    moved = replace(STATE, databases=(replace(STATE.databases[0], primary_node="oldversion3"),))
    doc = planned(state=moved)
    assert step(doc, "1.29/oldversion3/switchover")
    assert verdict(doc) == ""


def test_an_extra_command_is_refused_naming_the_step_and_command():
    doc = planned()
    step(doc, REPO)["commands"].append("sudo sh -c 'echo pwned > /etc/pwned'")
    assert verdict(doc) == (f"step {REPO}: commands[1]: \"sudo sh -c 'echo pwned > "
                            f"/etc/pwned'\" is not a command of a repo-switch step")


def test_another_repository_url_is_refused():
    doc = planned()
    commands = step(doc, REPO)["commands"]
    commands[0] = commands[0].replace("https://pkgs.k8s.io/", "https://evil.example/")
    found = verdict(doc)
    assert found.startswith(f"step {REPO}: commands[0]: ")
    assert "the planner gives" in found
    assert "https://pkgs.k8s.io/core:/stable:/v1.29/deb/" in found


def test_a_command_dropped_from_a_package_step_is_refused():
    doc = planned()
    install = step(doc, "1.29/oldversion1/kubeadm-install")
    hold = install["commands"].pop()
    assert verdict(doc) == (f"step 1.29/oldversion1/kubeadm-install: "
                            f"commands[{len(install['commands'])}]: missing {hold!r}")


@pytest.mark.parametrize("node", ["oldversion3", None])
def test_a_drain_turned_into_a_gate_is_refused(node):
    doc = planned()
    drain = step(doc, "1.29/oldversion3/drain")
    drain.update(kind="gate", node=node, params={}, expect={})
    found = verdict(doc)
    assert found.startswith("step 1.29/oldversion3/drain: kind: ")


def test_a_drain_left_out_is_refused_as_missing():
    doc = planned()
    doc["steps"] = [s for s in doc["steps"] if s["id"] != "1.29/oldversion3/drain"]
    step(doc, "1.29/oldversion3/kubelet-install")["after"] = ["1.29/oldversion3/cordon"]
    assert verdict(doc) == ("step 1.29/oldversion3/drain: steps: missing: the planner gives "
                            "node oldversion3 this step")


def test_an_expectation_changed_is_refused():
    doc = planned()
    step(doc, "1.29/oldversion1/uncordon")["expect"]["kubelet"] = "v1.28.9"
    found = verdict(doc)
    assert found.startswith("step 1.29/oldversion1/uncordon: expect: ")


def test_an_unknown_target_is_refused():
    doc = planned()
    doc["to"] = "v1.29.99"
    assert verdict(doc) == ("plan: to: v1.29.99 is not a release the data knows (data of "
                            f"{DATA.data_date})")


def test_hops_that_skip_a_minor_are_refused():
    doc = planned("1.30")
    doc["hops"] = ["v1.30.14"]
    assert verdict(doc) == "plan: hops[0]: v1.30.14 does not follow v1.28.9 by at most one minor"


def test_a_dangling_after_is_refused():
    doc = planned()
    step(doc, "1.29/oldversion1/kubeadm-apply")["after"].append("1.29/nowhere/drain")
    assert verdict(doc) == ("step 1.29/oldversion1/kubeadm-apply: after: waits for "
                            "1.29/nowhere/drain, not a step of the plan")


def test_a_step_cut_loose_from_its_gate_is_refused():
    # Without the gate, oldversion3 could be cordoned while the control plane is upgraded.
    doc = planned()
    step(doc, "1.29/oldversion3/repo-switch")["after"] = []
    assert verdict(doc) == ("step 1.29/oldversion3/repo-switch: after: does not wait for the "
                            "gate 1.29/wave1/done")


def test_a_larger_max_unavailable_than_the_options_give_is_refused():
    doc = planned()
    doc["strategy"]["maxUnavailableNodes"] = 2
    assert verdict(doc) == ("plan: strategy.maxUnavailableNodes: 2, but --max-unavailable 1 of "
                            "2 workers is 1")


def test_force_on_a_node_without_unmanaged_pods_is_refused():
    doc = planned()
    step(doc, "1.29/oldversion2/drain")["params"]["force"] = True
    assert verdict(doc) == ("step 1.29/oldversion2/drain: params.force: true, but node "
                            "oldversion2 runs no pods without a controller")


def test_a_plan_made_with_older_release_data_passes():
    # Planned when v1.29.14 was the newest 1.29 patch; the data now knows v1.29.15.
    older = replace(DATA, releases=tuple(
        replace(r, patches=tuple(p for p in r.patches if str(p.version) != "v1.29.15"))
        for r in DATA.releases))
    doc = plan_upgrade(STATE, "1.30", older, PlanOptions()).to_dict()
    assert doc["hops"] == ["v1.29.14", "v1.30.14"]
    assert verdict(doc) == ""


def test_a_plan_the_cluster_can_no_longer_absorb_is_refused_by_the_simulation():
    # Since planning, a pod too large for any other node landed on oldversion3.
    big = PodInfo("web", "huge", "oldversion3", "ReplicaSet", "huge-rs",
                  requests=Resources(3500, 2**30))
    observed = replace(STATE, pods=(*STATE.pods, big))
    found = verdict(planned(), observed, baseline=STATE)
    assert found.startswith("step 1.29/oldversion3/")
    assert "replayed on the cluster as observed now" in found


def test_a_resume_checks_only_what_is_left_from_where_the_run_is():
    doc = planned()
    plan = Plan.from_dict(doc)
    # Stopped before oldversion3's kubelet-install: the control plane runs 1.29, both workers
    # have kubeadm 1.29 from the 1.29 repository, oldversion3 is cordoned and drained.
    cut = [s.id for s in plan.steps].index("1.29/oldversion3/kubelet-install")
    done = {s.id for s in plan.steps[:cut]}
    v28, v29 = v("v1.28.9"), v("v1.29.15")
    evicted = {"oldversion3"}
    pods = tuple(p for p in STATE.pods if p.node not in evicted or p.owner_kind == "DaemonSet")
    moved = cluster([cp_node("oldversion1", v29), worker("oldversion2", v28, v29, v29),
                     worker("oldversion3", v28, v29, v29, schedulable=False)], v29, pods,
                    STATE.pdbs, STATE.databases)
    assert verdict(doc, moved, baseline=STATE, done=done) == ""
    # Without the record that its drain ran, the drain's flags are judged against the node,
    # which no longer runs the pods they were for.
    assert verdict(doc, moved, baseline=STATE) == (
        "step 1.29/oldversion3/drain: params.deleteEmptydirData: true, but node oldversion3 "
        "runs no pods with emptyDir volumes")
    # Steps done never run again: only what is left must be the planner's.
    step(doc, REPO)["commands"].append("sudo true")
    assert verdict(doc, moved, baseline=STATE, done=done) == ""
    step(doc, "1.29/oldversion3/kubelet-restart")["commands"].append("sudo true")
    assert verdict(doc, moved, baseline=STATE, done=done) == (
        "step 1.29/oldversion3/kubelet-restart: commands[2]: 'sudo true' is not a command of a "
        "kubelet-restart step")


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(clusters(max_workers=12), st.sampled_from(["skip", "every-minor"]),
       st.sampled_from(["minor", "always"]), st.sampled_from([1, "2", "50%"]))
def test_random_plans_pass_untouched(case, worker_strategy, drain_policy, max_unavailable):
    state, target = case
    try:
        doc = planned(target, state, worker_strategy=worker_strategy, drain_policy=drain_policy,
                      max_unavailable=max_unavailable)
    except UsageError:
        return  # the planner refuses this cluster: nothing to apply
    assert verdict(doc, state) == ""


def test_only_kubeadm_steps_may_go_ahead_of_the_previous_wave():
    """A worker's kubeadm steps may wait for the gate before the latest (they run beside the
    previous wave); a cordon moved there would put two workers out at once: refused."""
    doc = planned("1.30")
    assert verdict(doc) == ""
    first, second = [w for w in doc["waves"] if w["kind"] == "workers"]
    node, gate = second["nodes"][0], f"1.30/wave{first['index']}/done"
    ahead = step(doc, f"1.30/{node}/repo-switch")["after"]
    assert ahead != [gate]  # its kubeadm steps start before the previous wave ends
    cordon = step(doc, f"1.30/{node}/cordon")
    assert cordon["after"] == [gate, f"1.30/{node}/kubeadm-node"]
    refused = f"step 1.30/{node}/cordon: after: does not wait for the gate {gate}"
    cordon["after"] = [f"1.30/{node}/kubeadm-node"]
    assert verdict(doc) == refused
    cordon["after"] = [*ahead, f"1.30/{node}/kubeadm-node"]
    assert verdict(doc) == refused


def test_a_resume_after_the_node_was_cordoned_does_not_judge_its_drain_flags_again():
    """Killed between a node's cordon (or switchover) and its drain: the pods the drain's flags
    were for may have left already (a switchover moves the database's pods); the resume goes on."""
    doc = planned()
    plan = Plan.from_dict(doc)
    cut = [s.id for s in plan.steps].index("1.29/oldversion3/drain")
    done = {s.id for s in plan.steps[:cut]}
    v28, v29 = v("v1.28.9"), v("v1.29.15")
    gone = cluster([cp_node("oldversion1", v29), worker("oldversion2", v28, v29, v29),
                    worker("oldversion3", v28, v29, v29, schedulable=False)], v29,
                   tuple(p for p in STATE.pods if p.name != "scratch"), STATE.pdbs,
                   STATE.databases)
    assert verdict(doc, gone, baseline=STATE, done=done, started=done) == ""
    # A plan that has not begun that node is judged: the flag would delete data it never saw.
    no_scratch = replace(STATE, pods=tuple(p for p in STATE.pods if p.name != "scratch"))
    assert verdict(doc, no_scratch, baseline=STATE) == (
        "step 1.29/oldversion3/drain: params.deleteEmptydirData: true, but node oldversion3 "
        "runs no pods with emptyDir volumes")
