"""Checks of how the cluster was installed (`install.*`) and of the nodes' Kubernetes packages
(`packages.*`: repositories, holds), from node labels, provider IDs, version suffixes and the
package facts read over SSH."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubehop.core.checks_common import grouped, nodes_text
from kubehop.model.cluster import ClusterState, NodeState, OsFamily
from kubehop.model.findings import Finding, Severity
from kubehop.model.versions import KubeVersion

LEGACY_SHUTDOWN = "2024-03-04"  # apt.kubernetes.io / yum.kubernetes.io shut down
PACKAGES = ("kubeadm", "kubelet", "kubectl")


@dataclass(frozen=True, slots=True)
class Distribution:
    """A Kubernetes distribution other than kubeadm, and the tool that upgrades it."""

    name: str
    tool: str
    matches: Callable[[NodeState, KubeVersion | None], bool]


def _label_prefix(*prefixes: str) -> Callable[[NodeState, KubeVersion | None], bool]:
    return lambda n, _v: any(k.startswith(prefixes) for k, _ in n.labels)


def _suffix(*words: str) -> Callable[[NodeState, KubeVersion | None], bool]:
    def match(n: NodeState, v: KubeVersion | None) -> bool:
        text = " ".join(filter(None, (v.vendor, v.build) if v else ()))
        return any(w in text for w in words)
    return match


def _any(*tests: Callable[[NodeState, KubeVersion | None], bool]
         ) -> Callable[[NodeState, KubeVersion | None], bool]:
    return lambda n, v: any(t(n, v) for t in tests)


# Recognised from kubelet version suffixes (`+k3s1`, `-eks-8cb36c9`), node labels the
# distribution sets, OS images and provider IDs.
DISTRIBUTIONS: tuple[Distribution, ...] = (
    Distribution("k3s", "the k3s install script (or Rancher's system-upgrade-controller)",
                 _any(_suffix("k3s"), _label_prefix("k3s.io/"),
                      lambda n, _v: n.label("node.kubernetes.io/instance-type") == "k3s")),
    Distribution("RKE2", "the RKE2 install script (or Rancher's system-upgrade-controller)",
                 _any(_suffix("rke2"), _label_prefix("rke2.io/"))),
    Distribution("Amazon EKS", "EKS (eksctl upgrade cluster, the AWS console or your "
                 "infrastructure code)", _any(_suffix("eks"), _label_prefix("eks.amazonaws.com/"))),
    Distribution("Google GKE", "GKE (gcloud container clusters upgrade or the console)",
                 _any(_suffix("gke"), _label_prefix("cloud.google.com/gke-"))),
    Distribution("Azure AKS", "AKS (az aks upgrade or the Azure portal)",
                 _label_prefix("kubernetes.azure.com/")),
    Distribution("kOps", "kOps (kops upgrade cluster, then kops rolling-update cluster)",
                 _label_prefix("kops.k8s.io/")),
    Distribution("OpenShift", "the OpenShift cluster version operator (oc adm upgrade)",
                 _label_prefix("node.openshift.io/")),
    Distribution("Talos Linux", "talosctl upgrade-k8s",
                 lambda n, _v: n.os_image.startswith("Talos")),
    Distribution("MicroK8s", "snap refresh microk8s --channel=1.NN/stable",
                 _label_prefix("microk8s.io/")),
    Distribution("minikube", "minikube start --kubernetes-version=vX.Y.Z",
                 _label_prefix("minikube.k8s.io/")),
    Distribution("kind", "kind (recreate the cluster from a newer node image)",
                 lambda n, _v: (n.provider_id or "").startswith("kind://")),
    Distribution("DigitalOcean Kubernetes", "doctl kubernetes cluster upgrade",
                 _label_prefix("doks.digitalocean.com/")),
    Distribution("Linode LKE", "linode-cli lke cluster-update",
                 _label_prefix("lke.linode.com/")),
)


def recognise_distributions(state: ClusterState) -> dict[str, tuple[Distribution, list[str]]]:
    """Distribution name → (distribution, nodes it was recognised on)."""
    found: dict[str, tuple[Distribution, list[str]]] = {}
    cluster_versions = [a.version for a in state.apiservers if a.version is not None]
    for node in state.nodes:
        for d in DISTRIBUTIONS:
            if d.matches(node, node.kubelet):
                found.setdefault(d.name, (d, []))[1].append(node.name)
    for v in cluster_versions:  # a managed control plane says so in its own /version
        for d in DISTRIBUTIONS:
            if d.matches(NodeState(name=""), v):
                found.setdefault(d.name, (d, []))
    return found


def install_findings(state: ClusterState) -> list[Finding]:
    """Clusters kubehop must not upgrade: another distribution, or no kubeadm at all."""
    out = []
    found = recognise_distributions(state)
    for name, (d, nodes) in found.items():
        where = f" (recognised on {nodes_text(nodes)})" if nodes else ""
        out.append(Finding(
            "install.not-kubeadm", Severity.BLOCKING, "cluster",
            f"this cluster runs {name}{where}; kubehop upgrades kubeadm clusters only",
            f"upgrade it with the tool that installed it: {d.tool}",
        ))
    if not found and state.kubeadm_config_missing:
        out.append(Finding(
            "install.no-kubeadm-config", Severity.BLOCKING, "configmap/kube-system/kubeadm-config",
            "kube-system/kubeadm-config does not exist: the cluster was not set up by kubeadm "
            "(or the ConfigMap was deleted), so kubeadm cannot upgrade it",
            "upgrade it with the tool that installed it, or restore kubeadm-config "
            "(kubeadm init phase upload-config kubeadm --config FILE)",
        ))
    return out


def package_findings(state: ClusterState) -> list[Finding]:
    """Legacy or missing repositories and unheld packages, per node (grouped)."""
    if not state.nodes_observed:
        return [Finding(
            "packages.not-observed", Severity.INFO, "nodes",
            "no SSH inventory: package versions, repositories and holds on the nodes were not "
            "checked", "pass --ssh-inventory FILE (or set KUBEHOP_SSH_INVENTORY)",
        )]
    out = [Finding(
        "packages.unreadable", Severity.WARNING, f"node/{node}",
        f"could not read the package facts of node {node}: {why}",
        f"check SSH access to {node} (the inventory entry, host key, user and key)",
    ) for node, why in state.node_errors]
    legacy: dict[str, str] = {}
    missing: dict[str, str] = {}
    unheld: dict[str, str] = {}
    for n in state.nodes:
        p = n.packages
        if p is None:
            continue
        family = "rpm" if p.os_family is OsFamily.RHEL else "deb"
        if p.repo_legacy:
            legacy[n.name] = family
        elif p.repo_minor is None:
            missing[n.name] = family
        loose = [pkg for pkg in PACKAGES if getattr(p, pkg) and pkg not in p.held]
        if loose:
            unheld[n.name] = f"{family}:{' '.join(loose)}"
    out += grouped(
        "packages.legacy-repository", Severity.BLOCKING, legacy,
        lambda nodes, _f: f"{nodes} install Kubernetes packages from the legacy "
                          f"apt.kubernetes.io/yum.kubernetes.io repository, shut down on "
                          f"{LEGACY_SHUTDOWN}: no newer package can be installed from it",
        lambda nodes, f: f"switch {nodes} to pkgs.k8s.io: {repository_hint(f)}",
    )
    out += grouped(
        "packages.no-repository", Severity.WARNING, missing,
        lambda nodes, _f: f"no pkgs.k8s.io repository is configured on {nodes}",
        lambda nodes, f: f"add the repository of the installed minor on {nodes}: "
                         f"{repository_hint(f)}",
    )
    out += grouped(
        "packages.not-held", Severity.WARNING, unheld,
        lambda nodes, d: f"{d.split(':')[1].replace(' ', ', ')} on {nodes} "
                         f"{'is' if ' ' not in d else 'are'} not held: a routine package "
                         f"upgrade may change them outside of a planned upgrade",
        lambda nodes, d: ("add exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni to "
                          "/etc/yum.repos.d/kubernetes.repo" if d.startswith("rpm")
                          else f"apt-mark hold {d.split(':')[1]}") + f" on {nodes}",
    )
    return out


def repository_hint(family: str) -> str:
    """Where the pkgs.k8s.io repository goes, per package format (upstream install guide)."""
    if family == "rpm":
        return ("/etc/yum.repos.d/kubernetes.repo with "
                "baseurl=https://pkgs.k8s.io/core:/stable:/v1.NN/rpm/")
    return ("/etc/apt/sources.list.d/kubernetes.list with deb [signed-by=/etc/apt/keyrings/"
            "kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.NN/deb/ /")
