"""A programmatic description of a lab cluster, and `populate()` that loads it into a store.

The frozen dataclasses here are the core of the YAML scenario format (DESIGN "Scenario files
(v1)"): a scenario parser only has to produce a `ClusterSpec`. `populate` builds what kubeadm and
the controllers would have created: namespaces, nodes (with leases), control-plane static (mirror)
pods, kube-proxy and CNI DaemonSets, CoreDNS, the kubeadm-config ConfigMap, then the workloads
with their ReplicaSets, pods and PDBs. Placement is deterministic (least-loaded eligible node).
"""

from __future__ import annotations

import gc
import hashlib
import heapq
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from kubehop.lab import objects as o
from kubehop.lab import objects_apps as apps
from kubehop.lab.addresses import LOAD_BALANCER_ENDPOINT, node_ip
from kubehop.lab.fixtures_apis import annotate_applied, helm_release_secret
from kubehop.lab.fixtures_cnpg import cnpg_cluster
from kubehop.lab.store import Store, format_time

Obj = dict[str, Any]
_encode = msgspec.json.Encoder().encode
CONTROL_PLANE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node (or, with `count` > 1, nodes `name-1` … `name-N`)."""

    name: str
    roles: tuple[str, ...] = ()
    kubelet_version: str | None = None  # default: the cluster's kubernetesVersion
    kube_proxy_version: str | None = None
    os_image: str = "Ubuntu 22.04.4 LTS"
    kernel_version: str = "5.15.0-105-generic"
    container_runtime: str = "containerd://1.7.13"
    architecture: str = "amd64"
    cpu: str = "4"
    memory: str = "8Gi"
    pods: str = "110"
    ready: bool = True
    unschedulable: bool = False
    control_plane_images: Mapping[str, str] = field(default_factory=dict)  # drift: component → tag
    count: int = 1
    # What the node agents provision (kubehop.lab.node); the store itself does not use them.
    os_family: str = "debian"  # debian | rhel
    packages: Mapping[str, str] = field(default_factory=dict)  # kubeadm/kubelet/kubectl → version
    repo_minor: str | None = None  # pkgs.k8s.io minor; None: the kubeadm package's
    repo_legacy: bool = False
    holds: tuple[str, ...] = ("kubeadm", "kubelet", "kubectl")  # apt holds / dnf versionlocks
    labels: Mapping[str, str] = field(default_factory=dict)  # beyond kubeadm's
    taints: tuple[Mapping[str, str], ...] = ()  # beyond the control-plane and cordon taints

    @property
    def control_plane(self) -> bool:
        return o.CONTROL_PLANE_ROLE in self.roles

    def names(self) -> list[str]:
        if self.count <= 1:
            return [self.name]
        return [f"{self.name}-{i}" for i in range(1, self.count + 1)]


@dataclass(frozen=True, slots=True)
class PdbSpec:
    """A PDB over a workload's pods; exactly one of the two bounds (int or "N%")."""

    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    name: str | None = None  # default: the workload's name


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """A Deployment, StatefulSet, DaemonSet, bare Pod, CNPGCluster or HelmRelease.

    A CNPGCluster (a `clusters.postgresql.cnpg.io` object) has `replicas` instances
    `<name>-1 … <name>-N`; `<name>-1` is the primary, on `primary_node` when given. A
    HelmRelease is only the Helm 3 release Secret of `chart` declaring `objects`.
    `applied_api_version` gives the workload a last-applied annotation with that apiVersion.
    """

    kind: str
    namespace: str
    name: str
    replicas: int = 1
    image: str = "registry.k8s.io/pause:3.9"
    requests: Mapping[str, str] = field(default_factory=dict)
    empty_dir: bool = False
    node: str | None = None  # bare pods: where it runs; others: pin every replica here
    labels: Mapping[str, str] = field(default_factory=dict)
    pdb: PdbSpec | None = None
    primary_node: str | None = None  # CNPGCluster
    enable_pdb: bool = True  # CNPGCluster: spec.enablePDB
    applied_api_version: str | None = None  # kubectl.kubernetes.io/last-applied-configuration
    chart: str | None = None  # HelmRelease: `name-version`
    objects: tuple[tuple[str, str, str], ...] = ()  # HelmRelease: (apiVersion, kind, name)
    placement: tuple[str, ...] = ()  # the node of each replica in turn (DaemonSet: its nodes)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, str], ...] = ()

    def pod_spec_extra(self) -> dict[str, Any]:
        """What the pod template (and so every pod) carries beyond the defaults."""
        extra: dict[str, Any] = {}
        if self.node_selector:
            extra["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            extra["tolerations"] = [_toleration(t) for t in self.tolerations]
        return extra


def _toleration(t: Mapping[str, str]) -> dict[str, Any]:
    """A toleration as the API holds it (`tolerationSeconds` is an integer)."""
    return {k: int(v) if k == "tolerationSeconds" else v for k, v in t.items()}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """An injected fault for the node agents/controllers (kinds: scenarios.schema.FAULT_KINDS)."""

    kind: str
    node: str
    options: Mapping[str, str] = field(default_factory=dict)  # e.g. {"after": "kubelet-restart"}


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A whole cluster: versions, nodes, extra namespaces, workloads (and, for the lab's other
    parts, the load balancer, timing and faults of its scenario)."""

    nodes: tuple[NodeSpec, ...]
    kubernetes_version: str = "v1.28.9"
    etcd_version: str = "3.5.12-0"
    coredns_version: str = "v1.10.1"
    cni: tuple[str, str] = ("calico", "v3.27.0")
    namespaces: tuple[str, ...] = ()
    workloads: tuple[WorkloadSpec, ...] = ()
    age: timedelta = timedelta(days=10)
    name: str = "custom"
    kube_proxy_version: str | None = None  # kube-proxy DaemonSet; default kubernetes_version
    load_balancer: bool = False  # one endpoint in front of every apiserver
    timing: Mapping[str, float] = field(default_factory=dict)  # camelCase, as controllers.Timing
    faults: tuple[FaultSpec, ...] = ()

    def apiserver_version(self) -> str:
        """What `/version` answers: the first control-plane node's kube-apiserver tag."""
        for n in self.nodes:
            if n.control_plane:
                return n.control_plane_images.get("kube-apiserver", self.kubernetes_version)
        return self.kubernetes_version


def oldversion_spec() -> ClusterSpec:
    """The three-node v1.28.9 cluster of the API server tests (a StatefulSet `db/pg`).

    The lab's `oldversion` scenario (`kubehop.lab.scenarios.load_scenario("oldversion")`) is
    the same cluster with a CloudNativePG cluster `db/pg` instead of the StatefulSet.
    """
    return ClusterSpec(
        nodes=(
            NodeSpec("oldversion1", roles=("control-plane",)),
            NodeSpec("oldversion2"),
            NodeSpec("oldversion3"),
        ),
        workloads=(
            WorkloadSpec("Deployment", "web", "frontend", replicas=3,
                         image="docker.io/library/nginx:1.25.4",
                         requests={"cpu": "100m", "memory": "128Mi"},
                         pdb=PdbSpec(max_unavailable=1)),
            WorkloadSpec("DaemonSet", "monitoring", "node-exporter",
                         image="quay.io/prometheus/node-exporter:v1.7.0"),
            WorkloadSpec("StatefulSet", "db", "pg", replicas=2,
                         image="ghcr.io/cloudnative-pg/postgresql:16.2",
                         pdb=PdbSpec(min_available=1)),
            WorkloadSpec("Pod", "default", "scratch", node="oldversion3", empty_dir=True,
                         image="docker.io/library/busybox:1.36"),
        ),
    )


def _suffix(*parts: str, n: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's rand alphabet
    h = int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:8], "big")
    out = []
    for _ in range(n):
        h, r = divmod(h, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


class _Builder:
    """Carries the per-node addressing and load while `populate` runs."""

    def __init__(self, spec: ClusterSpec, store: Store, now: datetime) -> None:
        self.spec = spec
        self.store = store
        self.created = format_time(now - spec.age)
        self.created_at = (now - spec.age).timestamp()
        self.nodes: list[tuple[NodeSpec, Obj]] = []
        self.by_name: dict[str, Obj] = {}
        self.heap: list[tuple[int, str]] | None = None  # (load, node) of eligible nodes
        self.next_ip: dict[str, int] = {}
        self.shared: dict[bytes, Any] = {}
        self.placed: dict[tuple[str, str], int] = {}  # workload → replicas placed by `placement`

    def add(self, resource: str, obj: Obj) -> Obj:
        """Store `obj` as is, sharing equal sub-objects with earlier pods (see `_share`)."""
        if resource == "pods":
            self._share(obj)
        return self.store.create(resource, obj, adopt=True)

    def _share(self, pod: Obj) -> None:
        """Replace a pod's repetitive parts by one shared instance per distinct value.

        Replicas have equal labels, containers, conditions and statuses; sharing them cuts the
        memory of 150k pods by more than half. Safe because the store never changes a stored
        object in place (every write replaces the object, and reads hand out copies).
        """
        for part, keys in ((pod["metadata"], ("labels", "annotations", "ownerReferences")),
                           (pod["spec"], ("containers", "tolerations", "volumes")),
                           (pod["status"], ("conditions", "containerStatuses", "hostIPs"))):
            for k in keys:
                if k in part:
                    part[k] = self.shared.setdefault(_encode(part[k]), part[k])

    def node_ip(self, name: str) -> str:
        return self.by_name[name]["status"]["addresses"][0]["address"]

    def pod_ip(self, node_name: str) -> str:
        node = self.by_name[node_name]
        base = node["spec"]["podCIDR"].split("/")[0].rsplit(".", 1)[0]
        i = self.next_ip.get(node_name, 2)
        self.next_ip[node_name] = i + 1
        return f"{base}.{i % 254 + 1}"

    def place(self, workload: WorkloadSpec, avoid: Collection[str] = ()) -> str:
        """The least-loaded schedulable worker (control-plane nodes only if no worker), not
        in `avoid` unless every candidate is (preferred anti-affinity)."""
        if workload.node:
            return workload.node
        if workload.placement and workload.kind != "DaemonSet":
            key = (workload.namespace, workload.name)
            i = self.placed.get(key, 0)
            self.placed[key] = i + 1
            return workload.placement[i % len(workload.placement)]
        if self.heap is None:
            ready = [(s, n) for s, n in self.nodes if not s.unschedulable and s.ready]
            workers = [n for s, n in ready if not s.control_plane] or [n for _, n in ready]
            self.heap = [(0, n["metadata"]["name"]) for n in workers]
            heapq.heapify(self.heap)
        if not self.heap:
            raise ValueError(f"workload {workload.namespace}/{workload.name}: no ready node")
        skipped = []
        while len(self.heap) > 1 and self.heap[0][1] in avoid:
            skipped.append(heapq.heappop(self.heap))
        load, best = self.heap[0]
        heapq.heapreplace(self.heap, (load + 1, best))
        for entry in skipped:
            heapq.heappush(self.heap, entry)
        return best

    def pod_name(self, namespace: str, prefix: str, *seed: str) -> str:
        """`prefix-xxxxx` with a deterministic suffix, re-drawn on the rare collision."""
        salt = 0
        while True:
            name = f"{prefix}-{_suffix(prefix, *seed, str(salt) if salt else '')}"
            if self.store.peek("pods", namespace, name) is None:
                return name
            salt += 1

    def run_pod(self, namespace: str, name: str, node_name: str,
                spec_extra: Mapping[str, Any] | None = None, **kw: Any) -> Obj:
        host_ip = self.node_ip(node_name)
        ip = host_ip if kw.get("host_network") else self.pod_ip(node_name)
        pod = o.pod(namespace, name, node_name=node_name, host_ip=host_ip, pod_ip=ip,
                    created=self.created, **kw)
        if spec_extra:
            pod["spec"].update(spec_extra)
        return self.add("pods", pod)


def populate(spec: ClusterSpec, store: Store, now: datetime | None = None) -> None:
    """Create every object of `spec` in `store` (which should be empty).

    The cyclic garbage collector is paused meanwhile: building 150k pods otherwise spends most
    of its time in collections that find nothing to free.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        b = _Builder(spec, store, now or store.clock())
        namespaces = list(SYSTEM_NAMESPACES) + list(spec.namespaces)
        namespaces += [w.namespace for w in spec.workloads]
        for ns in dict.fromkeys(namespaces):
            b.add("namespaces", o.namespace(ns, created=b.created))
        _nodes(b)
        _control_plane(b)
        _addons(b)
        for w in spec.workloads:
            _workload(b, w)
    finally:
        if was_enabled:
            gc.enable()


def _nodes(b: _Builder) -> None:
    i = 0
    for ns in b.spec.nodes:
        for name in ns.names():
            kubelet = ns.kubelet_version or b.spec.kubernetes_version
            node = o.node(
                name, roles=ns.roles, kubelet_version=kubelet,
                kube_proxy_version=ns.kube_proxy_version, os_image=ns.os_image,
                kernel_version=ns.kernel_version, container_runtime=ns.container_runtime,
                architecture=ns.architecture,
                internal_ip=node_ip(i),
                pod_cidr=f"10.{64 + i // 256}.{i % 256}.0/24",
                cpu=ns.cpu, memory=ns.memory, pods=ns.pods, ready=ns.ready,
                unschedulable=ns.unschedulable, labels=ns.labels, created=b.created,
            )
            if ns.taints:
                node["spec"]["taints"] = [*node["spec"].get("taints", ()),
                                          *(dict(t) for t in ns.taints)]
            b.nodes.append((ns, b.add("nodes", node)))
            b.by_name[name] = node
            b.add("leases.coordination.k8s.io", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": o.meta(name, "kube-node-lease", owner=node, created=b.created),
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                         "renewTime": b.created.replace("Z", ".000000Z")},
            })
            i += 1


def _control_plane(b: _Builder) -> None:
    for ns, node in b.nodes:
        if not ns.control_plane:
            continue
        name = node["metadata"]["name"]
        ip = b.node_ip(name)
        for comp in CONTROL_PLANE_COMPONENTS:
            default = b.spec.etcd_version if comp == "etcd" else b.spec.kubernetes_version
            tag = ns.control_plane_images.get(comp, default)
            annotations = {
                "kubernetes.io/config.hash": _suffix(comp, name, tag, n=32),
                "kubernetes.io/config.mirror": _suffix(comp, name, tag, n=32),
                "kubernetes.io/config.seen": b.created.replace("Z", ".000000000Z"),
                "kubernetes.io/config.source": "file",
            }
            if comp == "kube-apiserver":
                annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] = (
                    f"{ip}:6443")
            if comp == "etcd":
                annotations["kubeadm.kubernetes.io/etcd.advertise-client-urls"] = (
                    f"https://{ip}:2379")
            b.run_pod(
                "kube-system", f"{comp}-{name}", name,
                containers=[o.container(comp, f"registry.k8s.io/{comp}:{tag}",
                                        command=[comp], requests={"cpu": "100m"})],
                labels={"component": comp, "tier": "control-plane"},
                annotations=annotations, owner=node, host_network=True,
                priority_class="system-node-critical", tolerations=[
                    {"operator": "Exists", "effect": "NoExecute"}],
            )
    endpoint = LOAD_BALANCER_ENDPOINT if b.spec.load_balancer else ""
    b.add("configmaps", apps.configmap("kube-system", "kubeadm-config", {
        "ClusterConfiguration": (
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
            f"kubernetesVersion: {b.spec.kubernetes_version}\n"
            f"controlPlaneEndpoint: \"{endpoint}\"\nclusterName: kubernetes\n"
            "imageRepository: registry.k8s.io\n"
            "networking:\n  dnsDomain: cluster.local\n  podSubnet: 10.64.0.0/10\n"
            "  serviceSubnet: 10.96.0.0/12\n"),
    }, created=b.created))


def _daemonset_pods(b: _Builder, ds: Obj, containers: list[Obj],
                    only: Collection[str] = (), **kw: Any) -> None:
    """One pod of `ds` on every node (on the nodes `only` names, when it names any)."""
    ns, name = ds["metadata"]["namespace"], ds["metadata"]["name"]
    labels = ds["spec"]["selector"]["matchLabels"]
    count = 0
    for _, node in b.nodes:
        nn = node["metadata"]["name"]
        if only and nn not in only:
            continue
        b.run_pod(ns, b.pod_name(ns, name, nn), nn, containers=containers,
                  labels=dict(labels, **{"controller-revision-hash": "6d8f7c5b9"}),
                  owner=ds, **kw)
        count += 1
    b.store.mutate("daemonsets.apps", ns, name, lambda d: d["status"].update(
        currentNumberScheduled=count, desiredNumberScheduled=count, numberReady=count,
        numberAvailable=count, updatedNumberScheduled=count))


def _system_daemonset(ds: Obj) -> Obj:
    """What kube-proxy's and the CNI's DaemonSet templates carry: host network, node-critical
    priority and a toleration of every taint (so they run on control-plane nodes too)."""
    spec = ds["spec"]["template"]["spec"]
    spec.update(hostNetwork=True, priorityClassName="system-node-critical",
                tolerations=[{"operator": "Exists"}])
    return ds


def _addons(b: _Builder) -> None:
    version = b.spec.kube_proxy_version or b.spec.kubernetes_version
    proxy = [o.container("kube-proxy", f"registry.k8s.io/kube-proxy:{version}",
                         command=["/usr/local/bin/kube-proxy"])]
    ds = b.add("daemonsets.apps", _system_daemonset(apps.workload(
        "DaemonSet", "kube-system", "kube-proxy", replicas=None, labels={"k8s-app": "kube-proxy"},
        containers=proxy, created=b.created)))
    _daemonset_pods(b, ds, proxy, host_network=True, priority_class="system-node-critical",
                    tolerations=[{"operator": "Exists"}])
    cni, cni_version = b.spec.cni
    image = f"docker.io/calico/node:{cni_version}" if cni == "calico" else f"{cni}:{cni_version}"
    cni_name = f"{cni}-node" if cni == "calico" else cni
    cni_c = [o.container(cni_name, image)]
    ds = b.add("daemonsets.apps", _system_daemonset(apps.workload(
        "DaemonSet", "kube-system", cni_name, replicas=None, labels={"k8s-app": cni_name},
        containers=cni_c, created=b.created)))
    _daemonset_pods(b, ds, cni_c, host_network=True, priority_class="system-node-critical",
                    tolerations=[{"operator": "Exists"}])
    dns = WorkloadSpec("Deployment", "kube-system", "coredns", replicas=2,
                       image=f"registry.k8s.io/coredns/coredns:{b.spec.coredns_version}",
                       requests={"cpu": "100m", "memory": "70Mi"},
                       labels={"k8s-app": "kube-dns"})
    cps = [n["metadata"]["name"] for s, n in b.nodes if s.control_plane]
    _workload(b, dns, nodes=cps or None, priority_class="system-cluster-critical")


def _workload(b: _Builder, w: WorkloadSpec, nodes: list[str] | None = None,
              priority_class: str | None = None) -> None:
    if w.kind == "HelmRelease":
        b.add("secrets", helm_release_secret(w, b.created))
        return
    labels = dict(w.labels) or {"app": w.name}
    mounts = [{"name": "scratch", "mountPath": "/scratch"}] if w.empty_dir else None
    volumes = [{"name": "scratch", "emptyDir": {}}] if w.empty_dir else None
    cs = [o.container(w.name, w.image, requests=w.requests or None, volume_mounts=mounts)]
    kw: dict[str, Any] = {"containers": cs, "volumes": volumes, "priority_class": priority_class,
                          "spec_extra": w.pod_spec_extra()}
    if w.kind == "Pod":
        applied = annotate_applied({"kind": "Pod", "metadata": {"name": w.name, "namespace":
                                    w.namespace, "labels": labels}}, w.applied_api_version)
        b.run_pod(w.namespace, w.name, b.place(w), labels=labels,
                  annotations=applied["metadata"].get("annotations"), **kw)
    elif w.kind == "DaemonSet":
        ds = b.add("daemonsets.apps", annotate_applied(_with_template_extra(apps.workload(
            "DaemonSet", w.namespace, w.name, replicas=None, labels=labels, containers=cs,
            volumes=volumes, created=b.created), w), w.applied_api_version))
        # NodeShouldRunDaemonPod: only nodes whose labels match the node selector.
        only = set(w.placement) or {n["metadata"]["name"] for _, n in b.nodes if all(
            n["metadata"].get("labels", {}).get(k) == v for k, v in w.node_selector.items())}
        _daemonset_pods(b, ds, cs, only=only, volumes=volumes, spec_extra=w.pod_spec_extra())
    elif w.kind in ("Deployment", "StatefulSet"):
        res = "deployments.apps" if w.kind == "Deployment" else "statefulsets.apps"
        owner = b.add(res, annotate_applied(_with_template_extra(apps.workload(
            w.kind, w.namespace, w.name, replicas=w.replicas, labels=labels, containers=cs,
            volumes=volumes, created=b.created), w), w.applied_api_version))
        pod_labels = dict(labels)
        if w.kind == "Deployment":
            template_hash = _suffix(w.namespace, w.name, "template", n=10)
            pod_labels["pod-template-hash"] = template_hash
            rs = _with_template_extra(apps.workload(
                "ReplicaSet", w.namespace, f"{w.name}-{template_hash}", replicas=w.replicas,
                labels=pod_labels, containers=cs, volumes=volumes, created=b.created), w)
            rs["metadata"]["ownerReferences"] = [o.owner_reference(owner)]
            rs["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
            owner = b.add("replicasets.apps", rs)
        for i in range(w.replicas):
            pod_name = f"{w.name}-{i}" if w.kind == "StatefulSet" else \
                b.pod_name(w.namespace, owner["metadata"]["name"], str(i))
            node = nodes[i % len(nodes)] if nodes else b.place(w)
            extra = {"statefulset.kubernetes.io/pod-name": pod_name} if w.kind == "StatefulSet" \
                else {}
            b.run_pod(w.namespace, pod_name, node, labels=dict(pod_labels, **extra),
                      owner=owner, **kw)
    elif w.kind == "CNPGCluster":
        cnpg_cluster(b, w)
        return
    else:
        raise ValueError(f"workload {w.namespace}/{w.name}: unknown kind {w.kind!r}")
    if w.pdb is not None:
        _pdb(b, w, labels)


def _with_template_extra(obj: Obj, w: WorkloadSpec) -> Obj:
    """`obj` with `w`'s node selector and tolerations in its pod template."""
    obj["spec"]["template"]["spec"].update(w.pod_spec_extra())
    return obj


def _pdb(b: _Builder, w: WorkloadSpec, labels: Mapping[str, str]) -> None:
    """The PDB with the status the disruption controller would compute at start."""
    p = apps.pdb(w.namespace, w.pdb.name or w.name, selector=labels,
              min_available=w.pdb.min_available, max_unavailable=w.pdb.max_unavailable,
              created=b.created)
    pods = [q for q in b.store.iter("pods", w.namespace)
            if all(q["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())]
    healthy = sum(1 for q in pods if any(
        c["type"] == "Ready" and c["status"] == "True" for c in q["status"].get("conditions", [])))
    expected = len(pods)
    desired = _desired(w.pdb, expected)
    p["status"] = {
        "observedGeneration": 1, "expectedPods": expected, "currentHealthy": healthy,
        "desiredHealthy": desired, "disruptionsAllowed": max(0, healthy - desired),
        "conditions": [{
            "type": "DisruptionAllowed",
            "status": "True" if healthy > desired else "False",
            "reason": "SufficientPods" if healthy > desired else "InsufficientPods",
            "message": "", "observedGeneration": 1, "lastTransitionTime": b.created,
        }],
    }
    b.add("poddisruptionbudgets.policy", p)


def _scaled(value: int | str, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * total // 100)  # percentages round up
    return int(value)


def _desired(p: PdbSpec, expected: int) -> int:
    if p.min_available is not None:
        return _scaled(p.min_available, expected)
    if p.max_unavailable is not None:
        return max(0, expected - _scaled(p.max_unavailable, expected))
    return 0
