"""The skew engine: a table per rule and boundary, then properties of the upgrade order."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubehop.core.kubeadm_policy import enforce_version_policies
from kubehop.core.skew import allowed_kubelet_range, evaluate_skew
from kubehop.model.components import ApiServer, ClusterComponents, NodeComponents
from kubehop.model.findings import Severity
from kubehop.model.versions import KubeVersion, MinorVersion, parse_kube_version

V = parse_kube_version


def cp(name: str, version: str, **changes: str | None) -> NodeComponents:
    """A control-plane node with every component at `version`, except `changes`."""
    v = V(version)
    node = NodeComponents(name, True, v, v, v, v, v, v)
    return replace(node, **{k: None if c is None else V(c) for k, c in changes.items()})


def worker(name: str, version: str, **changes: str | None) -> NodeComponents:
    """A worker with kubelet and kube-proxy at `version` (no kubeadm unless given)."""
    v = V(version)
    node = NodeComponents(name, False, kubelet=v, kube_proxy=v)
    return replace(node, **{k: None if c is None else V(c) for k, c in changes.items()})


def cluster(
    *nodes: NodeComponents,
    apis: dict[str, str] | None = None,
    kubectl: str | None = None,
    lb: bool = False,
) -> ClusterComponents:
    """Apiservers default to one per control-plane node, at its static pod's version."""
    if apis is None:
        apis = {n.name: n.kube_apiserver.full for n in nodes if n.kube_apiserver is not None}
    apiservers = tuple(
        ApiServer(f"127.77.0.{i}:6443", name, V(v)) for i, (name, v) in enumerate(apis.items(), 1)
    )
    return ClusterComponents(apiservers, nodes, None if kubectl is None else V(kubectl), lb)


# Mid-upgrade HA control plane: cp1's control plane at 1.30, cp2's still at 1.29, kubelets
# and kube-proxies not newer than the oldest apiserver.
HA = (
    cp("cp1", "v1.30.1", kubelet="v1.29.9", kube_proxy="v1.29.9"),
    cp("cp2", "v1.29.9", kubeadm="v1.30.1"),
)

