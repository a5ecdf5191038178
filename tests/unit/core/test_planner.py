"""The planner: upstream order per hop, worker strategies, drains, waves, refusals — and, for
random clusters, plans that pass the simulator and reach the target everywhere."""

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubehop.core.planner.make import plan_upgrade
from kubehop.core.simulate.run import simulate
from kubehop.model.cluster import ApiServerInfo, DatabaseInfo, OsFamily, PodInfo
from kubehop.model.errors import UsageError
from kubehop.model.findings import Finding, Severity
from kubehop.model.plan import Plan, PlanOptions, StepKind
from kubehop.model.versions import parse_kube_version as v
from tests.unit.core.plan_strategies import (
    cluster,
    clusters,
    cp_node,
    daemonset,
    deployment,
    oldversion_state,
    release_data,
    worker,
)

DATA = release_data()


def plan(state, target="1.30", **options):
    return plan_upgrade(state, target, DATA, PlanOptions(**options))


def ids(p, kind=None, node=None):
    return [s.id for s in p.steps if (kind is None or s.kind is kind)
            and (node is None or s.node == node)]


def kinds(p, node, hop=None):
    return [str(s.kind) for s in p.steps if s.node == node and (hop is None or s.hop == hop)]


def small(workers=2, version="v1.28.9", **kw):
    ver = v(version)
    nodes = [cp_node("cp1", ver, **kw)] + [worker(f"w{i}", ver, ver) for i in range(1, workers + 1)]
    return cluster(nodes, ver)


# --- the oldversion cluster (acceptance) ---------------------------------------------------


def test_oldversion_to_1_30_goes_through_both_minors_and_drains_each_worker_once():
    p = plan(oldversion_state())
    assert p.hops == ("v1.29.15", "v1.30.14")
    applies = [s for s in p.steps if s.kind is StepKind.KUBEADM_APPLY]
    assert [(s.node, s.hop) for s in applies] == [("oldversion1", "v1.29.15"),
                                                  ("oldversion1", "v1.30.14")]
    assert applies[0].commands[0].argv == ("kubeadm", "upgrade", "apply", "-y", "v1.29.15")
    drains = ids(p, StepKind.DRAIN)
    assert drains == ["1.29/oldversion1/drain", "1.30/oldversion1/drain",
                      "1.30/oldversion3/drain", "1.30/oldversion2/drain"]
    # Workers are touched once: kubeadm 1.30 straight from 1.28 and `kubeadm upgrade node`
    # right before the drain (the upstream worker page's order), no "prepare" at 1.29.
    assert kinds(p, "oldversion2", "v1.29.15") == []
    assert kinds(p, "oldversion2", "v1.30.14") == [
        "repo-switch", "kubeadm-install", "kubeadm-node", "cordon", "switchover", "drain",
        "kubelet-install", "kubelet-restart", "wait-ready", "uncordon"]
    assert simulate(oldversion_state(), p, 1).ok


def test_the_first_control_plane_follows_the_guide():
    p = plan(oldversion_state())
    assert kinds(p, "oldversion1", "v1.29.15") == [
        "repo-switch", "kubeadm-install", "kubeadm-plan", "etcd-snapshot", "kubeadm-apply",
        "cordon", "drain", "kubelet-install", "kubelet-restart", "wait-ready", "uncordon"]
    step = p.step("1.29/oldversion1/kubelet-install")
    assert [c.line for c in step.commands] == [
        "sudo apt-get update -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/kubernetes.list "
        "-o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 -o APT::Update::Error-Mode=any",
        "sudo apt-mark unhold kubelet",
        "sudo apt-get install -y -o Dpkg::Options::=--force-confdef -o "
        "Dpkg::Options::=--force-confold 'kubelet=1.29.15-*'",
        "sudo apt-mark hold kubelet"]
    restart = p.step("1.29/oldversion1/kubelet-restart")
    assert [c.line for c in restart.commands] == ["sudo systemctl daemon-reload",
                                                   "sudo systemctl restart kubelet"]
    assert p.step("1.29/oldversion1/drain").reason == "kubelet changes minor: drain required"
    assert p.step("1.29/oldversion1/repo-switch").commands[0].stdin == (
        "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
        "https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /\n")


