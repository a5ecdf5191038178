"""The planner's running view of each node, and the node commands of every step kind.

Commands come from `core.node_commands` (package steps) or are built here (kubeadm, systemctl,
sed); they do not depend on the node, so they are built once per (OS family, version) and shared
by every step — a 5,000-node plan renders a handful of command lists, not 50,000.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import cache
from operator import attrgetter
from typing import Any, TypeVar

from kubehop.core import apt_preferences as ap
from kubehop.core import node_commands as nc
from kubehop.model.cluster import ClusterState, NodePackages, NodeState, OsFamily
from kubehop.model.errors import VersionError
from kubehop.model.plan import Command
from kubehop.model.versions import KubeVersion, MinorVersion, parse_deb_version

# The static pods `kubeadm upgrade` regenerates whose image tag is the Kubernetes version.
VERSIONED_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
MANIFEST_DIR = "/etc/kubernetes/manifests"
_V = TypeVar("_V")


@dataclass(slots=True)
class NodeTrack:
    """What the planner believes about a node as the plan progresses (mutable while building).

    `repo` is None when unknown (then every hop switches the repository: rewriting it is
    harmless); `managed` is the minor of the kubeadm that last upgraded the node. `family` is
    how the node installs packages (OS family, source file, keyring, dnf5, versionlocks);
    package versions are build globs (`1.29.15-*`: any build of that patch).
    """

    name: str
    control_plane: bool
    family: nc.Packaging
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
        """The package version glob of `version` (`1.29.15-*`)."""
        return package_version(version, self.family)


# Everything the planner tracks about a node but its name: two nodes in the same state get the
# same steps (up to their names) from the same node sequence.
TRACK_STATE = ("control_plane", "family", "kubelet", "kubelet_pkg", "kubectl_pkg", "kubeadm_pkg",
               "kubeadm", "managed", "repo", "images", "schedulable", "ready")
TrackState = tuple[Any, ...]


def set_track_state(t: NodeTrack, state: TrackState) -> None:
    (t.control_plane, t.family, t.kubelet, t.kubelet_pkg, t.kubectl_pkg, t.kubeadm_pkg,
     t.kubeadm, t.managed, t.repo, t.images, t.schedulable, t.ready) = state


_IDENTITY: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    # Every field (KubeVersion's equality ignores `original`, `vendor`, ...: not interchangeable).
    KubeVersion: attrgetter(*(f.name for f in fields(KubeVersion))),
    MinorVersion: attrgetter(*(f.name for f in fields(MinorVersion))),
}


class ValuePool:
    """One object per value (versions, strings): nodes in equal states then hold identical
    objects, which the plan builder and the simulator compare by `id` (hashing a version runs
    Python code). The values are immutable: a pooled one stands for any equal one."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[object, object]] = {}  # id → (object, pooled; pinned)
        self._pooled: dict[tuple[object, ...], object] = {}
        self._tuples: dict[tuple[int, ...], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}

    def share_all(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """`share` of each value (one look-up when the same objects came before)."""
        ids = tuple(map(id, values))
        hit = self._tuples.get(ids)
        if hit is None:
            hit = self._tuples[ids] = (values, tuple(map(self.share, values)))  # (pinned)
        return hit[1]

    def share(self, value: _V) -> _V:
        hit = self._seen.get(id(value))
        if hit is None:
            kind = type(value)
            identity = _IDENTITY.get(kind)
            key = (kind, identity(value) if identity else value)
            hit = self._seen[id(value)] = (value, self._pooled.setdefault(key, value))
        return hit[1]  # type: ignore[return-value]


_MINORS: dict[tuple[int, int], MinorVersion] = {}
_FAMILIES: dict[OsFamily, str] = {}
_PACKAGING: dict[tuple[object, ...], nc.Packaging] = {}


def family_name(family: OsFamily) -> str:
    """`str(family)`, one object per family."""
    name = _FAMILIES.get(family)
    if name is None:
        name = _FAMILIES[family] = str(family)
    return name


def shared_minor(minor: MinorVersion) -> MinorVersion:
    """One MinorVersion object per minor (keyed by ints: hashing a version runs Python code)."""
    return _MINORS.setdefault((minor.major, minor.minor), minor)


def minor_of(version: KubeVersion) -> MinorVersion:
    """`version.minor_version`, shared (see `shared_minor`)."""
    minor = _MINORS.get((version.major, version.minor))
    if minor is None:
        minor = _MINORS[(version.major, version.minor)] = version.minor_version
    return minor


@cache
def package_version(version: KubeVersion, family: nc.Packaging | str) -> str:
    """Any build of `version` (`1.29.15-*`): plans never name a build (a rebuild changes it)."""
    return nc.package_glob(version.plain)


def packaging(pk: NodePackages | None) -> nc.Packaging:
    """How the node installs packages, from its facts; one object per distinct layout."""
    if pk is None:
        return nc.DEBIAN
    family = family_name(pk.os_family)
    # A missing or expired keyring: the repository switch fetches the key (kubernetes/release#3818).
    refresh = pk.key_found is False or pk.key_expired
    rpm_keys = pk.rpm_keys if refresh else ()  # rpm: the old keys the switch erases
    # A node pinning with apt preferences keeps its pin (rewritten per minor), not holds.
    pins = tuple(ap.managed_pins(pk.pins)) if pk.os_family is OsFamily.DEBIAN else ()
    other, held = (pk.pins_other, pk.held) if pins else ("", ())
    key = (family, pk.repo_file, pk.keyring, pk.dnf5, pk.locked, refresh, pins, other, held,
           rpm_keys)
    found = _PACKAGING.get(key)
    if found is None:
        found = _PACKAGING[key] = nc.Packaging(family, pk.repo_file, pk.keyring, pk.dnf5,
                                               pk.locked, refresh, pins, other, held,
                                               rpm_keys)
    return found


def pin_state(t: NodeTrack, moved: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Every pinned package's version glob once `moved` (package → glob) is installed on a
    node pinning with apt preferences (empty for other nodes): its pin file's next content."""
    if not t.family.pins:
        return ()
    now = {"kubeadm": t.kubeadm_pkg, "kubelet": t.kubelet_pkg, "kubectl": t.kubectl_pkg}
    now.update(moved)
    return tuple((n, v) for n, v in now.items() if v)


def _package_kube_version(text: str | None) -> KubeVersion | None:
    if not text:
        return None
    try:
        return parse_deb_version(text).kube_version()
    except VersionError:
        return None


def track_node(node: NodeState, cluster: KubeVersion, warnings: list[str],
               pool: ValuePool | None = None) -> NodeTrack:
    """The planner's starting view of `node`; missing package facts become assumptions. With
    a `pool`, equal values of different nodes become one object (see `ValuePool`)."""
    pk = node.packages
    family = packaging(pk)
    kubeadm = (pk.kubeadm_binary or _package_kube_version(pk.kubeadm)) if pk else None
    if node.is_control_plane:
        images = [v for c in VERSIONED_COMPONENTS if (v := node.component_version(c))]
        image_version = min(images) if images else None
        # A control plane was last managed by the kubeadm that applied the cluster version.
        managed = min(minor_of(kubeadm), minor_of(cluster)) if kubeadm else minor_of(cluster)
    else:
        image_version = None
        if kubeadm is not None:
            managed = minor_of(kubeadm)
        else:
            # Unknown: assume its kubeadm kept up with the control plane as far as it could.
            base = minor_of(node.kubelet or cluster)
            managed = max(base, shared_minor(minor_of(cluster) - 1))
    repo = None
    if pk and pk.repo_minor is not None and not pk.repo_legacy:
        repo = shared_minor(pk.repo_minor)
    t = NodeTrack(
        name=node.name, control_plane=node.is_control_plane, family=family,
        kubelet=node.kubelet,
        kubelet_pkg=nc.glob_of(pk.kubelet) if pk else None,
        kubectl_pkg=nc.glob_of(pk.kubectl) if pk else None,
        kubeadm_pkg=nc.glob_of(pk.kubeadm) if pk else None, kubeadm=kubeadm, managed=managed,
        repo=repo,
        images=image_version, schedulable=node.schedulable, ready=node.ready)
    if pool is not None:  # (managed is shared already)
        (t.family, t.kubelet, t.kubeadm, t.kubelet_pkg, t.kubectl_pkg, t.kubeadm_pkg, t.images,
         t.repo) = pool.share_all((t.family, t.kubelet, t.kubeadm, t.kubelet_pkg, t.kubectl_pkg,
                                   t.kubeadm_pkg, t.images, t.repo))
    return t


def package_warnings(state: ClusterState) -> list[str]:
    """One line per kind of missing package facts (not one per node: 5,000 nodes)."""
    unknown = [n.name for n in state.nodes if n.packages is None]
    legacy = [n.name for n in state.nodes if n.packages and n.packages.repo_legacy]
    out = []
    if unknown:
        out.append(f"no package facts for {_names(unknown)} (no SSH inventory): assuming Debian "
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
def repo_switch_commands(family: nc.Packaging | str, minor: MinorVersion) -> tuple[Command, ...]:
    """Rewrite the node's pkgs.k8s.io source for `minor` (one repository per minor: kubernetes.io
    blog, 2023-08-15), in its own file and format, with its own keyring."""
    return _commands(nc.repository_commands(family, minor))


@cache
def install_commands(family: nc.Packaging | str, version: KubeVersion,
                     packages: tuple[str, ...], pinned: tuple[tuple[str, str], ...] = ()
                     ) -> tuple[Command, ...]:
    """apt: update the Kubernetes source, unhold, install any build of the patch, hold (a
    node pinning with apt preferences: its pin file rewritten to `pinned` instead); yum:
    lift versionlocks, install past `exclude=`, lock again."""
    pv = package_version(version, family)
    return _commands(nc.upgrade_packages(family, version.minor_version,
                                         dict.fromkeys(packages, pv), switch_repository=False,
                                         pinned=dict(pinned) or None))


@cache
def pins_expect(family: nc.Packaging, pinned: tuple[tuple[str, str], ...]) -> str:
    """The `aptPins` expectation of an install step on a node pinning with apt preferences."""
    return nc.pins_expect(family, dict(pinned))


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


# --- etcd snapshot (stacked etcd, first control plane, before `kubeadm upgrade apply`) --------
# kubeadm's stacked etcd serves clients on 127.0.0.1:2379 with TLS; the healthcheck-client
# certificate is the one kubeadm's own etcd liveness probe uses (kubernetes/kubernetes
# cmd/kubeadm/app/phases/etcd/local.go, cmd/kubeadm/app/constants/constants.go). The etcd
# static pod mounts only /var/lib/etcd and /etc/kubernetes/pki/etcd, so the snapshot is written
# under the data directory and moved out of it: kubeadm copies the whole data directory to
# /etc/kubernetes/tmp/kubeadm-backup-etcd-<date> before it upgrades etcd.
ETCD_SNAPSHOT_DIR = "/var/lib/kubehop/etcd-snapshots"
ETCD_SNAPSHOT_PART = "/var/lib/etcd/kubehop-snapshot.db.part"
ETCDCTL_TLS = ("--endpoints=https://127.0.0.1:2379",
               "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
               "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
               "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key")


def stacked_etcd(control_planes: Sequence[NodeState]) -> bool:
    """Whether etcd runs as a static pod on the control planes (kubeadm's stacked etcd): an
    etcd image on one of them, or no control-plane images known at all (assumed stacked, the
    kubeadm default). External etcd (`etcd.external` in kubeadm's ClusterConfiguration) has
    no etcd static pod."""
    if any(n.image("etcd") for n in control_planes):
        return True
    return not any(n.control_plane_images for n in control_planes)


def etcd_snapshot_path(version: KubeVersion) -> str:
    """Where the snapshot taken before the hop to `version` is kept on the node."""
    return f"{ETCD_SNAPSHOT_DIR}/etcd-before-{version}.db"


@cache
def etcd_snapshot_commands(version: KubeVersion) -> tuple[Command, ...]:
    """Save a snapshot with etcdctl (etcd-io/etcd etcdctl/README.md `snapshot save`), verify it
    with etcdutl (`snapshot status -w json`: hash, revision, total keys), keep it under
    `ETCD_SNAPSHOT_DIR`. The executor runs the etcd tools in the etcd container when the node
    has no etcdctl of its own (`crictl exec`)."""
    return (Command(("mkdir", "-p", ETCD_SNAPSHOT_DIR)),
            Command(("etcdctl", *ETCDCTL_TLS, "snapshot", "save", ETCD_SNAPSHOT_PART)),
            Command(("etcdutl", "snapshot", "status", ETCD_SNAPSHOT_PART, "-w", "json")),
            Command(("mv", ETCD_SNAPSHOT_PART, etcd_snapshot_path(version))))