CASES = [
    ("consistent",
     cluster(cp("cp1", "v1.29.3"), worker("w1", "v1.29.3"), kubectl="v1.29.3"), set()),
    ("kubelet newer patch is fine", cluster(cp("cp1", "v1.29.3"), worker("w1", "v1.29.15")), set()),
    ("kubelet newer than apiserver",
     cluster(cp("cp1", "v1.29.3"), worker("w1", "v1.29.3", kubelet="v1.30.1")),
     {("skew.kubelet-newer-than-apiserver", "node/w1")}),
    ("kubelet 4 minors older",
     cluster(cp("cp1", "v1.30.1"), worker("w1", "v1.26.9", kube_proxy=None)),
     {("skew.kubelet-too-old", "node/w1")}),
    ("kubelet 3 older on 1.28 (kubelet 1.25) is allowed",
     cluster(cp("cp1", "v1.28.9"), worker("w1", "v1.28.9", kubelet="v1.25.16")), set()),
    ("kubelet 3 older on 1.30 is allowed",
     cluster(cp("cp1", "v1.30.1"), worker("w1", "v1.30.1", kubelet="v1.27.2")), set()),
    ("kubelet 3 older on 1.27 (kubelet 1.24 < 1.25) is not",
     cluster(cp("cp1", "v1.27.8"), worker("w1", "v1.27.8", kubelet="v1.24.17")),
     {("skew.kubelet-too-old", "node/w1")}),
    ("kubelet 1.24 two older on 1.26 is allowed",
     cluster(cp("cp1", "v1.26.5"), worker("w1", "v1.26.5", kubelet="v1.24.17")), set()),
    ("HA apiservers 2 minors apart",
     cluster(cp("cp1", "v1.30.1", kubelet="v1.28.9", kube_proxy="v1.28.9"),
             cp("cp2", "v1.28.9", kubeadm="v1.29.0"), worker("w1", "v1.28.9")),
     {("skew.apiservers-too-far-apart", "apiserver/127.77.0.2:6443")}),
    ("HA apiservers 1 minor apart", cluster(*HA, worker("w1", "v1.29.9")), set()),
    ("HA skew: kubelet at the newest apiserver is newer than the oldest",
     cluster(*HA,
             worker("w1", "v1.29.9", kubelet="v1.30.1")),
     {("skew.kubelet-newer-than-apiserver", "node/w1")}),
    ("HA skew: kubelet 3 behind the newest is allowed",
     cluster(*HA,
             worker("w1", "v1.27.3")), set()),
    ("HA skew: a control-plane kubelet upgraded before the other apiservers",
     cluster(cp("cp1", "v1.30.1"), cp("cp2", "v1.29.9", kubeadm="v1.30.1")),
     {("skew.kubelet-newer-than-apiserver", "node/cp1"),
      ("skew.kube-proxy-newer-than-apiserver", "node/cp1")}),
    ("controller-manager newer than its apiserver",
     cluster(cp("cp1", "v1.29.3", kube_controller_manager="v1.30.1", kubeadm="v1.30.1")),
     {("skew.controller-manager-newer-than-apiserver", "node/cp1")}),
    ("scheduler newer than its apiserver",
     cluster(cp("cp1", "v1.29.3", kube_scheduler="v1.30.1", kubeadm="v1.30.1")),
     {("skew.scheduler-newer-than-apiserver", "node/cp1")}),
    ("behind a load balancer, controller-manager newer than any apiserver",
     cluster(*HA, lb=True),
     {("skew.controller-manager-newer-than-apiserver", "node/cp1"),
      ("skew.scheduler-newer-than-apiserver", "node/cp1")}),
    ("without a load balancer, each talks to its own apiserver",
     cluster(*HA), set()),
    ("controller-manager and scheduler 2 older",
     cluster(cp("cp1", "v1.30.1", kube_controller_manager="v1.28.3", kube_scheduler="v1.28.3")),
     {("skew.controller-manager-too-old", "node/cp1"), ("skew.scheduler-too-old", "node/cp1"),
      # kubeadm 1.30 cannot manage them either
      ("skew.kubeadm-too-new-for-control-plane", "node/cp1")}),
    ("controller-manager 1 older is allowed",
     cluster(cp("cp1", "v1.30.1", kube_controller_manager="v1.29.3")), set()),
    ("kube-proxy newer than apiserver",
     cluster(cp("cp1", "v1.29.3"), worker("w1", "v1.29.3", kube_proxy="v1.30.0")),
     {("skew.kube-proxy-newer-than-apiserver", "node/w1")}),
    ("kube-proxy 4 older, 4 from its kubelet",
     cluster(cp("cp1", "v1.30.1"), worker("w1", "v1.30.1", kube_proxy="v1.26.0")),
     {("skew.kube-proxy-too-old", "node/w1"), ("skew.kube-proxy-too-far-from-kubelet", "node/w1")}),
    ("kube-proxy 3 from its kubelet (proxy 1.24 < 1.25: at most 2)",
     cluster(worker("w1", "v1.24.0", kubelet="v1.27.3"), apis={}),
     {("skew.kube-proxy-too-far-from-kubelet", "node/w1")}),
    ("kube-proxy 3 older than its kubelet, both allowed",
     cluster(cp("cp1", "v1.30.1"), worker("w1", "v1.30.1", kube_proxy="v1.27.0")), set()),
    ("kubectl 2 minors newer", cluster(cp("cp1", "v1.29.3"), kubectl="v1.31.0"),
     {("skew.kubectl-too-new", "kubectl")}),
    ("kubectl 2 minors older", cluster(cp("cp1", "v1.29.3"), kubectl="v1.27.0"),
     {("skew.kubectl-too-old", "kubectl")}),
    ("kubectl 1 minor off either way",
     cluster(*HA, kubectl="v1.29.0"), set()),
    ("HA skew narrows kubectl",
     cluster(*HA, kubectl="v1.31.0"),
     {("skew.kubectl-too-new", "kubectl")}),
    ("kubeadm 1.28 manages kubelets at most 1 older",
     cluster(cp("cp1", "v1.28.9"), worker("w1", "v1.26.15", kubeadm="v1.28.9")),
     {("skew.kubelet-too-old-for-kubeadm", "node/w1")}),
    ("kubeadm 1.29 manages kubelets 3 older",
     cluster(cp("cp1", "v1.29.3"), worker("w1", "v1.26.15", kubeadm="v1.29.3")), set()),
    ("kubeadm 1.30 manages kubelets at most 3 older",
     cluster(cp("cp1", "v1.29.3"), worker("w1", "v1.26.15", kubeadm="v1.30.1")),
     {("skew.kubelet-too-old-for-kubeadm", "node/w1")}),
    ("kubelet newer than kubeadm",
     cluster(cp("cp1", "v1.29.3"), worker("w1", "v1.29.3", kubeadm="v1.28.9")),
     {("skew.kubelet-newer-than-kubeadm", "node/w1")}),
    ("kubeadm older than its control plane",
     cluster(cp("cp1", "v1.29.3", kubeadm="v1.28.9", kubelet="v1.28.9")),
     {("skew.kubeadm-older-than-control-plane", "node/cp1")}),
    ("kubeadm one newer than its control plane (mid-upgrade) is allowed",
     cluster(cp("cp1", "v1.29.3", kubeadm="v1.30.1")), set()),
    ("kubeadm 2 newer than its control plane",
     cluster(cp("cp1", "v1.29.3", kubeadm="v1.31.0")),
     {("skew.kubeadm-too-new-for-control-plane", "node/cp1")}),
    ("vendor suffixes and pre-releases ignored",
     cluster(cp("cp1", "v1.29.3-eks-8cb36c9", kube_scheduler="v1.29.0-rc.1"),
             worker("w1", "v1.29.10+k3s1"), kubectl="v1.30.0-alpha.3"), set()),
    ("static pods stand in for unknown apiservers",
     cluster(cp("cp1", "v1.29.3"), worker("w1", "v1.30.0", kube_proxy="v1.29.3"), apis={}),
     {("skew.kubelet-newer-than-apiserver", "node/w1")}),
    ("no apiserver known: only node-local rules",
     cluster(worker("w1", "v1.35.0", kube_proxy="v1.30.0"), apis={}, kubectl="v1.20.0"),
     {("skew.kube-proxy-too-far-from-kubelet", "node/w1")}),
]  # fmt: skip


