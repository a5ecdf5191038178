"""The observed state of a cluster: what `versions` shows, what `check` judges, what `plan` plans.

Built by the shell (from the API and, with an SSH inventory, from the nodes), consumed by the
pure core. Everything is frozen; the planner's simulator derives new states with
`dataclasses.replace`. Workload facts (pods, PDBs, databases) are optional: `versions` does not
read every pod of a 150,000-pod cluster, `check` and `plan` do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kubehop.model.components import ApiServer, ClusterComponents, NodeComponents
from kubehop.model.versions import KubeVersion, MinorVersion, image_kube_version

# Control-plane static pods, in the order kubeadm upgrades them (kubeadm phases/upgrade).
CONTROL_PLANE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


class OsFamily(StrEnum):
    """How a node installs packages."""

    DEBIAN = "debian"  # apt, /etc/apt/sources.list.d/kubernetes.list, apt-mark hold
    RHEL = "rhel"  # yum/dnf, /etc/yum.repos.d/kubernetes.repo, exclude= line


@dataclass(frozen=True, slots=True)
class Resources:
    """Schedulable resources in the units the scheduler compares: millicores, bytes, pods."""

    cpu_milli: int = 0
    memory: int = 0
    pods: int = 0


@dataclass(frozen=True, slots=True)
class NodeHost:
    """What a node's host says about how its kubelet starts (read over SSH with the packages).

    `extra_args` are the words of `KUBELET_EXTRA_ARGS` in the kubelet package's environment
    file (`extra_args_file`: /etc/default/kubelet on deb, /etc/sysconfig/kubelet on rpm; None
    when neither exists). `cgroup_fs` is what `stat -fc %T /sys/fs/cgroup` printed
    (`cgroup2fs`: cgroup v2; `tmpfs`: v1 or hybrid), None when it could not be read.
    `etcd_free` is the bytes available in etcd's data directory's file system (`df`) and
    `etcd_db` the size of etcd's database file there, both None where the node has none
    (workers, external etcd) or they could not be read.
    """

    extra_args: tuple[str, ...] = ()
    extra_args_file: str | None = None
    cgroup_fs: str | None = None
    etcd_free: int | None = None
    etcd_db: int | None = None

    @property
    def cgroup_v1(self) -> bool | None:
        """Whether the kubelet sees cgroup v1: it runs in v2 ("unified") mode only when
        /sys/fs/cgroup is a cgroup2 mount (opencontainers/cgroups utils.go
        `IsCgroup2UnifiedMode`); None when unknown."""
        return None if not self.cgroup_fs else self.cgroup_fs != "cgroup2fs"


@dataclass(frozen=True, slots=True)
class RepoSource:
    """One Kubernetes package source a node names: the file, its URI, its `signed-by` keyring
    (apt; None when the line names none) and, for yum, its `[id]`."""

    file: str
    uri: str
    signed_by: str | None = None
    repo_id: str | None = None


@dataclass(frozen=True, slots=True)
class RepoTrial:
    """A trial refresh of the target minor's repository on a node, into a throwaway lists
    directory: whether it worked (`error`: why not) and the kubeadm versions it offers."""

    minor: MinorVersion
    ok: bool
    offered: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class AptPin:
    """One stanza of an apt preferences file (`/etc/apt/preferences` or `preferences.d/*`)
    that applies to a Kubernetes package (apt_preferences(5)).

    `packages`: the `Package:` words as written (names, globs, `/regex/`); `pin`: the `Pin:`
    value (`version 1.28.*`, `release o=…`, `origin pkgs.k8s.io`); `applies`: the Kubernetes
    packages it names."""

    file: str
    packages: tuple[str, ...]
    pin: str
    priority: int
    applies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodePackages:
    """What a node's package manager says (read over SSH; absent without an inventory)."""

    os_family: OsFamily
    kubeadm: str | None = None  # package versions as the package manager writes them
    kubelet: str | None = None  # (`1.28.9-1.1`, `1.28.9-150500.1.1`)
    kubectl: str | None = None
    repo_minor: MinorVersion | None = None  # the minor of the configured pkgs.k8s.io repo
    repo_legacy: bool = False  # apt.kubernetes.io / yum.kubernetes.io (shut down 2024-03-04)
    held: tuple[str, ...] = ()  # apt-mark holds, dnf versionlocks or the repo's exclude= line
    kubeadm_binary: KubeVersion | None = None  # `kubeadm version -o short`
    host: NodeHost | None = None  # the kubelet's start-up environment, read by the same command
    # Every pkgs.k8s.io or legacy source in any apt source or yum repo file (the first one is
    # the one kubehop edits: `repo_minor` is its minor).
    repo_sources: tuple[RepoSource, ...] = ()
    dnf5: bool = False  # dnf is dnf 5 (`--setopt=disable_excludes=`, no `--disableexcludes`)
    locked: tuple[str, ...] = ()  # packages with a dnf versionlock entry (also in `held`)
    # The apt keyring the Kubernetes source names (`signed-by`), as `gpg --show-keys` read it:
    # found (None: not read), expired now (gpg's validity `e`), its expiry date (ISO; None:
    # never expires or unknown).
    key_found: bool | None = None
    key_expired: bool = False
    key_expires: str | None = None
    # rpm nodes: the key facts above are of the Kubernetes key imported into rpm; `rpm_keys`
    # names those gpg-pubkey packages (`gpg-pubkey-9a296436-6307a177`: the key id's last 8 hex
    # digits and its creation time in hex, rpm lib/rpmts.c makePubkeyHeader), `key_url` is the
    # repository's `gpgkey=` (dnf imports the key from it).
    rpm_keys: tuple[str, ...] = ()
    key_url: str | None = None
    # Other vendors' apt sources whose `signed-by` keyring is missing or holds an expired key:
    # (file, URI, keyring, expiry date or "" when missing). A plain `apt-get update` fails there.
    vendor_keys: tuple[tuple[str, str, str, str], ...] = ()
    trial: RepoTrial | None = None  # `check --to`: the target minor's repository, tried
    # apt preferences stanzas naming kubeadm, kubelet or kubectl, in apt's reading order.
    pins: tuple[AptPin, ...] = ()
    pins_other: str = ""  # the other stanzas of the file kubehop rewrites (kept as they are)

    @property
    def repo_file(self) -> str | None:
        """The file that names the Kubernetes repository kubehop edits."""
        return self.repo_sources[0].file if self.repo_sources else None

    @property
    def keyring(self) -> str | None:
        """That source's `signed-by` keyring."""
        return self.repo_sources[0].signed_by if self.repo_sources else None

    @property
    def pinned(self) -> tuple[str, ...]:
        """Packages an apt preferences stanza holds back: priority above a repository's 500,
        so a newer version from a source does not win (apt_preferences(5))."""
        return tuple(p for p in ("kubeadm", "kubelet", "kubectl")
                     if any(p in pin.applies and pin.priority > 500 for pin in self.pins))

    @property
    def pin_methods(self) -> tuple[str, ...]:
        """How the node keeps its Kubernetes packages from moving: `hold` (apt-mark),
        `preferences` (an apt pin), `versionlock` (dnf), `exclude` (the yum repository's
        `exclude=` line), or `none`."""
        methods = []
        if self.os_family is OsFamily.RHEL:
            if self.locked:
                methods.append("versionlock")
            if set(self.held) - set(self.locked):
                methods.append("exclude")
        else:
            if self.held:
                methods.append("hold")
            if self.pinned:
                methods.append("preferences")
        return tuple(methods) or ("none",)


