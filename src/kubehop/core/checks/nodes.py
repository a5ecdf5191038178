"""Checks of how the cluster was installed (`install.*`) and of the nodes' Kubernetes packages
(`packages.*`: repositories, holds), from node labels, provider IDs, version suffixes and the
package facts read over SSH."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from kubehop.core.checks.common import grouped, nodes_text
from kubehop.core.node_commands import APT_KEYRING
from kubehop.model.cluster import ClusterState, NodeState, OsFamily
from kubehop.model.findings import Finding, Severity
from kubehop.model.versions import KubeVersion

LEGACY_SHUTDOWN = "2024-03-04"  # apt.kubernetes.io / yum.kubernetes.io shut down
PACKAGES = ("kubeadm", "kubelet", "kubectl")
KEY_WARN_DAYS = 30  # a repository key expiring within this many days is reported


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
        # An apt preferences pin keeps a package as a hold does (`checks_pins`).
        loose = [pkg for pkg in PACKAGES if getattr(p, pkg) and pkg not in p.held
                 and pkg not in p.pinned]
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
    return out + source_findings(state) + manager_findings(state)


def manager_findings(state: ClusterState) -> list[Finding]:
    """Package managers kubehop drives differently, said once (`node.dnf5`, `node.versionlock`):
    no action needed, but an operator following the guide by hand must know."""
    dnf5 = {n.name: "" for n in state.nodes if n.packages and n.packages.dnf5}
    locked = {n.name: " ".join(n.packages.locked) for n in state.nodes
              if n.packages and n.packages.locked}
    out = grouped(
        "node.dnf5", Severity.INFO, dnf5,
        lambda nodes, _d: f"{nodes} run dnf 5, which has no --disableexcludes",
        lambda nodes, _d: "nothing to do: kubehop installs there with "
                          "--setopt=disable_excludes=kubernetes (the guide's DNF5 form)",
    )
    out += grouped(
        "node.versionlock", Severity.INFO, locked,
        lambda nodes, d: f"{d.replace(' ', ', ')} on {nodes} "
                         f"{'is' if ' ' not in d else 'are'} under a dnf versionlock, which hides "
                         f"every other version",
        lambda nodes, _d: "nothing to do: kubehop deletes the versionlock for the install and "
                          "adds it back at the new version",
    )
    return out


def source_findings(state: ClusterState) -> list[Finding]:
    """Nodes naming the Kubernetes repository more than once (`node.repo-*`).

    Two files for different minors (a `kubernetes-1.29.list` copied beside `kubernetes.list`)
    make both minors installable while kubehop edits one; one repository with two `signed-by`
    keyrings makes apt refuse every source ("E: Conflicting values set for option Signed-By",
    apt-pkg/deb/debmetaindex.cc)."""
    conflicts: dict[str, str] = {}
    copies: dict[str, str] = {}
    for n in state.nodes:
        p = n.packages
        if p is None or len(p.repo_sources) < 2:
            continue
        keyrings: dict[str, set[str | None]] = {}
        for src in p.repo_sources:
            keyrings.setdefault(src.uri.rstrip("/"), set()).add(src.signed_by)
        clash = next((uri for uri, keys in keyrings.items() if len(keys) > 1), None)
        if clash is not None:
            keys = sorted(k or "none" for k in keyrings[clash])
            conflicts[n.name] = f"{clash}/ ({' and '.join(keys)})"
        files = list(dict.fromkeys(src.file for src in p.repo_sources))
        if len(files) > 1:
            copies[n.name] = "; ".join(
                f"{f} ({', '.join(_minor_of(s.uri) for s in p.repo_sources if s.file == f)})"
                for f in files) + f"|{files[0]}"
    out = grouped(
        "node.repo-signed-by-conflict", Severity.BLOCKING, conflicts,
        lambda nodes, d: f"{nodes} name the repository {d} with different signed-by "
                         f"keyrings: apt refuses every source there (\"Conflicting values set "
                         f"for option Signed-By\"), so no package can be installed",
        lambda nodes, d: f"keep one source line for {d.split(' ')[0]} on {nodes} (or the same "
                         f"signed-by in each), then run apt-get update",
    )
    out += grouped(
        "node.repo-duplicate", Severity.BLOCKING, copies,
        lambda nodes, d: f"{nodes} name the Kubernetes repository in more than one file: "
                         f"{d.split('|')[0]}; kubehop edits only the first, and the others "
                         f"keep their minors installable",
        lambda nodes, d: f"remove the Kubernetes source from every file but "
                         f"{d.split('|')[1]} on {nodes}",
    )
    return out


def vendor_key_findings(state: ClusterState) -> list[Finding]:
    """Other vendors' apt sources whose keyring is missing or expired (`node.apt-source-key`):
    apt fails them (NO_PUBKEY, EXPKEYSIG), so a plain `apt-get update` exits 100 there. kubehop
    refreshes only the Kubernetes source, so its upgrade does not depend on them; said so the
    operator is not surprised by apt on that node."""
    broken: dict[str, str] = {}
    for n in state.nodes:
        p = n.packages
        if p is not None and p.vendor_keys:
            broken[n.name] = "; ".join(
                f"{uri} ({file}), its key {keyring} "
                + (f"expired on {expires}" if expires[:1].isdigit() else
                   "expired" if expires else "missing")
                for file, uri, keyring, expires in p.vendor_keys)
    return grouped(
        "node.apt-source-key", Severity.WARNING, broken,
        lambda nodes, what: f"another apt source on {nodes} fails: {what}; a plain apt-get "
                            f"update there exits 100 (kubehop refreshes only the Kubernetes "
                            f"source, so the upgrade does not depend on it)",
        lambda nodes, what: "renew that vendor's key as its documentation says, or remove the "
                            "source file; nothing to do for the upgrade",
    )


def key_findings(state: ClusterState, today: date) -> list[Finding]:
    """The apt keyring the Kubernetes source names, or on rpm nodes the Kubernetes key imported
    into rpm: missing, expired, or expiring within `KEY_WARN_DAYS` (`node.repo-key-*`, with the
    date). pkgs.k8s.io keys expire and are re-issued: the v1.24–v1.27 repositories' key expired
    on 2024-11-02 (kubernetes/release#3818, kubernetes/kubernetes#128609); apt then refuses the
    repository (EXPKEYSIG), dnf its packages ("GPG check FAILED"), and dnf does not replace an
    imported key whose expiry was extended (kubernetes/release#3840)."""
    missing: dict[str, str] = {}
    expired: dict[str, str] = {}
    expiring: dict[str, str] = {}
    for n in state.nodes:
        p = n.packages
        if p is None or p.key_found is None or p.repo_legacy or not p.repo_sources:
            continue
        # rpm: the key imported into rpm's database, named by its gpg-pubkey package.
        keyring = (f"rpm:{', '.join(p.rpm_keys) or p.key_url or 'gpgkey'}"
                   if p.os_family is OsFamily.RHEL else p.keyring or APT_KEYRING)
        if not p.key_found:
            missing[n.name] = keyring
        elif p.key_expired or (p.key_expires and p.key_expires <= today.isoformat()):
            expired[n.name] = f"{keyring}|{p.key_expires}"
        elif p.key_expires and date.fromisoformat(p.key_expires) - today <= timedelta(
                days=KEY_WARN_DAYS):
            expiring[n.name] = f"{keyring}|{p.key_expires}"
    rpm = {n: d for n, d in missing.items() if d.startswith("rpm:")}
    out = grouped(
        "node.repo-key-missing", Severity.WARNING, {n: d for n, d in missing.items()
                                                    if n not in rpm},
        lambda nodes, k: f"the keyring {k} that the Kubernetes source names is missing on "
                         f"{nodes}: apt refuses the repository (NO_PUBKEY)",
        lambda nodes, k: f"kubehop plan adds a step that fetches the minor's Release.key into "
                         f"{k}; by hand: {_key_fix(k)}",
    )
    out += grouped(
        "node.repo-key-missing", Severity.WARNING, rpm,
        lambda nodes, _k: f"rpm has no Kubernetes repository key imported on {nodes}: dnf "
                          f"must import it from the repository's gpgkey= before it installs "
                          f"any Kubernetes package",
        lambda nodes, _k: f"kubehop plan adds a step that imports the minor's repomd.xml.key; "
                          f"by hand: {_rpm_key_fix('')}",
    )
    out += grouped(
        "node.repo-key-expired", Severity.WARNING, expired,
        lambda nodes, d: f"the repository key {_key_place(d)} on {nodes} expired on "
                         f"{d.split('|')[1]}: {_refusal(d)}",
        lambda nodes, d: (f"kubehop plan adds a step that removes the expired key and imports "
                          f"the minor's re-issued repomd.xml.key (dnf does not replace a key "
                          f"whose expiry was extended, kubernetes/release#3840); by hand: "
                          f"{_rpm_key_fix(d.split('|')[0])}" if d.startswith("rpm:") else
                          f"kubehop plan adds a step that fetches the minor's re-issued "
                          f"Release.key; by hand: {_key_fix(d.split('|')[0])}"),
    )
    out += grouped(
        "node.repo-key-expiring", Severity.WARNING, expiring,
        lambda nodes, d: f"the repository key {_key_place(d)} on {nodes} expires on "
                         f"{d.split('|')[1]}; {_refusal(d)} after that",
        lambda nodes, d: "replace it with the re-issued key before then: "
                         + (_rpm_key_fix(d.split('|')[0]) if d.startswith("rpm:")
                            else _key_fix(d.split('|')[0])),
    )
    return out


def _key_place(detail: str) -> str:
    """Where the key lives: `in KEYRING` (apt) or `imported into rpm (gpg-pubkey-…)`."""
    where = detail.split("|")[0]
    return f"imported into rpm ({where[4:]})" if where.startswith("rpm:") else f"in {where}"


def _refusal(detail: str) -> str:
    """What the package manager does with a repository signed by a dead key."""
    return ("dnf refuses the repository's packages (GPG check FAILED)"
            if detail.startswith("rpm:") else "apt refuses the repository (EXPKEYSIG)")


def _rpm_key_fix(where: str) -> str:
    """The upstream issue's remedy (kubernetes/release#3840): erase the old gpg-pubkey, import
    the minor's key."""
    old = [k for k in where.removeprefix("rpm:").split(", ") if k.startswith("gpg-pubkey-")]
    erase = "".join(f"sudo rpm -e {k}; " for k in old)
    return (f"{erase}sudo rpm --import "
            f"https://pkgs.k8s.io/core:/stable:/v1.NN/rpm/repodata/repomd.xml.key")


def trial_findings(state: ClusterState, target: KubeVersion | None) -> list[Finding]:
    """What the trial refresh of the target minor's repository found (`check --to`), per node,
    before anything changes: a refresh that fails (`node.repo-trial-failed`: the key, the
    network, a proxy), or a repository without the wanted patch (`node.repo-missing-patch`,
    with what it offers: a mirror not yet synced)."""
    failed: dict[str, str] = {}
    missing: dict[str, str] = {}
    for n in state.nodes:
        p = n.packages
        trial = p.trial if p else None
        if p is None or trial is None:
            continue
        if not trial.ok:
            keyed = any(w in trial.error for w in ("NO_PUBKEY", "EXPKEYSIG"))
            if not (keyed and (p.key_found is False or p.key_expired)):  # else: key step
                tool = "dnf makecache" if p.os_family is OsFamily.RHEL else "apt-get update"
                failed[n.name] = f"{trial.minor}|{tool}|{trial.error}"
            continue
        if target is None or trial.minor != target.minor_version:
            continue
        if not any(v.split(":", 1)[-1].startswith(f"{target.plain}-")
                   for v in trial.offered):
            offered = ", ".join(trial.offered[:5]) + (" …" if len(trial.offered) > 5 else "")
            missing[n.name] = f"{trial.minor}|{target.plain}|{offered or 'nothing'}"
    out = grouped(
        "node.repo-trial-failed", Severity.BLOCKING, failed,
        lambda nodes, d: f"a trial refresh of the Kubernetes {d.split('|')[0]} repository "
                         f"failed on {nodes}: {d.split('|', 2)[2]}",
        lambda nodes, d: f"make the repository reachable from {nodes} with its key (try: "
                         f"{d.split('|')[1]} there), then check again",
    )
    out += grouped(
        "node.repo-missing-patch", Severity.BLOCKING, missing,
        lambda nodes, d: f"the Kubernetes {d.split('|')[0]} repository seen from {nodes} does "
                         f"not offer kubeadm {d.split('|')[1]}; it offers "
                         f"{d.split('|')[2]}",
        lambda nodes, d: f"upgrade to a patch the repository offers (--to), or wait until "
                         f"the mirror that {nodes} use has it",
    )
    return out


def _key_fix(keyring: str) -> str:
    return (f"curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.NN/deb/Release.key | "
            f"sudo gpg --batch --yes --dearmor -o {keyring}")


def _minor_of(uri: str) -> str:
    """`v1.29` of a pkgs.k8s.io URI, `legacy` for the retired repositories, else the URI."""
    m = re.search(r"pkgs\.k8s\.io/core:/stable:/(v\d+\.\d+)/", uri)
    if m:
        return m.group(1)
    return "legacy" if "kubernetes.io" in uri or "cloud.google.com" in uri else uri


def repository_hint(family: str) -> str:
    """Where the pkgs.k8s.io repository goes, per package format (upstream install guide)."""
    if family == "rpm":
        return ("/etc/yum.repos.d/kubernetes.repo with "
                "baseurl=https://pkgs.k8s.io/core:/stable:/v1.NN/rpm/")
    return ("/etc/apt/sources.list.d/kubernetes.list with deb [signed-by=/etc/apt/keyrings/"
            "kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.NN/deb/ /")