def test_kubectl_is_installed_with_kubeadm_before_the_drain_not_with_the_kubelet():
    # kubernetes/website#57275: a node's kubectl stays within one minor of the apiservers.
    p = plan(oldversion_state())
    for step in p.steps:
        if step.kind is StepKind.KUBEADM_INSTALL:
            assert step.expect["kubectl"] == step.expect["kubeadm"], step.id
            assert "kubectl" in step.commands[-2].line, step.id
        if step.kind is StepKind.KUBELET_INSTALL:
            assert "kubectl" not in step.expect, step.id
            assert all("kubectl" not in c.line for c in step.commands), step.id
    order = [s.kind.value for s in p.steps if s.node == "oldversion2" and s.hop == "v1.30.14"]
    assert order.index("kubeadm-install") < order.index("drain")
    assert simulate(oldversion_state(), p, 1).ok


def test_the_database_primary_node_goes_last_after_a_switchover():
    p = plan(oldversion_state())
    waves = [w for w in p.waves if w.kind == "workers"]
    assert [w.nodes for w in waves] == [("oldversion3",), ("oldversion2",)]
    switchover = p.step("1.30/oldversion2/switchover")
    assert switchover.params["databases"] == ("db/pg",)
    assert switchover.after == ("1.30/oldversion2/cordon",)
    assert any("primary of db/pg" in w for w in p.warnings)


def test_drains_of_bare_and_emptydir_pods_say_so():
    p = plan(oldversion_state())
    drain = p.step("1.30/oldversion3/drain")
    assert drain.params == {"ignoreDaemonsets": True, "deleteEmptydirData": True, "force": True}
    assert any("emptyDir data of 1 pod(s): default/scratch" in w for w in p.warnings)


def test_every_minor_drains_each_worker_every_hop():
    p = plan(oldversion_state(), worker_strategy="every-minor")
    assert len(ids(p, StepKind.DRAIN, "oldversion3")) == 2
    assert ids(p, StepKind.KUBELET_RESTART, "oldversion2") == [
        "1.29/oldversion2/kubelet-restart", "1.30/oldversion2/kubelet-restart"]


# --- HA order --------------------------------------------------------------------------------


def test_ha_control_planes_upgrade_kubelets_only_after_every_apiserver():
    ver = v("v1.29.10")
    nodes = [cp_node(f"cp{i}", ver) for i in (1, 2, 3)] + [worker("w1", ver, ver)]
    p = plan(cluster(nodes, ver), "1.30")
    cp = [(s.node, str(s.kind)) for s in p.steps
          if s.node and s.node.startswith("cp") and s.kind in (
              StepKind.KUBEADM_APPLY, StepKind.KUBEADM_NODE, StepKind.KUBELET_RESTART)]
    assert cp == [("cp1", "kubeadm-apply"), ("cp2", "kubeadm-node"), ("cp3", "kubeadm-node"),
                  ("cp1", "kubelet-restart"), ("cp2", "kubelet-restart"),
                  ("cp3", "kubelet-restart")]
    # Each control plane alone in its wave, closed by a gate.
    for w in p.waves:
        if w.kind.startswith("control-plane"):
            assert len(w.nodes) == 1
    assert "1.30/wave0/done" in p.step("1.30/cp2/repo-switch").after


# --- patches and drains ---------------------------------------------------------------------


def test_a_patch_upgrade_switches_no_repository_and_skips_the_drain():
    p = plan(small(version="v1.30.5"), "latest-patch")
    assert p.hops == ("v1.30.14",)
    assert not ids(p, StepKind.REPO_SWITCH)
    assert not ids(p, StepKind.DRAIN)
    assert not ids(p, StepKind.CORDON)
    restart = p.step("1.30/w1/kubelet-restart")
    assert restart.reason == "patch-level restart: drain skipped"


