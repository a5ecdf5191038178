"""The observed state of a cluster: what `versions` shows, what `check` judges, what `plan` plans.

Built by the shell (from the API and, with an SSH inventory, from the nodes), consumed by the
pure core. Everything is frozen; the planner's simulator derives new states with
`dataclasses.replace`. Workload facts (pods, PDBs, databases) are optional: `versions` does not
read every pod of a 150,000-pod cluster, `check` and `plan` do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

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

    def component_version(self, component: str) -> KubeVersion | None:
        image = self.image(component)
        return image_kube_version(image) if image and component != "etcd" else None

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True, slots=True)
class PodInfo:
    """The facts about a pod that drains, capacity and wave planning need."""

    namespace: str
    name: str
    node: str | None
    owner_kind: str | None = None  # controller owner kind (ReplicaSet, DaemonSet, ...)
    owner_name: str | None = None
    phase: str = "Running"
    ready: bool = True
    requests: Resources = field(default_factory=Resources)
    empty_dir: bool = False
    mirror: bool = False
    deleting: bool = False
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def daemonset(self) -> bool:
        return self.owner_kind == "DaemonSet"

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class PdbInfo:
    """A PodDisruptionBudget with its status, and which pods it covers."""

    namespace: str
    name: str
    pods: tuple[str, ...] = ()  # `ns/name` of the matching pods
    expected: int = 0
    desired_healthy: int = 0
    current_healthy: int = 0
    disruptions_allowed: int = 0
    owner: str | None = None  # controller owner `Kind/name` (CloudNativePG: `Cluster/pg`)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


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
    """One kube-apiserver as queried directly (`/version` of that endpoint)."""

    endpoint: str
    node: str | None
    version: KubeVersion | None
    error: str | None = None  # why it could not be asked


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
