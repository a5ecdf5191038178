"""The planner's running view of each node, and the node commands of every step kind.

Commands come from `core.node_commands` (package steps) or are built here (kubeadm, systemctl,
sed); they do not depend on the node, so they are built once per (OS family, version) and shared
by every step — a 5,000-node plan renders a handful of command lists, not 50,000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from kubehop.core import node_commands as nc
from kubehop.model.cluster import ClusterState, NodeState, OsFamily
from kubehop.model.errors import VersionError
from kubehop.model.plan import Command
from kubehop.model.versions import KubeVersion, MinorVersion, parse_deb_version

# The static pods `kubeadm upgrade` regenerates whose image tag is the Kubernetes version.
VERSIONED_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
MANIFEST_DIR = "/etc/kubernetes/manifests"


@dataclass(slots=True)
class NodeTrack:
    """What the planner believes about a node as the plan progresses (mutable while building).

    `repo` is None when unknown (then every hop switches the repository: rewriting it is
    harmless); `managed` is the minor of the kubeadm that last upgraded the node.
    """

    name: str
    control_plane: bool
    family: str
    kubelet: KubeVersion | None
    kubelet_pkg: str | None
    kubectl_pkg: str | None
    kubeadm_pkg: str | None
    kubeadm: KubeVersion | None
    managed: MinorVersion
    repo: MinorVersion | None
    images: KubeVersion | None  # control plane: version of its static pods (oldest)
    schedulable: bool
    ready: bool

    def package(self, version: KubeVersion) -> str:
        """The pkgs.k8s.io package version of `version` for this node's OS family."""
        return package_version(version, self.family)


@cache
def package_version(version: KubeVersion, family: str) -> str:
    return nc.package_version(version.plain, family)


def _package_kube_version(text: str | None) -> KubeVersion | None:
    if not text:
        return None
    try:
        return parse_deb_version(text).kube_version()
    except VersionError:
        return None


def track_node(node: NodeState, cluster: KubeVersion, warnings: list[str]) -> NodeTrack:
    """The planner's starting view of `node`; missing package facts become assumptions."""
    pk = node.packages
    family = str(pk.os_family) if pk else str(OsFamily.DEBIAN)
    kubeadm = (pk.kubeadm_binary or _package_kube_version(pk.kubeadm)) if pk else None
    if node.is_control_plane:
        images = [v for c in VERSIONED_COMPONENTS if (v := node.component_version(c))]
        image_version = min(images) if images else None
        # A control plane was last managed by the kubeadm that applied the cluster version.
        managed = min(kubeadm.minor_version, cluster.minor_version) if kubeadm else (
            cluster.minor_version)
    else:
        image_version = None
        if kubeadm is not None:
            managed = kubeadm.minor_version
        else:
            # Unknown: assume its kubeadm kept up with the control plane as far as it could.
            base = (node.kubelet or cluster).minor_version
            managed = max(base, cluster.minor_version - 1)
    repo = None
    if pk and pk.repo_minor is not None and not pk.repo_legacy:
        repo = pk.repo_minor
    return NodeTrack(
        name=node.name, control_plane=node.is_control_plane, family=family,
        kubelet=node.kubelet,
        kubelet_pkg=pk.kubelet if pk else None, kubectl_pkg=pk.kubectl if pk else None,
        kubeadm_pkg=pk.kubeadm if pk else None, kubeadm=kubeadm, managed=managed, repo=repo,
        images=image_version, schedulable=node.schedulable, ready=node.ready)


def package_warnings(state: ClusterState) -> list[str]:
    """One line per kind of missing package facts (not one per node: 5,000 nodes)."""
    unknown = [n.name for n in state.nodes if n.packages is None]
    legacy = [n.name for n in state.nodes if n.packages and n.packages.repo_legacy]
    out = []
    if unknown:
        out.append(f"no package facts for {_names(unknown)} (no SSH inventory?): assuming Debian "
                   f"packages from pkgs.k8s.io and a kubeadm at most one minor behind the control "
                   f"plane; every hop rewrites their repository")
    if legacy:
        out.append(f"{_names(legacy)} use the legacy apt/yum.kubernetes.io repository (shut down "
                   f"2024-03-04): the plan switches them to pkgs.k8s.io")
    return out


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f"node{'s' if len(names) > 1 else ''} {shown}{more}"


# --- commands -------------------------------------------------------------------------------


def _commands(cmds: list[nc.NodeCommand]) -> tuple[Command, ...]:
    return tuple(Command(c.argv, c.stdin, c.sudo) for c in cmds)


@cache
def repo_switch_commands(family: str, minor: MinorVersion) -> tuple[Command, ...]:
    """Rewrite the pkgs.k8s.io repository definition for `minor` (kubernetes-facts §6)."""
    if family in nc.YUM_FAMILIES:
        return _commands([nc.switch_yum_repository(minor)])
    return _commands([nc.switch_apt_repository(minor)])


@cache
def install_commands(family: str, version: KubeVersion,
                     packages: tuple[str, ...]) -> tuple[Command, ...]:
    """apt: update, unhold, install exact versions, hold; yum: install past `exclude=`."""
    pv = package_version(version, family)
    return _commands(nc.upgrade_packages(family, version.minor_version,
                                         dict.fromkeys(packages, pv), switch_repository=False))


@cache
def kubeadm_plan_commands(version: KubeVersion) -> tuple[Command, ...]:
    return (Command(("kubeadm", "upgrade", "plan", str(version))),)


@cache
def kubeadm_apply_commands(version: KubeVersion) -> tuple[Command, ...]:
    return (Command(("kubeadm", "upgrade", "apply", "-y", str(version))),)


KUBEADM_NODE_COMMANDS = (Command(("kubeadm", "upgrade", "node")),)
# The guide: `sudo systemctl daemon-reload && sudo systemctl restart kubelet`.
KUBELET_RESTART_COMMANDS = (Command(("systemctl", "daemon-reload")),
                            Command(("systemctl", "restart", "kubelet")))


def _bre(text: str) -> str:
    """`text` as a literal in a sed basic regular expression delimited by `#`."""
    return re.sub(r"([.\[\]*^$\\#])", r"\\\1", text)


def restore_image_command(component: str, image: str, tag: str) -> Command:
    """`sed -i` the manifest of `component` back from `image` to the same repository at `tag`.

    kubeadm reads the cluster version from `/version`, so a hand-edited image misleads its
    version checks; restoring the manifest before kubeadm runs makes the kubelet restart the
    static pod at the version kubeadm-config records."""
    new_image = image.rsplit(":", 1)[0] + ":" + tag if ":" in image.rsplit("/", 1)[-1] else (
        f"{image}:{tag}")
    replacement = new_image.replace("\\", "\\\\").replace("&", "\\&").replace("#", "\\#")
    script = f"s#{_bre(image)}#{replacement}#"
    return Command(("sed", "-i", script, f"{MANIFEST_DIR}/{component}.yaml"))
