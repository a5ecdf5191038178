"""The simulator finds each broken invariant in a tampered plan, and estimates durations."""

from dataclasses import replace

import pytest

from kubehop.core.planner.make import plan_upgrade
from kubehop.core.simulate.run import simulate
from kubehop.core.steps.base import StepCosts
from kubehop.core.workloads import WorkloadIndex, build_waves
from kubehop.model.plan import PlanOptions, Step, StepKind
from kubehop.model.versions import parse_kube_version as v
from tests.unit.core.plan_strategies import (
    cluster,
    cp_node,
    daemonset,
    deployment,
    oldversion_state,
    release_data,
    worker,
)

DATA = release_data()


def plan_of(state, target="1.29", **options):
    return plan_upgrade(state, target, DATA, PlanOptions(**options))


def ha(workers=4, budget=None):
    ver = v("v1.28.9")
    names = [f"w{i}" for i in range(1, workers + 1)]
    nodes = [cp_node(f"cp{i}", ver) for i in (1, 2, 3)] + [worker(n, ver, ver) for n in names]
    pods, pdbs = deployment("web", "app", names, budget) if names else ([], [])
    return cluster(nodes, ver, (*pods, *daemonset("mon", "exporter", names)), tuple(pdbs))


def without(steps, *step_ids):
    """The steps without `step_ids`, `after` lists rewired past them (a plausible edit)."""
    removed = {i: s for i, s in enumerate(steps) if s.id in step_ids}
    by_id = {s.id: s for s in steps}
    out = []
    for s in steps:
        if s.id in step_ids:
            continue
        after = []
        for dep in s.after:
            stack = [dep]
            while stack:
                d = stack.pop()
                if d in step_ids:
                    stack += list(by_id[d].after)
                elif d not in after:
                    after.append(d)
        out.append(replace(s, after=tuple(after)))
    assert removed
    return out


def chain(steps):
    """The steps one after another (each waits for the previous)."""
    return [replace(s, after=(steps[i - 1].id,) if i else ()) for i, s in enumerate(steps)]


def invariants(state, steps, max_unavailable=1):
    return {x.invariant for x in simulate(state, steps, max_unavailable).violations}


def test_a_planned_upgrade_passes():
    state = oldversion_state()
    p = plan_of(state, "1.30")
    result = simulate(state, p, 1)
    assert result.ok
    assert result.cluster_version == v("v1.30.14")
    assert result.max_cordoned_workers == 1
    assert result.cordoned_at_end == ()
    assert result.estimate_seconds == p.estimate_seconds > 0


def test_a_kubelet_minor_change_without_a_drain_is_found():
    state = oldversion_state()
    p = plan_of(state)
    steps = without(p.steps, "1.29/oldversion1/drain")
    assert "drain before a kubelet minor change" in invariants(state, steps)


def test_a_control_plane_kubelet_before_the_other_apiservers_breaks_the_skew():
    state = ha()
    p = plan_of(state)
    steps = list(p.steps)
    # Move cp1's kubelet wave before cp2's `kubeadm upgrade node`: kubelet 1.29 beside a 1.28
    # apiserver (and both control planes in one slot once the gate goes).
    kubelet = [s for s in steps if s.node == "cp1" and s.kind in (
        StepKind.CORDON, StepKind.DRAIN, StepKind.KUBELET_INSTALL, StepKind.KUBELET_RESTART)]
    rest = [s for s in steps if s not in kubelet]
    at = next(i for i, s in enumerate(rest) if s.id == "1.29/cp2/repo-switch")
    found = invariants(state, chain(rest[:at] + kubelet + rest[at:]))
    assert "version skew" in found


def test_two_control_planes_at_once_are_found():
    state = ha()
    p = plan_of(state)
    gate = next(s.id for s in p.steps if s.kind is StepKind.GATE)
    steps = without(p.steps, gate)
    assert "one control plane at a time" in invariants(state, steps)


def test_a_worker_beside_a_control_plane_change_is_found():
    state = ha()
    p = plan_of(state)
    steps = list(p.steps)
    i = next(i for i, s in enumerate(steps) if s.id == "1.29/w1/repo-switch")
    first_gate = next(s.id for s in steps if s.kind is StepKind.GATE)
    steps[i] = replace(steps[i], after=())
    assert "control planes alone" in invariants(state, steps)
    assert first_gate  # (the prepare steps normally wait for every control-plane gate)


