"""`kubehop check`: everything wrong with, or worth knowing about, a cluster before an upgrade.

Pure: `run_checks(state, release_data, today, target)` judges an observed `ClusterState` and
returns findings, blocking first. Areas (finding id prefixes): `skew.*` (the version skew policy,
`core.skew`), `support.*` (the cluster's minor on `today`, patches behind, the target), `data.*`
(stale release data), `drift.*` (the cluster differs from what kubeadm and the package manager
believe), `packages.*` and `install.*` (`checks_nodes`), `drain.*` and `capacity.*`
(`checks_workloads`), `apis.*` and `cni.*` with a target (`checks_apis`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date

from kubehop.core.checks import apis as checks_apis
from kubehop.core.checks import host as checks_host
from kubehop.core.checks import nodes as checks_nodes
from kubehop.core.checks import pins as checks_pins
from kubehop.core.checks import workloads as checks_workloads
from kubehop.core.checks.common import grouped, package_kube_version
from kubehop.core.planner.target import cluster_version
from kubehop.core.skew import evaluate_skew
from kubehop.core.support import (
    latest_patch_on,
    staleness_finding,
    support_status,
    supported_minors,
)
from kubehop.model.cluster import ClusterState
from kubehop.model.findings import Finding, Severity, sort_findings
from kubehop.model.releases import ReleaseData, SupportStatus
from kubehop.model.versions import KubeVersion

# The control-plane components whose static pod image kubeadm sets from kubernetesVersion.
KUBEADM_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def run_checks(state: ClusterState, release_data: ReleaseData, today: date,
               target: KubeVersion | None = None) -> list[Finding]:
    """Every finding about `state` on `today`, for an upgrade to `target` when given (resolved
    once, by `planner_target.resolve_target`, as the planner gets it)."""
    current = cluster_version(state)
    findings: list[Finding] = []
    findings += evaluate_skew(state.components())
    findings += unreachable_apiservers(state)
    findings += inventory_fallbacks(state)
    findings += support_findings(current, release_data, today)
    if target is not None:
        findings += target_findings(current, target, release_data, today)
    stale = staleness_finding(release_data, today)
    if stale is not None:
        findings.append(stale)
    drift = drift_findings(state, current)
    findings = explained_by_drift(state, findings, drift) + drift
    findings += kubeadm_jump_findings(state, current, target)
    findings += checks_nodes.install_findings(state)
    findings += checks_nodes.package_findings(state)
    findings += checks_nodes.key_findings(state, today)
    findings += checks_nodes.vendor_key_findings(state)
    findings += checks_nodes.trial_findings(state, target)
    findings += checks_pins.pin_findings(state, target)
    findings += checks_host.host_findings(state, release_data, current, target)
    if state.workloads_observed:
        findings += checks_workloads.drain_findings(state)
        findings += checks_workloads.capacity_findings(state)
    if target is not None and current is not None:
        target_minor = target.minor_version
        findings += checks_apis.api_findings(state, release_data, current.minor_version,
                                             target_minor)
        findings += checks_apis.cni_findings(state, release_data, current.minor_version,
                                             target_minor)
    return sort_findings(findings)


# --- versions ------------------------------------------------------------------------------


def unreachable_apiservers(state: ClusterState) -> list[Finding]:
    """Apiservers that could not be read at all (the skew rules could not count them), and
    those whose address did not answer from here, read from their mirror pod instead."""
    out = []
    for a in state.apiservers:
        where = f" on node {a.node}" if a.node else ""
        mirror = a.read_via == "mirror-pod"
        if a.error is None:
            if mirror:
                out.append(Finding(
                    "skew.apiserver-read-from-mirror-pod", Severity.INFO,
                    f"apiserver/{a.endpoint}",
                    f"kube-apiserver {a.endpoint}{where} did not answer from here "
                    f"({a.address_error}); its version {a.version} was read from its mirror pod "
                    f"and its health through the kubeconfig's server",
                    "nothing to do when advertise addresses are reachable only inside the "
                    "cluster's network (load balancer, bastion, VPN)"))
            continue
        how = (f"its address did not answer from here ({a.address_error}), and read from its "
               f"mirror pod: {a.error}" if mirror else f"did not answer /version ({a.error})")
        out.append(Finding(
            "skew.apiserver-unreachable", Severity.WARNING, f"apiserver/{a.endpoint}",
            f"kube-apiserver {a.endpoint}{where}: {how}; the skew rules were judged without it",
            f"check that kube-apiserver{where} runs (crictl ps, journalctl -u kubelet) and that "
            f"{a.endpoint} is reachable from here, then run kubehop check again",
        ))
    return out


def inventory_fallbacks(state: ClusterState) -> list[Finding]:
    """Nodes the SSH inventory does not name, reached at their InternalIP: said once per node,
    so an inventory gap shows instead of a silent connection to an address nobody chose."""
    return [Finding(
        "node.inventory-fallback", Severity.WARNING, f"node/{node}",
        f"node {node} is not in the SSH inventory: kubehop reaches it at its InternalIP "
        f"{address} (port and user from the inventory's defaults or ~/.ssh/config)",
        f"add {node} to the SSH inventory (nodes: {{{node}: {{host: ...}}}}) unless "
        f"{address} is the address to use",
    ) for node, address in state.address_fallbacks]


def kubeadm_jump_findings(state: ClusterState, current: KubeVersion | None,
                          target: KubeVersion | None) -> list[Finding]:
    """Workers whose kubeadm the upgrade moves more than one minor at once.

    kubeadm's docs ask a node's kubeadm to be of the minor that last managed it or one newer
    (website create-cluster-kubeadm.md, "kubeadm's skew against kubeadm"); kubeadm's code checks
    no such thing, and `kubeadm upgrade node` on a worker runs preflight and rewrites the kubelet
    configuration only (kubernetes/kubernetes cmd/kubeadm/app/cmd/upgrade/node.go; #120825
    tested it two minors apart). kubehop therefore jumps, and says so."""
    reference = target or current
    if reference is None:
        return []
    minor = reference.minor_version
    jumps: dict[str, str] = {}
    for n in state.worker_nodes:
        pk = n.packages
        kubeadm = (pk.kubeadm_binary or package_kube_version(pk.kubeadm)) if pk else None
        if kubeadm is not None and minor.minus(kubeadm.minor_version) > 1:
            jumps[n.name] = f"{kubeadm.minor_version}"
    return grouped(
        "skew.kubeadm-node-jump", Severity.WARNING, jumps,
        lambda nodes, old: (
            f"kubeadm {old} last managed {nodes}; the upgrade installs kubeadm {minor} there "
            f"directly (one kubeadm upgrade node per kubelet move, right before the drain). "
            f"kubeadm's docs ask for the minor that last managed a node or one newer, but "
            f"kubeadm's code does not enforce it and on a worker `kubeadm upgrade node` only "
            f"rewrites the kubelet configuration"),
        lambda nodes, old: (
            "nothing to do; to follow the docs' letter instead, plan with "
            "--strict-kubeadm-skew (kubeadm then follows every hop on every worker, and "
            "workers more than one minor behind the cluster are refused)"))


# --- support -------------------------------------------------------------------------------


def support_findings(current: KubeVersion | None, data: ReleaseData,
                     today: date) -> list[Finding]:
    """End of life or maintenance of the cluster's minor on `today`; patches behind."""
    if current is None:
        return []
    minor = current.minor_version
    status = support_status(data, minor, today)
    release = data.minor(minor)
    supported = supported_minors(data, today)
    out = []
    if status is SupportStatus.END_OF_LIFE:
        eol = f" on {release.eol}" if release else ""
        newest = f"{supported[0]} or newer" if supported else "a supported minor"
        out.append(Finding(
            "support.end-of-life", Severity.WARNING, "cluster",
            f"Kubernetes {minor} (the cluster runs {current}) reached end of life{eol}: it gets "
            f"no more patches, security fixes included",
            f"upgrade to {newest} (kubehop plan --to {supported[0] if supported else 'VERSION'})",
        ))
    elif status is SupportStatus.MAINTENANCE and release is not None:
        out.append(Finding(
            "support.maintenance", Severity.INFO, "cluster",
            f"Kubernetes {minor} is in maintenance mode since {release.maintenance_start} "
            f"(critical fixes only) and reaches end of life on {release.eol}",
            f"plan the upgrade to {minor + 1} before {release.eol}",
        ))
    elif status is SupportStatus.UNKNOWN_NEWER:
        out.append(Finding(
            "support.unknown-minor", Severity.INFO, "cluster",
            f"the release data (from {data.data_date}) does not know Kubernetes {minor}",
            "pass newer data with --release-data FILE or upgrade kubehop",
        ))
    latest = latest_patch_on(data, minor, today)
    if latest is not None and current.base < latest:
        out.append(Finding(
            "support.patch-behind", Severity.WARNING, "cluster",
            f"the cluster runs {current}, behind {latest}, the latest patch of {minor}: "
            f"latest PATCH is recommended",
            f"upgrade to {latest} (kubehop plan --to {latest})",
        ))
    return out


