"""The lab scenario format v1 (DESIGN "Scenario files (v1)") as frozen dataclasses.

`validate.parse_scenario` produces a `Scenario` with every default filled in, so consumers never
guess: package versions are full (`1.28.9-1.1`, `1.28.9-150500.1.1` on RHEL), the repository
minor and holds are explicit. `Scenario.to_dict()` writes the same v1 document back (camelCase).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "kubehop.dev/v1"
KIND = "LabScenario"

KUBE_PACKAGES = ("kubeadm", "kubelet", "kubectl")
CONTROL_PLANE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
CONTROL_PLANE_ROLE = "control-plane"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Pod", "CNPGCluster", "HelmRelease")

# Per OS family: default image, kernel, package revision (pkgs.k8s.io's deb and OBS rpm builds)
# and holds. On RHEL the pin is the repository file's `exclude=` line, not a hold; `holds` there
# are dnf versionlock entries.
OS_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "debian": {"image": "Ubuntu 22.04.4 LTS", "kernel": "5.15.0-105-generic", "revision": "1.1",
               "holds": KUBE_PACKAGES},
    "rhel": {"image": "Rocky Linux 9.3 (Blue Onyx)", "kernel": "5.14.0-362.24.1.el9_3.x86_64",
             "revision": "150500.1.1", "holds": ()},
}

# API faults (kubehop.lab.api.faults): they name an `apiserver` (a control-plane node, the
# `loadbalancer`, or `all` control-plane apiservers) instead of a `node`. Option → default; the
# default's type is the option's (numbers: lab seconds, a rate in [0, 1], a count; 0 `seconds`:
# until removed). `method`, `resource` and `name` narrow the requests hit ("" any); `count`
# stops after that many (0: no limit).
API_FAULT_TARGETS = ("all", "loadbalancer")
API_ERROR_CODES = (429, 500, 502, 503, 504)
# Which requests a fault hits: a share of them, at most `count`, by method, resource, name and
# a text their body contains (`body`: e.g. "unschedulable" for cordons, not annotations).
_API_MATCH: Mapping[str, float | int | str] = {"rate": 1.0, "count": 0, "method": "",
                                               "resource": "", "name": "", "body": ""}
API_FAULT_KINDS: Mapping[str, Mapping[str, float | int | str]] = {
    # Nothing listens for `seconds`: connections are refused, open ones reset.
    "api-refuse": {"after": 0.0, "seconds": 20.0},
    # A kube-apiserver restart: refuse for `seconds`, every watch closed; afterwards watches
    # from a resourceVersion before the restart answer 410 Expired.
    "api-restart": {"after": 0.0, "seconds": 20.0},
    # Answer `code` (429 with Retry-After: 1, 500, 502, 503, 504) instead of serving.
    "api-errors": {"after": 0.0, "seconds": 0.0, "code": 503, **_API_MATCH},
    # Answer `delay` lab seconds late.
    "api-slow": {"after": 0.0, "seconds": 0.0, "delay": 5.0, **_API_MATCH},
    # End every open watch once (clients watch again from their last resourceVersion).
    "api-close-watches": {"after": 0.0},
    # The change history is forgotten: watches and continued lists from before answer 410.
    "api-gone": {"after": 0.0},
}

# Fault kinds: the fields each takes beyond `kind` and `node` (field → allowed values or None
# for free text, first value the default).
FAULT_KINDS: Mapping[str, Mapping[str, tuple[str, ...] | None]] = {
    # The node's kubelet comes back after a restart but the Node never turns Ready again.
    "node-never-ready": {"after": ("kubelet-restart",)},
    # Installing a package on the node fails (mirror unreachable); `package`: which (all if "").
    "package-install-fails": {"package": None},
    # After its manifest changes, the component's static pod never becomes ready.
    "static-pod-never-ready": {"component": CONTROL_PLANE_COMPONENTS},
    # kubeadm's CreateJob health check fails the first `times` runs on the node ("always").
    "kubeadm-createjob-fails": {"times": None},
    # The apiserver's advertise address (Endpoints, mirror pod) refuses or times out from here.
    "apiserver-address-unreachable": {"how": ("refused", "timeout")},
    # KUBELET_EXTRA_ARGS in /etc/default/kubelet (deb) or /etc/sysconfig/kubelet (rpm) is `args`.
    "kubelet-extra-args": {"args": None},
    # The node boots with cgroup v1: /sys/fs/cgroup is a tmpfs, not a cgroup2 mount.
    "cgroup-v1": {},
    # The node's disk is nearly full: `df` shows 4 MiB free, an etcd snapshot cannot be saved.
    "disk-full": {},
    # Package-manager hazards of issue #14 (kubehop.lab.node.package_faults): the dpkg lock held
    # `seconds`; pkgs.k8s.io unreachable; a vendor source with an expired key; a second
    # Kubernetes source file for `minor`; dnf 5; dnf versionlocks on the Kubernetes packages.
    "package-lock-held": {"seconds": None},
    "package-repo-unreachable": {},
    "apt-source-broken": {},
    "apt-source-copy": {"minor": None},
    "dnf5": {},
    "versionlock": {},
    # The apt keyring of the Kubernetes source: expired a year ago, missing, or expiring soon.
    "repo-key": {"state": ("expired", "missing", "expiring")},
}


@dataclass(frozen=True, slots=True)
class Cni:
    name: str = "calico"
    version: str = "v3.27.0"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """`cluster`: what kubeadm's ClusterConfiguration and the addons say."""

    kubernetes_version: str = "v1.28.9"
    cni: Cni = Cni()
    coredns: str = "v1.10.1"
    kube_proxy: str | None = None  # default: kubernetes_version
    etcd: str = "3.5.12-0"
    load_balancer: bool = False