def test_drain_always_drains_patch_restarts_too():
    p = plan(small(version="v1.30.5"), "v1.30.14", drain_policy="always")
    assert ids(p, StepKind.DRAIN) == ["1.30/cp1/drain", "1.30/w1/drain", "1.30/w2/drain"]
    assert p.step("1.30/w1/drain").reason.startswith("drain policy always")


def test_rpm_nodes_install_past_the_excludes():
    ver = v("v1.28.9")
    state = cluster([cp_node("cp1", ver, family=OsFamily.RHEL)], ver)
    p = plan(state, "1.29")
    install = p.step("1.29/cp1/kubeadm-install")
    assert [c.line for c in install.commands] == [
        "sudo yum install -y 'kubeadm-1.29.15-*' 'kubectl-1.29.15-*' "
        "--disableexcludes=kubernetes"]
    assert install.expect == {"kubeadm": "1.29.15-*", "kubectl": "1.29.15-*"}
    assert "baseurl=https://pkgs.k8s.io/core:/stable:/v1.29/rpm/" in (
        p.step("1.29/cp1/repo-switch").commands[0].stdin)


def test_nodes_without_package_facts_are_assumed_debian_and_rewrite_their_repository():
    ver = v("v1.30.5")
    state = cluster([cp_node("cp1", ver, known=False)], ver)
    p = plan(state, "v1.30.14")
    assert ids(p, StepKind.REPO_SWITCH) == ["1.30/cp1/repo-switch"]
    assert any("no package facts for node cp1" in w for w in p.warnings)


# --- workers: strategies, waves -------------------------------------------------------------


def test_skip_upgrades_a_worker_early_when_the_next_hop_would_leave_it_too_old():
    ver = v("v1.30.14")
    state = cluster([cp_node("cp1", ver), worker("w1", v("v1.27.16"), ver, ver),
                     worker("w2", ver, ver)], ver)
    p = plan(state, "1.32")
    assert ids(p, StepKind.KUBELET_RESTART, "w1") == ["prepare/w1/kubelet-restart",
                                                      "1.32/w1/kubelet-restart"]
    assert ids(p, StepKind.KUBELET_RESTART, "w2") == ["1.32/w2/kubelet-restart"]
    assert any("w1 at v1.30.14" in w for w in p.warnings)


def test_old_kubeadm_steps_the_kubelet_through_the_minor_it_can_manage():
    # kubeadm before 1.29 manages kubelets one minor older only: kubelet 1.22 → 1.23 → 1.24.
    ver = v("v1.24.17")
    state = cluster([cp_node("cp1", ver),
                     worker("w1", v("v1.22.17"), ver, v("v1.23.17"))], ver)
    p = plan(state, "1.25")
    steps = [s.id for s in p.steps if s.node == "w1" and s.hop == str(ver)]
    # (its repository already serves 1.23, the minor of its kubeadm)
    assert steps == ["prepare/w1/cordon", "prepare/w1/drain", "prepare/w1/kubelet-install@1.23",
                     "prepare/w1/kubelet-restart@1.23",
                     "prepare/w1/wait-ready@1.23", "prepare/w1/repo-switch",
                     "prepare/w1/kubeadm-install", "prepare/w1/kubeadm-node",
                     "prepare/w1/kubelet-install", "prepare/w1/kubelet-restart",
                     "prepare/w1/wait-ready", "prepare/w1/uncordon"]


def _spread_cluster(n, budget, max_unavailable):
    ver = v("v1.28.9")
    workers = [f"w{i}" for i in range(1, n + 1)]
    nodes = [cp_node("cp1", ver)] + [worker(w, ver, ver) for w in workers]
    pods, pdbs = deployment("web", "app", workers, budget)
    state = cluster(nodes, ver, (*pods, *daemonset("mon", "exporter", workers)), tuple(pdbs))
    return plan(state, "1.29", max_unavailable=max_unavailable)