@pytest.mark.parametrize(("components", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_rules(components: ClusterComponents, expected: set[tuple[str, str]]) -> None:
    findings = evaluate_skew(components)
    assert {(f.id, f.subject) for f in findings} == expected
    assert len(findings) == len(expected)
    for f in findings:
        assert f.id.startswith("skew.")
        assert f.message
        assert f.fix
        assert "\n" not in f.message + f.fix
        expected_severity = Severity.WARNING if f.subject == "kubectl" else Severity.BLOCKING
        assert f.severity == expected_severity


def test_messages_name_versions_and_fix() -> None:
    [f] = evaluate_skew(cluster(cp("cp1", "v1.29.3"), worker("w1", "v1.29.3", kubelet="v1.30.1")))
    assert f.message == (
        "kubelet v1.30.1 on node w1 is newer than kube-apiserver v1.29.3 (127.77.0.1:6443)"
    )
    assert f.fix == (
        "upgrade every kube-apiserver to 1.30 before kubelet 1.30, or go back to kubelet 1.29 on "
        "node w1"
    )
    [f] = evaluate_skew(cluster(cp("cp1", "v1.27.8"), worker("w1", "v1.27.8", kubelet="v1.24.17")))
    assert f.message == (
        "kubelet v1.24.17 on node w1 is 3 minors older than kube-apiserver v1.27.8 "
        "(127.77.0.1:6443); kubelet 1.24 may trail it by at most 2 minors"
    )
    assert f.fix == (
        "drain node w1 and upgrade its kubelet to 1.25 or newer before upgrading the control "
        "plane any further"
    )
    ha = cp("cp1", "v1.30.1", kubelet="v1.28.9", kube_proxy="v1.28.9")
    [f] = evaluate_skew(cluster(ha, cp("cp2", "v1.28.9", kubeadm="v1.29.0")))
    assert f.message == (
        "kube-apiserver v1.28.9 is 2 minors older than kube-apiserver v1.30.1 (127.77.0.1:6443); "
        "HA apiservers must be within 1 minor"
    )
    assert f.fix == (
        "upgrade apiserver/127.77.0.2:6443 one minor at a time to 1.29 before anything else"
    )


def test_vendor_suffix_is_shown_as_reported() -> None:
    c = cluster(cp("cp1", "v1.29.3-eks-8cb36c9"), worker("w1", "v1.30.1-eks-1"))
    messages = [f.message for f in evaluate_skew(c)]
    assert messages == [
        "kubelet v1.30.1-eks-1 on node w1 is newer than kube-apiserver v1.29.3-eks-8cb36c9 "
        "(127.77.0.1:6443)",
        "kube-proxy v1.30.1-eks-1 on node w1 is newer than kube-apiserver v1.29.3-eks-8cb36c9 "
        "(127.77.0.1:6443)",
    ]


# --- allowed_kubelet_range -------------------------------------------------------------------


def m(text: str) -> MinorVersion:
    major, minor = text.split(".")
    return MinorVersion(int(major), int(minor))


@pytest.mark.parametrize(
    ("apiservers", "oldest", "newest"),
    [
        (["1.28"], "1.25", "1.28"),
        (["1.27"], "1.25", "1.27"),  # 1.24 would be 3 behind: < 1.25 allows only 2
        (["1.26"], "1.24", "1.26"),
        (["1.30", "1.29"], "1.27", "1.29"),
        (["1.30", "1.27"], "1.27", "1.27"),
        (["1.31", "1.27"], "1.28", "1.27"),  # empty: apiservers too far apart
    ],
)
def test_allowed_kubelet_range(apiservers: list[str], oldest: str, newest: str) -> None:
    assert allowed_kubelet_range(m(a) for a in apiservers) == (m(oldest), m(newest))


def test_allowed_kubelet_range_needs_an_apiserver() -> None:
    with pytest.raises(ValueError, match="at least one"):
        allowed_kubelet_range([])


@given(
    newest=st.integers(20, 40),
    ha_lag=st.integers(0, 1),
    kubelet=st.integers(14, 42),
)
def test_range_agrees_with_engine(newest: int, ha_lag: int, kubelet: int) -> None:
    apis = {"cp1": f"v1.{newest}.0", "cp2": f"v1.{newest - ha_lag}.0"}
    c = cluster(worker("w1", f"v1.{kubelet}.0", kube_proxy=None), apis=apis)
    low, high = allowed_kubelet_range(MinorVersion(1, int(v.split(".")[1])) for v in apis.values())
    allowed = low <= MinorVersion(1, kubelet) <= high
    assert allowed == (evaluate_skew(c) == [])


# --- the documented upgrade order never violates the policy -----------------------------------


def apply_step(
    state: ClusterComponents, step: tuple[str, str], v: KubeVersion
) -> ClusterComponents:
    """Move one component (`kind` on node `name`, or kubectl) to version `v`."""
    kind, name = step
    if kind == "kubectl":
        return replace(state, kubectl=v)
    state = state.with_node(replace(state.node(name), **{kind: v}))
    if kind == "kube_apiserver":
        [api] = [a for a in state.apiservers if a.node == name]
        state = state.with_apiserver(replace(api, version=v))
    return state


@st.composite
def upgrade_runs(draw: st.DrawFn, per_node_control_plane: bool = False):
    """A consistent cluster and, per hop, the documented order of component upgrades."""
    start = draw(st.integers(20, 33))
    control_planes = [f"cp{i}" for i in range(1, draw(st.integers(1, 3)) + 1)]
    workers = [f"w{i}" for i in range(1, draw(st.integers(0, 3)) + 1)]
    lb = False if per_node_control_plane else draw(st.booleans())
    v0 = KubeVersion(1, start, draw(st.integers(0, 20)))
    state = cluster(
        *(cp(n, str(v0)) for n in control_planes),
        *(worker(n, str(v0), kubeadm=str(v0)) for n in workers),
        kubectl=str(v0),
        lb=lb,
    )
    nodes = control_planes + workers
    hops = []
    for minor in range(start + 1, start + 1 + draw(st.integers(1, 4))):
        version = KubeVersion(1, minor, draw(st.integers(0, 20)))
        # 1. kubeadm everywhere; 2. apiservers one at a time; 3. controller-managers and
        # schedulers; 4. kubelets and kube-proxies in any order; kubectl at any point.
        steps = [("kubeadm", n) for n in draw(st.permutations(nodes))]
        if per_node_control_plane:  # kubeadm's own order: each node's whole control plane
            for n in draw(st.permutations(control_planes)):
                cps = [("kube_controller_manager", n), ("kube_scheduler", n)]
                steps += [("kube_apiserver", n), *draw(st.permutations(cps))]
        else:
            steps += [("kube_apiserver", n) for n in draw(st.permutations(control_planes))]
            kinds = ("kube_controller_manager", "kube_scheduler")
            cps = [(k, n) for n in control_planes for k in kinds]
            steps += draw(st.permutations(cps))
        agents = [(k, n) for n in nodes for k in ("kubelet", "kube_proxy")]
        steps += draw(st.permutations(agents))
        steps.insert(draw(st.integers(0, len(steps))), ("kubectl", ""))
        hops.append((version, steps))
    return state, hops


def run_and_check(state: ClusterComponents, hops) -> None:
    assert evaluate_skew(state) == []
    for version, steps in hops:
        kubelets = [n.kubelet for n in state.nodes if n.kubelet is not None]
        policy = enforce_version_policies(version, state.apiservers[0].version, version, kubelets)
        assert not policy, policy
        for step in steps:
            state = apply_step(state, step, version)
            assert evaluate_skew(state) == [], (step, version, state)


@settings(max_examples=150, deadline=None)
@given(upgrade_runs())
def test_documented_order_never_violates(run) -> None:
    run_and_check(*run)


@settings(max_examples=75, deadline=None)
@given(upgrade_runs(per_node_control_plane=True))
def test_kubeadm_per_node_order_without_load_balancer_never_violates(run) -> None:
    run_and_check(*run)


def test_kubeadm_per_node_order_behind_load_balancer_is_flagged() -> None:
    # cp1 upgraded completely (kubeadm upgrade apply) while cp2's apiserver is still 1.29:
    # a controller-manager reaching any apiserver would be newer than cp2's.
    c = cluster(cp("cp1", "v1.30.1", kubelet="v1.29.9", kube_proxy="v1.29.9"),
                cp("cp2", "v1.29.9", kubeadm="v1.30.1"), lb=True)  # fmt: skip
    assert {f.id for f in evaluate_skew(c)} == {
        "skew.controller-manager-newer-than-apiserver",
        "skew.scheduler-newer-than-apiserver",
    }