@dataclass(frozen=True, slots=True)
class OsInfo:
    family: str = "debian"  # debian | rhel
    image: str = "Ubuntu 22.04.4 LTS"
    kernel: str = "5.15.0-105-generic"


@dataclass(frozen=True, slots=True)
class Packages:
    """Installed versions in the node's package format (`1.28.9-1.1`, `1.28.9-150500.1.1`)."""

    kubeadm: str
    kubelet: str
    kubectl: str

    def as_dict(self) -> dict[str, str]:
        return {"kubeadm": self.kubeadm, "kubelet": self.kubelet, "kubectl": self.kubectl}


@dataclass(frozen=True, slots=True)
class ScenarioRepo:
    """The Kubernetes package repository: pkgs.k8s.io `v<minor>`, or the retired legacy one."""

    minor: str
    legacy: bool = False


@dataclass(frozen=True, slots=True)
class Capacity:
    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110


@dataclass(frozen=True, slots=True)
class Taint:
    """A node taint (`effect`: NoSchedule, PreferNoSchedule or NoExecute)."""

    key: str
    effect: str
    value: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, **({"value": self.value} if self.value else {}),
                "effect": self.effect}


@dataclass(frozen=True, slots=True)
class Node:
    """One `nodes[]` entry; `count` > 1 makes `name` a prefix (`name-1` … `name-N`)."""

    name: str
    packages: Packages
    repo: ScenarioRepo
    roles: tuple[str, ...] = ()
    os: OsInfo = OsInfo()
    runtime: str = "containerd://1.7.13"
    holds: tuple[str, ...] = KUBE_PACKAGES
    control_plane_images: Mapping[str, str] = field(default_factory=dict)
    capacity: Capacity = Capacity()
    unschedulable: bool = False
    count: int = 1
    # Beyond what kubeadm gives every node (kubernetes.io/hostname, role labels, the
    # control-plane taint): what a snapshot of a live cluster keeps for scheduling.
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    ready: bool = True
    apt_preferences: Mapping[str, str] = field(default_factory=dict)  # file → content

    @property
    def control_plane(self) -> bool:
        return CONTROL_PLANE_ROLE in self.roles

    def names(self) -> list[str]:
        if self.count <= 1:
            return [self.name]
        return [f"{self.name}-{i}" for i in range(1, self.count + 1)]

    def to_dict(self) -> dict[str, Any]:
        """The v1 `nodes[]` entry (also what `kubehop.lab.node.config.NodeSetup` reads)."""
        return {
            "name": self.name, "roles": list(self.roles),
            "os": {"family": self.os.family, "image": self.os.image, "kernel": self.os.kernel},
            "runtime": self.runtime, "packages": self.packages.as_dict(),
            "repo": {"minor": self.repo.minor, "legacy": self.repo.legacy},
            "holds": list(self.holds), "controlPlaneImages": dict(self.control_plane_images),
            "capacity": {"cpu": self.capacity.cpu, "memory": self.capacity.memory,
                         "pods": self.capacity.pods},
            "unschedulable": self.unschedulable, "count": self.count,
            **({"labels": dict(self.labels)} if self.labels else {}),
            **({"taints": [t.to_dict() for t in self.taints]} if self.taints else {}),
            **({} if self.ready else {"ready": False}),
            **({"aptPreferences": dict(self.apt_preferences)} if self.apt_preferences else {}),
        }