@pytest.mark.parametrize(("budget", "sizes"), [(None, [3, 3]), (1, [1] * 6), (2, [2, 2, 2])])
def test_waves_respect_max_unavailable_and_pdb_budgets(budget, sizes):
    p = _spread_cluster(6, budget, 3)
    assert [len(w.nodes) for w in p.waves if w.kind == "workers"] == sizes


def test_max_unavailable_as_a_percentage():
    p = _spread_cluster(6, None, "50%")
    assert p.max_unavailable_nodes == 3


def test_a_node_cordoned_before_the_upgrade_stays_cordoned():
    ver = v("v1.28.9")
    state = cluster([cp_node("cp1", ver), worker("w1", ver, ver, schedulable=False),
                     worker("w2", ver, ver)], ver)
    p = plan(state, "1.29")
    assert "drain" in kinds(p, "w1")
    assert "cordon" not in kinds(p, "w1")
    assert "uncordon" not in kinds(p, "w1")
    assert any("w1 was cordoned before the upgrade" in w for w in p.warnings)


def test_not_enough_capacity_to_drain_is_refused():
    ver = v("v1.28.9")
    nodes = [cp_node("cp1", ver), worker("w1", ver, ver), worker("w2", ver, ver)]
    big = replace(PodInfo("web", "big", "w1", "ReplicaSet", "big"),
                  requests=replace(nodes[1].allocatable, pods=0))
    state = cluster(nodes, ver, (big, replace(big, name="big2", node="w2")))
    with pytest.raises(UsageError, match=r"cannot drain node w1: .*4000m cpu"):
        plan(state, "1.29")


# --- targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "hops"), [
    ("1.29", ("v1.29.15",)), ("v1.29", ("v1.29.15",)), ("next-minor", ("v1.29.15",)),
    ("v1.29.3", ("v1.29.3",)), ("1.29.3", ("v1.29.3",)),
    ("latest-patch", ("v1.28.15",)), ("1.31", ("v1.29.15", "v1.30.14", "v1.31.14"))])
def test_targets(target, hops):
    assert plan(small(), target).hops == hops


def test_latest_goes_to_the_newest_release():
    p = plan(small(), "latest")
    assert p.to_version == str(max(x for x in DATA.all_versions() if not x.is_prerelease))
    minors = [v(h).minor for h in p.hops]
    assert minors == list(range(29, minors[-1] + 1))


@pytest.mark.parametrize(("target", "message"), [
    ("1.27", "downgrade"), ("v1.28.3", "downgrade"), ("v1.28.9", "already runs v1.28.9"),
    ("v1.29.99", "not a release the data knows"), ("1.99", "no known release of Kubernetes 1.99"),
    ("v1.30.0-rc.1", "pre-release"), ("soon", "bad --to 'soon'"),
    ("v1.29.3+k3s1", "vendor suffixes")])
def test_bad_targets_are_refused(target, message):
    with pytest.raises(UsageError, match=message):
        plan(small(), target)


def test_an_unknown_patch_is_planned_when_allowed():
    p = plan(small(), "v1.29.99", allow_unknown_version=True)
    assert p.hops == ("v1.29.99",)
    assert any("not in the release data" in w for w in p.warnings)


def test_a_half_done_upgrade_is_completed():
    ver = v("v1.29.15")
    nodes = [cp_node("cp1", ver), worker("w1", v("v1.28.15"), ver, ver)]
    p = plan(cluster(nodes, ver), "1.29")
    assert p.hops == ()
    assert kinds(p, "w1")[-1] == "uncordon"


# --- refusals --------------------------------------------------------------------------------


