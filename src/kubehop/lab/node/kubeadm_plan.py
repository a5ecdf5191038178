"""`kubeadm upgrade plan`: kubeadm's GetAvailableUpgrades and its text printers.

The lab's release data stands in for dl.k8s.io: label `stable` resolves to the newest patch of
kubeadm's own minor (kubeadm falls back to `stable-<its minor>` when the remote stable is a
newer minor), `stable-1.NN` to the newest patch of 1.NN; `kubeadm upgrade plan vX` resolves
every label to vX (kubeadm's OfflineVersionGetter, oddities included). Output follows kubeadm's
printers: one `COMPONENT CURRENT TARGET` layout up to 1.29 (kubelets counted per version, every
control-plane component at the cluster version), the per-node `COMPONENT NODE CURRENT TARGET`
layout from 1.30 (kubernetes/kubernetes#123578), where the cluster version is also the newest
kube-apiserver pod instead of `/version`. Like kubeadm, `plan` checks no version policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubehop.lab.node.kubeadm_view import ClusterView, kube, tabwrite
from kubehop.model.releases import ReleaseData
from kubehop.model.versions import KubeVersion, MinorVersion

CONFIG_TABLE = """
The table below shows the current state of component configs as understood by this version of kubeadm.
Configs that have a "yes" mark in the "MANUAL UPGRADE REQUIRED" column require manual config upgrade or
resetting to kubeadm defaults before a successful upgrade can be performed. The version to manually
upgrade to is denoted in the "PREFERRED VERSION" column.

API GROUP                 CURRENT VERSION   PREFERRED VERSION   MANUAL UPGRADE REQUIRED
kubeproxy.config.k8s.io   v1alpha1          v1alpha1            no
kubelet.config.k8s.io     v1beta1           v1beta1             no
_____________________________________________________________________