@dataclass(frozen=True, slots=True)
class ScenarioPdb:
    """Exactly one bound, an int or `"N%"`."""

    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    name: str | None = None  # default: the workload's name

    def to_dict(self) -> dict[str, int | str]:
        named: dict[str, int | str] = {"name": self.name} if self.name else {}
        if self.min_available is not None:
            return {**named, "minAvailable": self.min_available}
        if self.max_unavailable is not None:
            return {**named, "maxUnavailable": self.max_unavailable}
        return named


@dataclass(frozen=True, slots=True)
class ScenarioWorkload:
    """A Deployment, StatefulSet, DaemonSet, bare Pod, CloudNativePG cluster or Helm release.

    `replicas` holds a CNPGCluster's `instances`. `node` pins a bare Pod (or every replica);
    `primary_node` is where a CNPG cluster's primary (`<name>-1`) runs. `applied_api_version`
    records a `kubectl apply` with that apiVersion (the last-applied annotation). A HelmRelease
    is only the Helm 3 release Secret of `chart`, whose manifest declares `objects`
    ((apiVersion, kind, name) each, possibly in API versions no longer served).
    """

    kind: str
    namespace: str
    name: str
    replicas: int = 1
    image: str | None = None  # default: the fixture builder's per-kind image
    requests: Mapping[str, str] = field(default_factory=dict)
    empty_dir: bool = False
    pdb: ScenarioPdb | None = None
    node: str | None = None
    primary_node: str | None = None
    enable_pdb: bool = True  # CNPGCluster: spec.enablePDB
    labels: Mapping[str, str] = field(default_factory=dict)
    applied_api_version: str | None = None
    chart: str | None = None  # HelmRelease: `name-version`
    objects: tuple[tuple[str, str, str], ...] = ()  # HelmRelease: (apiVersion, kind, name)
    # Where each replica runs (a DaemonSet: the nodes it runs on), as a snapshot found it;
    # empty: the fixture builder places them (least-loaded eligible node).
    placement: tuple[str, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "namespace": self.namespace, "name": self.name}
        if self.kind == "HelmRelease":
            d["chart"] = self.chart
            d["objects"] = [{"apiVersion": a, "kind": k, "name": n} for a, k, n in self.objects]
            return d
        if self.kind in ("Deployment", "StatefulSet"):
            d["replicas"] = self.replicas
        if self.kind == "CNPGCluster":
            d["instances"] = self.replicas
            d["enablePDB"] = self.enable_pdb
        for key, value in (("image", self.image), ("node", self.node),
                           ("primaryNode", self.primary_node)):
            if value is not None:
                d[key] = value
        if self.requests:
            d["requests"] = dict(self.requests)
        if self.labels:
            d["labels"] = dict(self.labels)
        if self.applied_api_version is not None:
            d["appliedApiVersion"] = self.applied_api_version
        d["emptyDir"] = self.empty_dir
        if self.pdb is not None:
            d["pdb"] = self.pdb.to_dict()
        if self.placement:
            d["placement"] = list(self.placement)
        if self.node_selector:
            d["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            d["tolerations"] = [dict(t) for t in self.tolerations]
        return d


@dataclass(frozen=True, slots=True)
class ScenarioTiming:
    """Lab seconds (DESIGN scenario `timing`; `switchover` is CloudNativePG's promotion)."""

    pod_start: float = 5.0
    pod_stop: float = 2.0
    kubelet_restart: float = 10.0
    static_pod_restart: float = 20.0
    package_install: float = 8.0
    switchover: float = 3.0

    def to_dict(self) -> dict[str, float]:
        """camelCase keys: `kubehop.lab.controllers.runtime.Timing(**t.to_dict())` takes them
        as is."""
        return {"podStart": self.pod_start, "podStop": self.pod_stop,
                "kubeletRestart": self.kubelet_restart, "staticPodRestart": self.static_pod_restart,
                "packageInstall": self.package_install, "switchover": self.switchover}


TIMING_KEYS = {"podStart": "pod_start", "podStop": "pod_stop", "kubeletRestart": "kubelet_restart",
               "staticPodRestart": "static_pod_restart", "packageInstall": "package_install",
               "switchover": "switchover"}


@dataclass(frozen=True, slots=True)
class Fault:
    """An injected fault (see FAULT_KINDS); `options` holds the kind's extra fields."""

    kind: str
    node: str
    options: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "node": self.node, **self.options}