@dataclass(frozen=True, slots=True)
class NodeState:
    """One node as the API (and, when available, SSH) shows it."""

    name: str
    roles: tuple[str, ...] = ()
    kubelet: KubeVersion | None = None
    kube_proxy: KubeVersion | None = None
    kernel: str = ""
    os_image: str = ""
    container_runtime: str = ""
    ready: bool = True
    schedulable: bool = True
    internal_ip: str | None = None
    provider_id: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    # component → image of the node's control-plane static (mirror) pod
    control_plane_images: tuple[tuple[str, str], ...] = ()
    allocatable: Resources = field(default_factory=Resources)
    packages: NodePackages | None = None

    @property
    def is_control_plane(self) -> bool:
        return "control-plane" in self.roles or "master" in self.roles

    def image(self, component: str) -> str | None:
        return dict(self.control_plane_images).get(component)

    @property
    def host(self) -> NodeHost | None:
        """The host facts read over SSH (with the package facts), or None without them."""
        return self.packages.host if self.packages is not None else None

    def component_version(self, component: str) -> KubeVersion | None:
        image = self.image(component)
        return image_kube_version(image) if image and component != "etcd" else None

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True, slots=True)
class PodInfo:
    """The facts about a pod that checks, capacity, wave planning and the drain need (the one
    pod record: observe decodes list pages into it, the drain its list and watch events)."""

    namespace: str
    name: str
    node: str | None = None
    owner_kind: str | None = None  # controller owner kind (ReplicaSet, DaemonSet, ...)
    owner_name: str | None = None
    phase: str = "Running"
    ready: bool = True
    requests: Resources = field(default_factory=Resources)
    empty_dir: bool = False
    mirror: bool = False
    deletion_time: float | None = None  # Unix seconds of metadata.deletionTimestamp
    labels: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    uid: str = ""
    scheduled: bool = True  # bound to a node, or PodScheduled=True
    unschedulable: str = ""  # PodScheduled=False message (the scheduler's FailedScheduling)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def deleting(self) -> bool:
        return self.deletion_time is not None

    def label(self, key: str) -> str | None:
        for k, v in self.labels:
            if k == key:
                return v
        return None

    @property
    def daemonset(self) -> bool:
        return self.owner_kind == "DaemonSet"

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class PdbInfo:
    """A PodDisruptionBudget: its status, which pods it covers (observe), and its selector and
    generations (the drain, which matches pods itself and waits for the disruption controller)."""

    namespace: str
    name: str
    pods: tuple[str, ...] = ()  # `ns/name` of the matching pods (observe)
    expected: int = 0
    desired_healthy: int = 0
    current_healthy: int = 0
    disruptions_allowed: int = 0
    owner: str | None = None  # controller owner `Kind/name` (CloudNativePG: `Cluster/pg`)
    # spec.selector as the API sends it (None selects nothing); kept out of the hash (a dict)
    selector: Mapping[str, Any] | None = field(default=None, hash=False)
    generation: int = 0
    observed_generation: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def processed(self) -> bool:
        """Whether the disruption controller has seen the current spec (else evictions 429)."""
        return self.observed_generation >= self.generation


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    """A CloudNativePG cluster: its primary must switch over before its node drains."""

    namespace: str
    name: str
    instances: int
    primary_pod: str | None = None
    primary_node: str | None = None