def test_clusters_not_installed_by_kubeadm_are_refused():
    state = replace(small(), kubeadm_kubernetes_version=None)
    with pytest.raises(UsageError, match="not installed by kubeadm"):
        plan(state)
    k3s = replace(small(), apiservers=(ApiServerInfo("x:6443", "cp1", v("v1.28.9+k3s1")),))
    with pytest.raises(UsageError, match="k3s build"):
        plan(k3s)
    eks = replace(small(), kubeadm_kubernetes_version=v("v1.28.9-eks-8cb36c9"))
    with pytest.raises(UsageError, match="Amazon EKS build"):
        plan(eks)


def test_blocking_findings_refuse_the_plan_unless_ignored():
    finding = Finding("skew.kubelet-too-old", Severity.BLOCKING, "node/w1", "too old", "upgrade")
    with pytest.raises(UsageError, match=r"--ignore-finding skew\.kubelet-too-old"):
        plan_upgrade(small(), "1.29", DATA, PlanOptions(), [finding])
    ok = plan_upgrade(small(), "1.29", DATA,
                      PlanOptions(ignore_findings=("skew.kubelet-too-old",)), [finding])
    assert ok.hops == ("v1.29.15",)
    warning = replace(finding, severity=Severity.WARNING)
    assert plan_upgrade(small(), "1.29", DATA, PlanOptions(), [warning]).hops


def test_drift_is_restored_before_kubeadm_runs():
    state = small(kube_apiserver="v1.29.2")
    drift = Finding("drift.static-pod-image", Severity.BLOCKING, "node/cp1", "edited", "restore")
    p = plan_upgrade(state, "1.29", DATA, PlanOptions(), [drift])
    first = p.steps[0]
    assert first.id == "prepare/cp1/remediate-drift"
    assert [c.argv for c in first.commands] == [(
        "sed", "-i", "s#registry\\.k8s\\.io/kube-apiserver:v1\\.29\\.2#"
                     "registry.k8s.io/kube-apiserver:v1.28.9#",
        "/etc/kubernetes/manifests/kube-apiserver.yaml")]
    assert first.expect == {"kube-apiserver": "v1.28.9"}
    assert any(w.startswith("drift:") for w in p.warnings)
    assert simulate(state, p, 1).ok


def test_drift_of_more_than_one_minor_is_refused():
    with pytest.raises(UsageError, match="more than one minor newer"):
        plan(small(kube_apiserver="v1.30.1"), "1.30")


def test_a_worker_kubeadm_too_far_behind_is_refused_only_when_strict():
    ver = v("v1.30.14")
    state = cluster([cp_node("cp1", ver), worker("w1", v("v1.28.15"), ver, v("v1.28.15"))], ver)
    with pytest.raises(UsageError, match=r"node w1 was last managed by kubeadm 1\.28"):
        plan(state, "1.31", strict_kubeadm_skew=True)
    p = plan(state, "1.31")
    assert kinds(p, "w1") == [
        "repo-switch", "kubeadm-install", "kubeadm-node", "cordon", "drain", "kubelet-install",
        "kubelet-restart", "wait-ready", "uncordon"]
    assert p.step("1.31/w1/kubeadm-install").expect["kubeadm"].startswith("1.31.")
    assert simulate(state, p, 1).ok


def test_no_control_plane_is_refused():
    ver = v("v1.28.9")
    state = cluster([worker("w1", ver, ver)], ver)
    with pytest.raises(UsageError, match="no control-plane node"):
        plan(state)


# --- random clusters (acceptance) -------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(clusters(), st.sampled_from(["skip", "every-minor"]), st.sampled_from([1, 3, "20%"]),
       st.sampled_from(["minor", "always"]))