@dataclass(frozen=True, slots=True)
class ApiFault:
    """An injected API fault (see API_FAULT_KINDS); `options` has every option of its kind."""

    kind: str
    apiserver: str
    options: Mapping[str, float | int | str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, float | int | str]:
        return {"kind": self.kind, "apiserver": self.apiserver, **self.options}


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole lab scenario; `source` names where it came from (a path or `builtin:NAME`)."""

    name: str
    nodes: tuple[Node, ...]
    description: str = ""
    cluster: ClusterConfig = ClusterConfig()
    workloads: tuple[ScenarioWorkload, ...] = ()
    timing: ScenarioTiming = ScenarioTiming()
    faults: tuple[Fault, ...] = ()
    api_faults: tuple[ApiFault, ...] = ()  # written back under `faults` too
    source: str = ""
    parameters: Mapping[str, int] = field(default_factory=dict)  # built-ins: `large:nodes=50`

    def node_names(self) -> list[str]:
        """Every node name, `count` expanded, in file order."""
        return [n for node in self.nodes for n in node.names()]

    @property
    def node_count(self) -> int:
        return sum(n.count for n in self.nodes)

    def expanded_nodes(self) -> list[tuple[str, Node]]:
        """(name, entry) for every node, `count` expanded."""
        return [(n, node) for node in self.nodes for n in node.names()]

    def to_dict(self) -> dict[str, Any]:
        """The v1 document with every default written out."""
        c = self.cluster
        cluster: dict[str, Any] = {
            "kubernetesVersion": c.kubernetes_version,
            "cni": {"name": c.cni.name, "version": c.cni.version},
            "coredns": c.coredns, "etcd": c.etcd, "loadBalancer": c.load_balancer}
        if c.kube_proxy is not None:
            cluster["kubeProxy"] = c.kube_proxy
        return {
            "apiVersion": API_VERSION, "kind": KIND, "name": self.name,
            "description": self.description, "cluster": cluster,
            "nodes": [n.to_dict() for n in self.nodes],
            "workloads": [w.to_dict() for w in self.workloads],
            "timing": self.timing.to_dict(),
            "faults": [*(f.to_dict() for f in self.faults),
                       *(f.to_dict() for f in self.api_faults)],
        }
