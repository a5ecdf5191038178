"""The Kubernetes version skew policy, as findings.

Rules from kubernetes/website `content/en/releases/version-skew-policy.md` (section "Supported
version skew") and kubeadm's own skew policy (website `create-cluster-kubeadm.md`, "Version skew
policy"; kubernetes/kubernetes PR 120825 for kubeadm's n-3 kubelet skew from 1.29). Only minors
count: patch, pre-release and vendor/build suffixes never make a violation.

`evaluate_skew` returns one finding per violated rule and object; an empty list means every pair
of components is within the policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kubehop.model.components import ApiServer, ClusterComponents, NodeComponents
from kubehop.model.findings import Finding, Severity
from kubehop.model.versions import KubeVersion, MinorVersion

# kubelet/kube-proxy may be 3 minors older than kube-apiserver; "kubelet < 1.25 may only be up
# to two minor versions older" (version-skew-policy.md, kubelet and kube-proxy).
KUBELET_MAX_LAG = 3
KUBELET_MAX_LAG_BEFORE_N3 = 2
KUBELET_N3_SINCE = MinorVersion(1, 25)
# kube-controller-manager, kube-scheduler: "may be up to one minor version older".
CONTROL_PLANE_MAX_LAG = 1
# HA: "the newest and oldest kube-apiserver instances must be within one minor version".
APISERVER_MAX_SPREAD = 1
# kubectl: "supported within one minor version (older or newer) of kube-apiserver".
KUBECTL_MAX_SKEW = 1
# kubeadm manages kubelets at its own minor down to 3 older from 1.29 (PR 120825), 1 before.
KUBEADM_KUBELET_MAX_LAG = 3
KUBEADM_KUBELET_MAX_LAG_BEFORE_N3 = 1
KUBEADM_N3_SINCE = MinorVersion(1, 29)
# kubeadm manages control-plane components "at its own minor or one older".
KUBEADM_CONTROL_PLANE_MAX_LAG = 1

# kubectl is the operator's client: out of skew it misbehaves, but it endangers no workload.
KUBECTL_SEVERITY = Severity.WARNING


def max_kubelet_lag(kubelet: MinorVersion) -> int:
    """How many minors a kubelet (or kube-proxy) of this minor may trail kube-apiserver."""
    return KUBELET_MAX_LAG if kubelet >= KUBELET_N3_SINCE else KUBELET_MAX_LAG_BEFORE_N3


def kubeadm_kubelet_lag(kubeadm: MinorVersion) -> int:
    """How many minors a kubelet may trail the kubeadm that manages its node."""
    return (
        KUBEADM_KUBELET_MAX_LAG
        if kubeadm >= KUBEADM_N3_SINCE
        else KUBEADM_KUBELET_MAX_LAG_BEFORE_N3
    )


def allowed_kubelet_range(
    apiserver_minors: Iterable[MinorVersion],
) -> tuple[MinorVersion, MinorVersion]:
    """The (oldest, newest) kubelet minors the policy allows beside these apiservers.

    Never newer than the oldest apiserver, at most `max_kubelet_lag` behind the newest (HA skew
    narrows the range). The range is empty (oldest > newest) when the apiservers are too far
    apart for any kubelet.
    """
    minors = list(apiserver_minors)
    if not minors:
        raise ValueError("allowed_kubelet_range needs at least one apiserver minor")
    newest_allowed, newest_api = min(minors), max(minors)
    oldest_allowed = newest_api - KUBELET_MAX_LAG
    if max_kubelet_lag(oldest_allowed) < KUBELET_MAX_LAG:
        oldest_allowed = newest_api - KUBELET_MAX_LAG_BEFORE_N3
    return oldest_allowed, newest_allowed


def evaluate_skew(components: ClusterComponents) -> list[Finding]:
    """A finding for every violated skew rule: apiservers, then each node, then kubectl."""
    apiservers = _effective_apiservers(components)
    lb = components.load_balanced
    findings = _check_apiservers(apiservers)
    for node in components.nodes:
        if apiservers:
            findings += _check_node_agent("kubelet", node, node.kubelet, apiservers)
            findings += _check_node_agent("kube-proxy", node, node.kube_proxy, apiservers)
            talks_to = _apiservers_reached(node, apiservers, lb)
            findings += _check_control_plane_component(
                "kube-controller-manager", node.kube_controller_manager, node, talks_to, lb
            )
            findings += _check_control_plane_component(
                "kube-scheduler", node.kube_scheduler, node, talks_to, lb
            )
        findings += _check_proxy_vs_kubelet(node)
        findings += _check_kubeadm(node)
    if apiservers and components.kubectl is not None:
        findings += _check_kubectl(components.kubectl, apiservers)
    return findings


# --- which apiservers ----------------------------------------------------------------------


def _effective_apiservers(components: ClusterComponents) -> tuple[ApiServer, ...]:
    """The apiservers as `/version` reports them; failing that, their static pods, by node."""
    if components.apiservers:
        return components.apiservers
    return tuple(
        ApiServer(endpoint=n.name, node=n.name, version=n.kube_apiserver)
        for n in components.nodes
        if n.kube_apiserver is not None
    )


def _oldest(apiservers: Sequence[ApiServer]) -> ApiServer:
    return min(apiservers, key=lambda a: a.version.minor_version)


def _newest(apiservers: Sequence[ApiServer]) -> ApiServer:
    return max(apiservers, key=lambda a: a.version.minor_version)


def _apiservers_reached(
    node: NodeComponents, apiservers: tuple[ApiServer, ...], load_balanced: bool
) -> tuple[ApiServer, ...]:
    """The apiservers this node's controller-manager and scheduler talk to.

    kubeadm points them at the apiserver on their own node; behind a load balancer (or when the
    local apiserver is unknown) they may reach any of them.
    """
    if not load_balanced:
        local = tuple(a for a in apiservers if a.node == node.name)
        if local:
            return local
    return apiservers


# --- the rules -----------------------------------------------------------------------------


def _check_apiservers(apiservers: tuple[ApiServer, ...]) -> list[Finding]:
    """HA: newest and oldest kube-apiserver within one minor."""
    if not apiservers:
        return []
    newest = _newest(apiservers)
    floor = newest.version.minor_version - APISERVER_MAX_SPREAD
    findings = []
    for a in apiservers:
        lag = newest.version.minor_version.minus(a.version.minor_version)
        if lag > APISERVER_MAX_SPREAD:
            findings.append(
                _blocking(
                    "skew.apiservers-too-far-apart",
                    a.subject,
                    f"kube-apiserver {a.version.full} is {_minors(lag)} older than kube-apiserver "
                    f"{newest.version.full} ({newest.endpoint}); HA apiservers must be within "
                    f"{_minors(APISERVER_MAX_SPREAD)}",
                    f"upgrade {a.subject} one minor at a time to {floor} before anything else",
                )
            )
    return findings


def _check_node_agent(
    component: str,
    node: NodeComponents,
    version: KubeVersion | None,
    apiservers: tuple[ApiServer, ...],
) -> list[Finding]:
    """kubelet and kube-proxy: never newer than any apiserver, at most 3 (or 2) minors older."""
    if version is None:
        return []
    findings = []
    minor = version.minor_version
    oldest, newest = _oldest(apiservers), _newest(apiservers)
    if minor > oldest.version.minor_version:
        findings.append(
            _blocking(
                f"skew.{component}-newer-than-apiserver",
                node.subject,
                f"{component} {version.full} on node {node.name} is newer than kube-apiserver "
                f"{oldest.version.full} ({oldest.endpoint})",
                f"upgrade every kube-apiserver to {minor} before {component} {minor}, or go back "
                f"to {component} {oldest.version.minor_version} on node {node.name}",
            )
        )
    lag = newest.version.minor_version.minus(minor)
    limit = max_kubelet_lag(minor)
    if lag > limit:
        lowest, _ = allowed_kubelet_range(a.version.minor_version for a in apiservers)
        how = (
            f"drain node {node.name} and upgrade its kubelet"
            if component == "kubelet"
            else f"upgrade kube-proxy on node {node.name}"
        )
        findings.append(
            _blocking(
                f"skew.{component}-too-old",
                node.subject,
                f"{component} {version.full} on node {node.name} is {_minors(lag)} older than "
                f"kube-apiserver {newest.version.full} ({newest.endpoint}); {component} {minor} "
                f"may trail it by at most {_minors(limit)}",
                f"{how} to {lowest} or newer before upgrading the control plane any further",
            )
        )
    return findings


def _check_proxy_vs_kubelet(node: NodeComponents) -> list[Finding]:
    """kube-proxy within 3 minors (2 when kube-proxy < 1.25) of the kubelet beside it."""
    if node.kube_proxy is None or node.kubelet is None:
        return []
    proxy, kubelet = node.kube_proxy.minor_version, node.kubelet.minor_version
    distance = abs(proxy.minus(kubelet))
    limit = max_kubelet_lag(proxy)
    if distance <= limit:
        return []
    older = "kube-proxy" if proxy < kubelet else "kubelet"
    return [
        _blocking(
            "skew.kube-proxy-too-far-from-kubelet",
            node.subject,
            f"kube-proxy {node.kube_proxy.full} on node {node.name} is {_minors(distance)} away "
            f"from kubelet {node.kubelet.full} beside it; at most {_minors(limit)} allowed",
            f"upgrade the {older} on node {node.name} first",
        )
    ]


def _check_control_plane_component(
    component: str,
    version: KubeVersion | None,
    node: NodeComponents,
    talks_to: tuple[ApiServer, ...],
    load_balanced: bool,
) -> list[Finding]:
    """kube-controller-manager/kube-scheduler: never newer than the apiservers they reach,
    at most one minor older."""
    if version is None:
        return []
    short = component.removeprefix("kube-")
    findings = []
    minor = version.minor_version
    oldest, newest = _oldest(talks_to), _newest(talks_to)
    how = "which it may reach through the load balancer" if load_balanced else "which it talks to"
    if minor > oldest.version.minor_version:
        first = (
            f"every kube-apiserver to {minor}"
            if len(talks_to) > 1 or load_balanced
            else f"{oldest.subject} to {minor}"
        )
        findings.append(
            _blocking(
                f"skew.{short}-newer-than-apiserver",
                node.subject,
                f"{component} {version.full} on node {node.name} is newer than kube-apiserver "
                f"{oldest.version.full} ({oldest.endpoint}), {how}",
                f"upgrade {first} before {component}",
            )
        )
    lag = newest.version.minor_version.minus(minor)
    if lag > CONTROL_PLANE_MAX_LAG:
        findings.append(
            _blocking(
                f"skew.{short}-too-old",
                node.subject,
                f"{component} {version.full} on node {node.name} is {_minors(lag)} older than "
                f"kube-apiserver {newest.version.full} ({newest.endpoint}), {how}; at most "
                f"{_minors(CONTROL_PLANE_MAX_LAG)} allowed",
                f"upgrade {component} on node {node.name} to "
                f"{newest.version.minor_version - CONTROL_PLANE_MAX_LAG} or newer "
                f"(kubeadm upgrade apply/node)",
            )
        )
    return findings


def _check_kubeadm(node: NodeComponents) -> list[Finding]:
    """kubeadm manages kubelets at its minor down to n-3 (n-1 before 1.29), and control-plane
    components at its own minor or one older."""
    if node.kubeadm is None:
        return []
    findings = []
    kubeadm = node.kubeadm.minor_version
    if node.kubelet is not None:
        kubelet = node.kubelet.minor_version
        lag = kubeadm.minus(kubelet)
        limit = kubeadm_kubelet_lag(kubeadm)
        if lag < 0:
            findings.append(
                _blocking(
                    "skew.kubelet-newer-than-kubeadm",
                    node.subject,
                    f"kubelet {node.kubelet.full} on node {node.name} is newer than kubeadm "
                    f"{node.kubeadm.full} beside it; kubeadm manages kubelets of its own minor "
                    f"or older",
                    f"upgrade kubeadm on node {node.name} to {kubelet} (kubeadm before kubelet)",
                )
            )
        elif lag > limit:
            findings.append(
                _blocking(
                    "skew.kubelet-too-old-for-kubeadm",
                    node.subject,
                    f"kubelet {node.kubelet.full} on node {node.name} is {_minors(lag)} older "
                    f"than kubeadm {node.kubeadm.full} beside it; kubeadm {kubeadm} manages "
                    f"kubelets at most {_minors(limit)} older",
                    f"drain node {node.name} and upgrade its kubelet to {kubeadm - limit} or "
                    f"newer, or keep kubeadm at {kubelet + limit}",
                )
            )
    if node.control_plane:
        findings += _check_kubeadm_control_plane(node, node.kubeadm)
    return findings


def _check_kubeadm_control_plane(node: NodeComponents, kubeadm: KubeVersion) -> list[Finding]:
    static_pods = [
        (name, v)
        for name, v in (
            ("kube-apiserver", node.kube_apiserver),
            ("kube-controller-manager", node.kube_controller_manager),
            ("kube-scheduler", node.kube_scheduler),
        )
        if v is not None
    ]
    if not static_pods:
        return []
    findings = []
    minor = kubeadm.minor_version
    newest_name, newest = max(static_pods, key=lambda p: p[1].minor_version)
    oldest_name, oldest = min(static_pods, key=lambda p: p[1].minor_version)
    if minor < newest.minor_version:
        findings.append(
            _blocking(
                "skew.kubeadm-older-than-control-plane",
                node.subject,
                f"kubeadm {kubeadm.full} on node {node.name} is older than its {newest_name} "
                f"{newest.full}; kubeadm manages control-plane components of its own minor or "
                f"one older",
                f"upgrade kubeadm on node {node.name} to {newest.minor_version} before running "
                f"kubeadm upgrade there",
            )
        )
    lag = minor.minus(oldest.minor_version)
    if lag > KUBEADM_CONTROL_PLANE_MAX_LAG:
        findings.append(
            _blocking(
                "skew.kubeadm-too-new-for-control-plane",
                node.subject,
                f"kubeadm {kubeadm.full} on node {node.name} is {_minors(lag)} newer than its "
                f"{oldest_name} {oldest.full}; kubeadm manages control-plane components of its "
                f"own minor or one older",
                f"install kubeadm {oldest.minor_version + 1} on node {node.name} and upgrade "
                f"the control plane one minor at a time",
            )
        )
    return findings


def _check_kubectl(kubectl: KubeVersion, apiservers: tuple[ApiServer, ...]) -> list[Finding]:
    """kubectl within one minor (older or newer) of every apiserver."""
    minor = kubectl.minor_version
    oldest, newest = _oldest(apiservers), _newest(apiservers)
    low = newest.version.minor_version - KUBECTL_MAX_SKEW
    high = oldest.version.minor_version + KUBECTL_MAX_SKEW
    fix = (
        f"use a kubectl between {low} and {high}"
        if low < high
        else f"use kubectl {low}"
        if low == high
        else "fix the kube-apiserver skew first"
    )
    findings = []
    ahead = minor.minus(oldest.version.minor_version)
    if ahead > KUBECTL_MAX_SKEW:
        findings.append(
            Finding(
                "skew.kubectl-too-new",
                KUBECTL_SEVERITY,
                "kubectl",
                f"kubectl {kubectl.full} is {_minors(ahead)} newer than kube-apiserver "
                f"{oldest.version.full} ({oldest.endpoint}); kubectl must be within "
                f"{_minors(KUBECTL_MAX_SKEW)} of every apiserver",
                fix,
            )
        )
    behind = newest.version.minor_version.minus(minor)
    if behind > KUBECTL_MAX_SKEW:
        findings.append(
            Finding(
                "skew.kubectl-too-old",
                KUBECTL_SEVERITY,
                "kubectl",
                f"kubectl {kubectl.full} is {_minors(behind)} older than kube-apiserver "
                f"{newest.version.full} ({newest.endpoint}); kubectl must be within "
                f"{_minors(KUBECTL_MAX_SKEW)} of every apiserver",
                fix,
            )
        )
    return findings


# --- helpers -------------------------------------------------------------------------------


def _blocking(id_: str, subject: str, message: str, fix: str) -> Finding:
    return Finding(id_, Severity.BLOCKING, subject, message, fix)


def _minors(n: int) -> str:
    return "1 minor" if n == 1 else f"{n} minors"