def target_findings(current: KubeVersion | None, target: KubeVersion, data: ReleaseData,
                    today: date) -> list[Finding]:
    """Whether the target is a known, supported version above the cluster's."""
    minor = target.minor_version
    out = []
    if not data.is_known(target):
        out.append(Finding(
            "support.target-unknown", Severity.WARNING, "target",
            f"the release data (from {data.data_date}) knows no release {target}",
            "check the version (kubehop releases) or pass newer data with --release-data FILE",
        ))
    elif support_status(data, minor, today) is SupportStatus.END_OF_LIFE:
        release = data.minor(minor)
        out.append(Finding(
            "support.target-end-of-life", Severity.WARNING, "target",
            f"the target {target} is past end of life"
            + (f" (since {release.eol})" if release else ""),
            "upgrade further, to a supported minor (kubehop releases lists them)",
        ))
    if current is not None:
        if target.base < current.base or minor < current.minor_version:
            out.append(Finding(
                "support.target-older", Severity.BLOCKING, "target",
                f"the target {target} is older than the cluster ({current}); kubehop does "
                f"not downgrade",
                f"pick a version newer than {current}",
            ))
        elif target.base == current.base:
            out.append(Finding(
                "support.already-at-target", Severity.INFO, "target",
                f"the cluster already runs {current}", "nothing to upgrade",
            ))
    return out