"""  # noqa: E501
SEPARATOR = "_____________________________________________________________________\n\n"


@dataclass
class Upgrade:
    description: str
    before: str  # cluster version as kubeadm printed it
    after: str
    kubeadm_before: str
    kubeadm_after: str
    dns_before: str
    dns_after: str
    etcd_after: str
    kubelets: dict[str, list[str]] = field(default_factory=dict)  # version → nodes

    def can_upgrade_kubelets(self) -> bool:
        if len(self.kubelets) > 1:
            return True
        return bool(self.kubelets) and self.after not in self.kubelets


def _latest(data: ReleaseData, minor: MinorVersion) -> KubeVersion | None:
    return data.latest_patch(minor)


def resolve_label(data: ReleaseData, label: str, kubeadm: KubeVersion,
                  offline: KubeVersion | None) -> KubeVersion | None:
    """What `stable` / `stable-1.NN` resolves to for this kubeadm (None: not found)."""
    if offline is not None:
        return offline
    if label == "stable":
        newest = next((r.minor for r in reversed(data.releases) if r.patches), None)
        if newest is None:
            return None
        if newest > kubeadm.minor_version:  # kubeadm's validateStableLabelVersion fallback
            newest = kubeadm.minor_version
        return _latest(data, newest)
    major, _, minor = label.removeprefix("stable-").partition(".")
    return _latest(data, MinorVersion(int(major), int(minor)))


def plan_text(view: ClusterView, data: ReleaseData, kubeadm: KubeVersion,
              offline: KubeVersion | None) -> str:
    """Everything after the preflight lines of `kubeadm upgrade plan`."""
    per_node = kubeadm.minor_version >= MinorVersion(1, 30)
    lines = ["[upgrade] Fetching available versions to upgrade to"]
    if per_node:
        apis = view.component_versions("kube-apiserver")
        parsed = [v for v in (kube(t) for t in apis) if v is not None]
        cluster = max(parsed) if parsed else kube(view.cluster_version())
        cluster_str = cluster.plain if cluster else "0.0.0"
    else:
        cluster_str = view.cluster_version()
        cluster = kube(cluster_str)
    if cluster is None:
        raise ValueError(f"couldn't parse cluster version {cluster_str}")
    lines.append(f"[upgrade/versions] Cluster version: {cluster_str}")
    lines.append(f"[upgrade/versions] kubeadm version: {kubeadm}")
    stable = resolve_label(data, "stable", kubeadm, offline) or kubeadm
    lines.append(f"[upgrade/versions] Target version: {stable}")
    kubelets: dict[str, list[str]] = {}
    for node, version in view.kubelet_versions().items():
        kubelets.setdefault(version, []).append(node)
    comps = data.kubeadm_components(kubeadm)
    dns_after = comps.coredns if comps else view.dns_version()

    def make(description: str, after: KubeVersion, kubeadm_after: str) -> Upgrade:
        etcd = data.kubeadm_components(after)
        return Upgrade(description, cluster_str, str(after), str(kubeadm), kubeadm_after,
                       view.dns_version(), dns_after, etcd.etcd if etcd else "N/A", kubelets)

    upgrades: list[Upgrade] = []
    can_minor = cluster < stable
    if stable >= cluster:
        branch = f"{cluster.major}.{cluster.minor}"
        patch = resolve_label(data, f"stable-{branch}", kubeadm, offline)
        if patch is not None:
            description = f"version in the v{branch} series"
            lines.append(f"[upgrade/versions] Latest {description}: {patch}")
            can_minor = patch < stable
            if cluster < patch:
                upgrades.append(make(description, patch,
                                     str(kubeadm) if kubeadm >= patch else str(patch)))
    if can_minor:
        upgrades.append(make("stable version", stable, str(stable)))
    text = "\n".join(lines) + "\n\n"
    if not upgrades:
        return text
    for up in upgrades:
        text += _per_node(up, view) if per_node else _classic(up, view)
    return text + CONFIG_TABLE


def _classic(up: Upgrade, view: ClusterView) -> str:
    """plan.go printUpgradePlan, kubeadm 1.20-1.29."""
    text = ""
    if up.can_upgrade_kubelets():
        rows = [["COMPONENT", "CURRENT", "TARGET"]]
        for i, version in enumerate(sorted(up.kubelets)):
            rows.append(["kubelet" if i == 0 else "", f"{len(up.kubelets[version])} x {version}",
                         up.after])
        text += ("Components that must be upgraded manually after you have upgraded the control "
                 "plane with 'kubeadm upgrade apply':\n" + tabwrite(rows))
    text += f"\nUpgrade to the latest {up.description}:\n\n"
    rows = [["COMPONENT", "CURRENT", "TARGET"]]
    for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
        rows.append([comp, up.before, up.after])
    rows.append(["CoreDNS", up.dns_before, up.dns_after])
    etcd = sorted(view.component_versions("etcd"))
    rows.append(["etcd", etcd[-1] if etcd else "", up.etcd_after])
    text += tabwrite(rows) + "\n"
    return text + _apply_hint(up)


def _per_node(up: Upgrade, view: ClusterView) -> str:
    """plan.go printAvailableUpgrade, kubeadm 1.30+."""
    rows = [["COMPONENT", "NODE", "CURRENT", "TARGET"]]
    if up.can_upgrade_kubelets():
        for version in sorted(up.kubelets):
            rows += [["kubelet", node, version, up.after] for node in up.kubelets[version]]
    text = ("Components that must be upgraded manually after you have upgraded the control plane "
            "with 'kubeadm upgrade apply':\n" + tabwrite(rows))
    text += f"\nUpgrade to the latest {up.description}:\n\n"
    rows = [["COMPONENT", "NODE", "CURRENT", "TARGET"]]
    for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        versions = view.component_versions(comp)
        for version in sorted(versions):
            rows += [[comp, node, version, up.after] for node in versions[version]]
    rows.append(["kube-proxy", "", up.before, up.after])
    rows.append(["CoreDNS", "", up.dns_before, up.dns_after])
    etcd = view.component_versions("etcd")
    for version in sorted(etcd):
        rows += [["etcd", node, version, up.etcd_after] for node in etcd[version]]
    return text + tabwrite(rows) + "\n" + _apply_hint(up)


def _apply_hint(up: Upgrade) -> str:
    text = ("You can now apply the upgrade by executing the following command:\n\n"
            f"\tkubeadm upgrade apply {up.after}\n\n")
    if up.kubeadm_before != up.kubeadm_after:
        text += ("Note: Before you can perform this upgrade, you have to update kubeadm to "
                 f"{up.after}.\n\n")
    return text + SEPARATOR
