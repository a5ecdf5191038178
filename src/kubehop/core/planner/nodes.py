"""The planner's running view of each node: a name and a frozen `TrackState`.

Two nodes whose states are equal values get the same steps (up to their names) from the same
node sequence, so the plan builder memoises sequences on (arguments, `TrackState`). Equal
values are also pooled into one object (`ValuePool`), which only makes comparing them cheap.
The commands of every step kind come from `core.steps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import Any, TypeVar

from kubehop.core import apt_preferences as ap
from kubehop.core import node_commands as nc
from kubehop.core.steps.base import VERSIONED_COMPONENTS, minor_of, package_version, shared_minor
from kubehop.model.cluster import ClusterState, NodePackages, NodeState, OsFamily
from kubehop.model.errors import VersionError
from kubehop.model.versions import KubeVersion, MinorVersion, parse_deb_version

_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class TrackState:
    """What the planner believes about a node but its name, as one value.

    `repo` is None when unknown (then every hop switches the repository: rewriting it is
    harmless); `managed` is the minor of the kubeadm that last upgraded the node. `family` is
    how the node installs packages (OS family, source file, keyring, dnf5, versionlocks);
    package versions are build globs (`1.29.15-*`: any build of that patch). Versions compare
    as Kubernetes compares them (vendor suffixes ignored): the planner reads a node's versions
    only through comparisons, never renders them. The hash is computed once (the plan builder
    looks states up 10^4 times)."""

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
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((
            self.control_plane, self.family, self.kubelet, self.kubelet_pkg, self.kubectl_pkg,
            self.kubeadm_pkg, self.kubeadm, self.managed, self.repo, self.images,
            self.schedulable, self.ready)))

    def __hash__(self) -> int:
        return self._hash


class NodeTrack:
    """A node's name and its current `TrackState` (replaced, never changed, as the plan
    progresses); the state's fields read through."""

    __slots__ = ("name", "state")

    def __init__(self, name: str, state: TrackState) -> None:
        self.name = name
        self.state = state

    def update(self, **changes: Any) -> None:
        """The state with `changes` (field → value)."""
        self.state = replace(self.state, **changes)

    def package(self, version: KubeVersion) -> str:
        """The package version glob of `version` (`1.29.15-*`)."""
        return package_version(version, self.state.family)

    @property
    def control_plane(self) -> bool:
        return self.state.control_plane

    @property
    def family(self) -> nc.Packaging:
        return self.state.family

    @property
    def kubelet(self) -> KubeVersion | None:
        return self.state.kubelet

    @property
    def kubelet_pkg(self) -> str | None:
        return self.state.kubelet_pkg

    @property
    def kubectl_pkg(self) -> str | None:
        return self.state.kubectl_pkg

    @property
    def kubeadm_pkg(self) -> str | None:
        return self.state.kubeadm_pkg

    @property
    def kubeadm(self) -> KubeVersion | None:
        return self.state.kubeadm

    @property
    def managed(self) -> MinorVersion:
        return self.state.managed

    @property
    def repo(self) -> MinorVersion | None:
        return self.state.repo

    @property
    def images(self) -> KubeVersion | None:
        return self.state.images

    @property
    def schedulable(self) -> bool:
        return self.state.schedulable


# Versions are pooled by every field: KubeVersion's equality ignores `original`, `vendor`, ...
# (equal versions are not always the same text), and a pooled object stands for the values it
# pools. Strings compare fast anyway; package layouts and minors are pooled where they are made.
_IDENTITY: dict[type, Any] = {
    KubeVersion: attrgetter(*(f.name for f in fields(KubeVersion))),
    MinorVersion: attrgetter(*(f.name for f in fields(MinorVersion))),
}


class ValuePool:
    """One object per value (versions by their every field; a `TrackState` by equality):
    nodes in equal states then hold identical objects, and comparing or looking up their states
    takes Python's identity shortcut instead of running version comparisons. Only speed
    depends on it."""

    def __init__(self) -> None:
        self._pooled: dict[object, object] = {}

    def share_all(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """`share` of each value."""
        return tuple(map(self.share, values))

    def share(self, value: _V) -> _V:
        identity = _IDENTITY.get(type(value))
        if identity is None:
            return value if type(value) is not TrackState else self._pooled.setdefault(
                value, value)  # type: ignore[return-value]
        return self._pooled.setdefault((type(value), identity(value)),  # type: ignore[return-value]
                                       value)


_FAMILIES: dict[OsFamily, str] = {}
_PACKAGING: dict[tuple[object, ...], nc.Packaging] = {}


def family_name(family: OsFamily) -> str:
    """`str(family)`, one object per family."""
    name = _FAMILIES.get(family)
    if name is None:
        name = _FAMILIES[family] = str(family)
    return name


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
    # Held dependencies of the packages (cri-tools, kubernetes-cni) are released around each
    # install too; with pins, every apt-mark hold is kept as it was.
    other, held = ((pk.pins_other, pk.held) if pins
                   else ("", tuple(d for d in nc.DEPENDENCIES if d in pk.held)))
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
    values = (family, node.kubelet, nc.glob_of(pk.kubelet) if pk else None,
              nc.glob_of(pk.kubectl) if pk else None, nc.glob_of(pk.kubeadm) if pk else None,
              kubeadm, repo, image_version)
    if pool is not None:  # (managed and repo are shared already)
        values = pool.share_all(values)
    family, kubelet, kubelet_pkg, kubectl_pkg, kubeadm_pkg, kubeadm, repo, image_version = values
    state = TrackState(
        control_plane=node.is_control_plane, family=family, kubelet=kubelet,
        kubelet_pkg=kubelet_pkg, kubectl_pkg=kubectl_pkg, kubeadm_pkg=kubeadm_pkg,
        kubeadm=kubeadm, managed=managed, repo=repo, images=image_version,
        schedulable=node.schedulable, ready=node.ready)
    return NodeTrack(node.name, pool.share(state) if pool is not None else state)


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