# --- drift ---------------------------------------------------------------------------------


def drift_findings(state: ClusterState, current: KubeVersion | None) -> list[Finding]:
    """The cluster differs from what kubeadm-config and the package manager say."""
    out = static_pod_drift(state)
    out += apiserver_drift(state)
    if current is not None:
        out += grouped(
            "drift.kubeadm-older-than-cluster", Severity.WARNING,
            {n.name: str(n.packages.kubeadm_binary) for n in state.nodes
             if n.packages and n.packages.kubeadm_binary
             and n.packages.kubeadm_binary.base < current.base},
            lambda nodes, v: f"kubeadm {v} on {nodes} is older than the cluster ({current})",
            lambda nodes, v: f"install kubeadm {current.minor_version}.x on {nodes} before "
                             f"running kubeadm upgrade there",
        )
    out += package_drift(state)
    return out


def explained_by_drift(state: ClusterState, findings: list[Finding],
                       drift: list[Finding]) -> list[Finding]:
    """`findings` with every skew violation that only the hand-edited manifests make (it is
    gone once they are restored to kubeadm's version) pointing at that drift instead of giving
    a fix of its own: "upgrade kubeadm to match" would accept the hand edit."""
    wanted = state.kubeadm_kubernetes_version
    edited = sorted(f.subject.removeprefix("node/") for f in drift
                    if f.id == "drift.static-pod-image")
    if wanted is None or not edited:
        return findings
    restored = restore_drift(state, wanted)
    remaining = {(f.id, f.subject) for f in evaluate_skew(restored.components())}
    where = ", ".join(edited)
    out = []
    for f in findings:
        if f.id.startswith("skew.") and (f.id, f.subject) not in remaining:
            f = replace(f, message=f"{f.message} — only because of the hand-edited manifest on "
                                   f"{where} (drift.static-pod-image)",
                        fix=f"restore the hand-edited manifest on {where} to {wanted} "
                            f"(drift.static-pod-image; kubehop plan and upgrade do it first, "
                            f"one node at a time)",
                        cause="drift.static-pod-image")
        out.append(f)
    return out


def restore_drift(state: ClusterState, wanted: KubeVersion) -> ClusterState:
    """`state` with every control-plane image newer than kubeadm's `wanted` version set back to
    it (as the planner's drift step does), apiservers answering accordingly."""
    nodes = []
    reset: set[str] = set()
    for n in state.nodes:
        images = tuple((c, _retag(image, wanted)
                        if c in KUBEADM_IMAGES and (v := n.component_version(c)) is not None
                        and v.base > wanted.base else image)
                       for c, image in n.control_plane_images)
        if images != n.control_plane_images:
            reset.add(n.name)
            n = replace(n, control_plane_images=images)
        nodes.append(n)
    apiservers = tuple(replace(a, version=wanted) if a.node in reset and a.version is not None
                       and a.version.base > wanted.base else a for a in state.apiservers)
    return replace(state, nodes=tuple(nodes), apiservers=apiservers)


def _retag(image: str, version: KubeVersion) -> str:
    name, sep, _tag = image.rpartition(":")
    return f"{name}:{version}" if sep and "/" not in _tag else f"{image}:{version}"