def test_more_cordoned_workers_than_allowed_are_found():
    state = ha(4)
    p = plan_of(state, max_unavailable=2)
    assert simulate(state, p, 2).ok
    assert "max unavailable" in invariants(state, p.steps, 1)


def test_draining_nodes_together_beyond_a_pdb_budget_is_found():
    state = ha(4, budget=1)
    p = plan_of(state, max_unavailable=2)
    assert all(len(w.nodes) == 1 for w in p.waves if w.kind == "workers")
    gates = [s.id for s in p.steps if s.kind is StepKind.GATE and s.id.startswith("1.29/wave")]
    # Drop the gate between the first two worker waves: two nodes of one PDB drain together.
    worker_gate = next(g for g in gates if p.step(g).wave == next(
        w.index for w in p.waves if w.kind == "workers"))
    found = simulate(state, without(p.steps, worker_gate), 2).violations
    assert any(x.invariant == "drain together" and "web/app" in x.message for x in found)


def test_a_node_left_cordoned_is_found():
    state = oldversion_state()
    p = plan_of(state)
    assert "nothing left cordoned" in invariants(state, without(p.steps,
                                                                "1.29/oldversion1/uncordon"))


def test_packages_from_the_wrong_repository_are_found():
    state = oldversion_state()
    p = plan_of(state)
    assert "packages" in invariants(state, without(p.steps, "1.29/oldversion1/repo-switch"))


def test_unmet_expectations_and_malformed_dags_are_found():
    state = oldversion_state()
    p = plan_of(state)
    steps = list(p.steps)
    steps[1] = replace(steps[1], expect={"kubeadm": "1.29.1-1.1"})
    assert "expectation" in invariants(state, steps)
    steps = list(p.steps)
    steps[1] = replace(steps[1], after=("nowhere",))
    assert invariants(state, steps) == {"plan"}
    steps = [*p.steps, p.steps[0]]
    assert invariants(state, steps) == {"plan"}


def test_kubeadm_version_policy_is_checked_at_apply():
    state = oldversion_state()
    p = plan_of(state, "1.30")
    # Skip the 1.29 apply: kubeadm 1.30 on a 1.28 cluster ("can upgrade only 1 minor").
    steps = without(p.steps, *[s.id for s in p.steps if s.hop == "v1.29.15"])
    found = simulate(state, steps, 1).violations
    assert any("kubeadm can upgrade only 1 minor version at a time" in x.message for x in found)


def test_waves_run_in_parallel_in_the_estimate():
    state = ha(6)
    one = plan_of(state, max_unavailable=1)
    three = plan_of(state, max_unavailable=3)
    assert three.estimate_seconds < one.estimate_seconds
    slow = simulate(state, one, 1, StepCosts(package_install=80))
    assert slow.estimate_seconds > one.estimate_seconds


def test_build_waves_groups_nodes_within_pdb_budgets():
    state = ha(6, budget=2)
    index = WorkloadIndex(state)
    names = [f"w{i}" for i in range(1, 7)]
    assert build_waves(names, 5, index) == [["w1", "w2"], ["w3", "w4"], ["w5", "w6"]]
    assert build_waves(names, 1, index) == [[n] for n in names]


@pytest.mark.parametrize("kind", [StepKind.CORDON, StepKind.SWITCHOVER])
def test_steps_on_unknown_nodes_are_found(kind):
    state = oldversion_state()
    step = Step("x", kind, "ghost", "v1.29.15")
    assert "plan" in invariants(state, [step])


def test_waves_look_past_nodes_full_for_one_pdb():
    """A Deployment's pods on neighbouring nodes (as a scheduler places them): its PDB fills a
    wave after `budget` nodes, and the wave must still take the nodes after them (with a scan
    of 64 misfits, the waves of a 1,000-node lab were half full)."""
    ver = v("v1.28.9")
    names = [f"w{i:03d}" for i in range(1, 301)]
    pods, pdbs = [], []
    for d in range(0, 300, 100):  # three Deployments, each on 100 neighbouring nodes
        p, b = deployment(f"ns{d}", "app", names[d:d + 100], 25)
        pods += p
        pdbs += b
    state = cluster([cp_node("cp1", ver)] + [worker(n, ver, ver) for n in names], ver,
                    tuple(pods), tuple(pdbs))
    waves = build_waves(names, 75, WorkloadIndex(state))
    assert [len(w) for w in waves] == [75, 75, 75, 75]  # 25 of each Deployment per wave