def test_random_clusters_get_plans_that_pass_the_simulator_and_reach_the_target(
        case, strategy, max_unavailable, drain):
    state, target = case
    options = PlanOptions(max_unavailable=max_unavailable, worker_strategy=strategy,
                          drain_policy=drain)
    refused: list[str] = []
    try:
        p = plan_upgrade(state, target, DATA, options)
    except UsageError as e:
        refused.append(str(e))
    if refused:  # only when every component already runs the target
        assert "already runs" in refused[0]
        return
    result = simulate(state, p, p.max_unavailable_nodes)
    assert result.ok, result.violations[:3]
    assert result.max_cordoned_workers <= p.max_unavailable_nodes
    final = v(p.to_version)
    assert result.cluster_version == final
    assert all(a.version == final for a in result.components.apiservers)
    for n in result.components.nodes:
        assert n.kubelet == final, n
        assert n.kube_proxy in (None, final), n
        if n.control_plane:
            assert (n.kube_apiserver, n.kube_controller_manager, n.kube_scheduler) == (
                final, final, final)
    # The control plane never skips a minor: one `kubeadm upgrade apply` per hop, in order.
    applies = [v(s.hop) for s in p.steps if s.kind is StepKind.KUBEADM_APPLY]
    current = state.kubeadm_kubernetes_version
    assert [a.minor_version for a in applies] == [v(h).minor_version for h in p.hops]
    for a in applies:
        assert a.minor_version.minus(current.minor_version) <= 1
        current = a
    assert Plan.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_single_instance_database_is_warned_about():
    ver = v("v1.28.9")
    nodes = [cp_node("cp1", ver), worker("w1", ver, ver), worker("w2", ver, ver)]
    state = cluster(nodes, ver, databases=(DatabaseInfo("db", "solo", 1, "solo-1", "w1"),))
    p = plan(state, "1.29")
    assert any("db/solo has a single instance on node w1" in w for w in p.warnings)


def test_a_control_plane_kubelet_too_old_for_the_first_hop_moves_first():
    ver = v("v1.30.14")
    state = cluster([cp_node("cp1", ver, v("v1.27.16")), worker("w1", ver, ver)], ver)
    p = plan(state, "1.31")
    assert ids(p, StepKind.KUBELET_RESTART, "cp1") == ["prepare/cp1/kubelet-restart",
                                                       "1.31/cp1/kubelet-restart"]
    assert simulate(state, p, 1).ok


def test_a_half_upgraded_ha_control_plane_is_finished_before_the_next_hop():
    new, old = v("v1.29.15"), v("v1.28.15")
    cp2 = replace(cp_node("cp2", old, old), kube_proxy=old)
    nodes = [replace(cp_node("cp1", new, old), kube_proxy=old), cp2, worker("w1", old, old)]
    p = plan(cluster(nodes, new), "1.30")
    first = [s.id for s in p.steps if s.hop == str(new) and s.kind is not StepKind.GATE]
    assert first == ["prepare/cp2/repo-switch", "prepare/cp2/kubeadm-install",
                     "prepare/cp2/kubeadm-node"]
    assert simulate(cluster(nodes, new), p, 1).ok


def test_a_workers_kubeadm_steps_run_beside_the_previous_wave_its_cordon_behind_it():
    """kubeadm and `kubeadm upgrade node` do not disrupt a worker: they start while the wave
    before drains, so each wave costs only its drains; the cordon still waits for that wave."""
    p = plan(oldversion_state())
    first, second = [w for w in p.waves if w.kind == "workers"]
    gates = {w.index: s.id for s in p.steps if s.kind is StepKind.GATE for w in p.waves
             if s.wave == w.index and s.id.endswith(f"wave{w.index}/done")}
    node = second.nodes[0]
    before_previous = gates[first.index - 1]
    assert p.step(f"1.30/{node}/repo-switch").after == (before_previous,)
    assert p.step(f"1.30/{node}/cordon").after == (gates[first.index],
                                                    f"1.30/{node}/kubeadm-node")
    # The first workers wave's kubeadm steps wait for the control plane, as before.
    lead = first.nodes[0]
    assert p.step(f"1.30/{lead}/repo-switch").after == (before_previous,)
    assert simulate(oldversion_state(), p, 1).ok