@dataclass(frozen=True, slots=True)
class ApiServerInfo:
    """One kube-apiserver: asked directly (`/version` at its address), or, when that address
    does not answer from here (behind a load balancer, bastion or VPN), read from its mirror
    pod (image and Ready) plus `/readyz` through the kubeconfig's server."""

    endpoint: str
    node: str | None
    version: KubeVersion | None
    error: str | None = None  # why it could not be asked (or is not Ready)
    read_via: str = "address"  # "address" or "mirror-pod"
    address_error: str | None = None  # with "mirror-pod": why its address did not answer


@dataclass(frozen=True, slots=True)
class Addons:
    """Cluster add-ons whose versions kubeadm (CoreDNS, kube-proxy) or the user (CNI) manage."""

    coredns: str | None = None  # image tag, e.g. v1.10.1
    kube_proxy: str | None = None  # DaemonSet image tag, e.g. v1.28.9
    cni: tuple[tuple[str, str], ...] = ()  # (name, version or image)


@dataclass(frozen=True, slots=True)
class ManifestObject:
    """An object as the manifest it was created from declares it: its `apiVersion` may be one the
    apiserver no longer serves, although the stored object was converted long ago.

    `source` is `last-applied` (the `kubectl.kubernetes.io/last-applied-configuration`
    annotation) or `helm:<namespace>/<release>` (the manifest of the deployed Helm 3 release).
    """

    api_version: str
    kind: str
    namespace: str | None
    name: str
    source: str

    @property
    def subject(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.lower()}/{where}{self.name}"