def static_pod_drift(state: ClusterState) -> list[Finding]:
    """Static pod images that differ from kubeadm-config's kubernetesVersion.

    Newer than kubeadm-config: the manifest was edited by hand; kubeadm would plan from the
    version it believes in and overwrite the edit (blocking). Older: the node has not had its
    `kubeadm upgrade node` yet (a half-finished upgrade).
    """
    wanted = state.kubeadm_kubernetes_version
    if wanted is None:
        return []
    out = []
    for node in state.control_plane_nodes:
        ahead: list[str] = []
        behind: list[str] = []
        for component in KUBEADM_IMAGES:
            running = node.component_version(component)
            if running is not None and running.base != wanted.base:
                (ahead if running.base > wanted.base else behind).append(
                    f"{component} {running.full}")
        if ahead:
            out.append(Finding(
                "drift.static-pod-image", Severity.BLOCKING, f"node/{node.name}",
                f"{', '.join(ahead)} on node {node.name} but kubeadm-config says the cluster is "
                f"{wanted}: the static pod manifest was edited by hand, so kubeadm plans the "
                f"upgrade from the wrong version",
                f"restore the image to {wanted} (kubehop plan and upgrade do it first, one "
                f"node at a time), then upgrade with kubeadm",
            ))
        if behind:
            out.append(Finding(
                "drift.control-plane-behind", Severity.WARNING, f"node/{node.name}",
                f"{', '.join(behind)} on node {node.name}, behind the cluster's {wanted} in "
                f"kubeadm-config: an upgrade was not finished on this node",
                f"run kubeadm upgrade node on {node.name} (kubehop upgrade resumes it)",
            ))
    return out


def apiserver_drift(state: ClusterState) -> list[Finding]:
    """HA apiservers answering different versions."""
    by_version: dict[str, list[str]] = defaultdict(list)
    for a in state.apiservers:
        if a.version is not None:
            by_version[a.version.full].append(a.node or a.endpoint)
    if len(by_version) < 2:
        return []
    wanted = state.kubeadm_kubernetes_version
    if wanted is not None and any(a.version is not None and a.version.base > wanted.base
                                  for a in state.apiservers):
        ahead = sorted(a.node or a.endpoint for a in state.apiservers
                       if a.version is not None and a.version.base > wanted.base)
        fix = (f"restore the hand-edited kube-apiserver manifest on {', '.join(ahead)} to "
               f"{wanted} (drift.static-pod-image; kubehop plan and upgrade do it first)")
        cause: str | None = "drift.static-pod-image"
    else:
        fix = ("finish the control-plane upgrade: kubeadm upgrade node on the control-plane "
               "nodes behind, one at a time")
        cause = None
    parts = "; ".join(f"{v} on {', '.join(sorted(where))}" for v, where in
                      sorted(by_version.items()))
    return [Finding(
        "drift.apiservers-differ", Severity.WARNING, "cluster",
        f"the apiservers run different versions ({parts}); `kubectl version` shows only the one "
        f"that answered it", fix, cause,
    )]


def package_drift(state: ClusterState) -> list[Finding]:
    """Installed packages versus the running kubelet and the configured repository minor."""
    restart: dict[str, str] = {}
    repo: dict[str, str] = {}
    for n in state.nodes:
        p = n.packages
        if p is None:
            continue
        installed = package_kube_version(p.kubelet)
        if installed is not None and n.kubelet is not None and installed.base != n.kubelet.base:
            restart[n.name] = f"{p.kubelet} installed, {n.kubelet} running"
        minors = [v.minor_version for v in map(package_kube_version,
                                               (p.kubeadm, p.kubelet, p.kubectl)) if v]
        if p.repo_minor is not None and minors and p.repo_minor != max(minors):
            repo[n.name] = f"repository v{p.repo_minor}, packages {max(minors)}"
    return grouped(
        "drift.kubelet-not-restarted", Severity.WARNING, restart,
        lambda nodes, v: f"the kubelet package and the running kubelet differ on {nodes} "
                         f"({v}): the kubelet was not restarted after the package changed",
        lambda nodes, v: f"drain {nodes}, then systemctl daemon-reload && systemctl restart "
                         f"kubelet, then uncordon",
    ) + grouped(
        "drift.repository-minor", Severity.WARNING, repo,
        lambda nodes, v: f"the pkgs.k8s.io repository minor differs from the installed "
                         f"Kubernetes packages on {nodes} ({v})",
        lambda nodes, v: f"point the repository on {nodes} back at the installed minor, or "
                         f"finish upgrading the packages there",
    )