@dataclass(frozen=True, slots=True)
class DeprecatedApiUse:
    """A series of an apiserver's `apiserver_requested_deprecated_apis` gauge: some client asked
    for this deprecated API since that apiserver started."""

    group: str
    version: str
    resource: str
    removed_release: str | None  # `1.29`; None when no removal is scheduled
    apiserver: str  # the endpoint whose /metrics said so

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True, slots=True)
class ClusterState:
    """Everything kubehop observed, at one moment."""

    apiservers: tuple[ApiServerInfo, ...] = ()
    nodes: tuple[NodeState, ...] = ()
    addons: Addons = field(default_factory=Addons)
    kubeadm_kubernetes_version: KubeVersion | None = None  # kubeadm-config ClusterConfiguration
    kubectl: KubeVersion | None = None  # the local client
    load_balanced: bool = False
    pods: tuple[PodInfo, ...] = ()
    pdbs: tuple[PdbInfo, ...] = ()
    databases: tuple[DatabaseInfo, ...] = ()
    workloads_observed: bool = False  # pods/PDBs/databases were read
    # The server the kubeconfig names (a load balancer in front of HA apiservers, often).
    kubeconfig_server: str | None = None
    kubeadm_config_missing: bool = False  # kube-system/kubeadm-config answered 404
    # API versions in use, for the removed-API checks (read by `check`, not `versions`).
    manifests: tuple[ManifestObject, ...] = ()
    deprecated_api_uses: tuple[DeprecatedApiUse, ...] = ()
    metrics_unreadable: tuple[str, ...] = ()  # apiserver endpoints whose /metrics failed
    apis_observed: bool = False
    nodes_observed: bool = False  # package facts were asked of the nodes (SSH inventory)
    node_errors: tuple[tuple[str, str], ...] = ()  # (node, why its facts could not be read)
    # (node, InternalIP) of nodes the SSH inventory does not name, reached at that address
    address_fallbacks: tuple[tuple[str, str], ...] = ()

    def node(self, name: str) -> NodeState | None:
        return next((n for n in self.nodes if n.name == name), None)

    @property
    def control_plane_nodes(self) -> tuple[NodeState, ...]:
        return tuple(n for n in self.nodes if n.is_control_plane)

    @property
    def worker_nodes(self) -> tuple[NodeState, ...]:
        return tuple(n for n in self.nodes if not n.is_control_plane)

    def pods_on(self, node: str) -> tuple[PodInfo, ...]:
        return tuple(p for p in self.pods if p.node == node)

    def components(self) -> ClusterComponents:
        """The version facts the skew engine judges."""
        apiservers = tuple(
            ApiServer(a.endpoint, a.node, a.version) for a in self.apiservers if a.version
        )
        nodes = []
        for n in self.nodes:
            kubeadm = n.packages.kubeadm_binary if n.packages else None
            nodes.append(NodeComponents(
                name=n.name,
                control_plane=n.is_control_plane,
                kubelet=n.kubelet,
                kube_proxy=n.kube_proxy,
                kubeadm=kubeadm,
                kube_apiserver=n.component_version("kube-apiserver"),
                kube_controller_manager=n.component_version("kube-controller-manager"),
                kube_scheduler=n.component_version("kube-scheduler"),
            ))
        return ClusterComponents(apiservers=apiservers, nodes=tuple(nodes), kubectl=self.kubectl,
                                 load_balanced=self.load_balanced)
