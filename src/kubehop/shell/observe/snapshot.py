"""`kubehop lab snapshot`: the live cluster as a lab scenario (`kubehop.dev/v1 LabScenario`).

    facts = await read_cluster(client, node_runner)     # observe + the workload objects
    snap = build_snapshot(facts, anonymize_key=None)    # pure: the document, notes, names

What the document keeps is what kubehop reads: every node (roles, labels that are not kubeadm's
or the kubelet's own, taints, allocatable as capacity, OS, kernel, runtime, kubelet version,
Ready, cordon), the control-plane images per node where they differ from kubeadm's version
(drift), kubeadm's kubernetesVersion, CoreDNS, kube-proxy and CNI versions; with an SSH
inventory the packages, repository minor, holds/versionlocks and the host hazards `check`
reads (as the lab's faults). Workloads: Deployments, StatefulSets, DaemonSets, bare pods and
CloudNativePG clusters with where each replica runs (`placement`), their requests, emptyDir
use, node selectors and tolerations, PodDisruptionBudgets, the apiVersion of their last
`kubectl apply`, and Helm releases as chart name and (apiVersion, kind, name) of their
objects. Never: Secret data, ConfigMap contents, environment values, registry credentials
(only the first container's image reference is kept, and not even that with `--anonymize`).

Anonymized (`anonymize_key`), namespace, workload, PDB, release and node names, label values
and images are replaced by keyed hashes (HMAC-SHA256): without the key, kept only in the
mapping file beside the snapshot, a name cannot be confirmed by hashing guesses.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from kubehop.model.cluster import ClusterState, NodePackages, NodeState, PodInfo, Resources
from kubehop.model.errors import VersionError
from kubehop.model.versions import KubeVersion, parse_kube_version
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube import wire
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.reader import as_reader, optional
from kubehop.shell.kube.requests import Request
from kubehop.shell.observe.addons import pages
from kubehop.shell.observe.apis import decode_helm_release, manifest_objects
from kubehop.shell.observe.cluster import observe
from kubehop.shell.observe.decode import controller_of, image_tag
from kubehop.shell.observe.nodes import NodeRunner

Doc = dict[str, Any]
RHEL_IMAGES = ("rocky", "red hat", "rhel", "centos", "almalinux", "oracle linux", "fedora")
# Labels the kubelet and kubeadm put on every node (kubelet `nodestatus` and kubeadm
# `markcontrolplane`); the lab adds them itself.
OWN_LABEL_PREFIXES = ("kubernetes.io/", "beta.kubernetes.io/", "node-role.kubernetes.io/",
                      "node.kubernetes.io/exclude-from-external-load-balancers")
# Taints the lab puts (kubeadm's control-plane taint, the cordon) or the node lifecycle
# controller manages (kubernetes/kubernetes pkg/controller/nodelifecycle).
OWN_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master",
              "node.kubernetes.io/unschedulable", "node.kubernetes.io/not-ready",
              "node.kubernetes.io/unreachable")
# Pod labels the controllers add (pod-template-hash, controller-revision-hash, ordinal).
CONTROLLER_LABELS = ("pod-template-hash", "controller-revision-hash",
                     "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index")
APPLIED_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Pod")
HELM_SECRET_TYPE = "helm.sh/release.v1"


# --- what is read beyond `observe` ---------------------------------------------------------


# The few fields of a Deployment, ReplicaSet, StatefulSet, DaemonSet, PDB, CNPG cluster or
# Node a snapshot keeps (one struct for every kind: absent fields keep their defaults).
Obj = wire.AnyObject
_objs = msgspec.json.Decoder(wire.ItemList[wire.AnyObject])
_secrets = msgspec.json.Decoder(wire.ItemList[wire.SecretWire])


@dataclass(frozen=True, slots=True)
class HelmRelease:
    """A deployed Helm 3 release: its chart (`name-version`) and (apiVersion, kind, name) of
    each object its manifest declares. Nothing else of the release Secret is kept."""

    namespace: str
    name: str
    chart: str
    objects: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    """Everything a snapshot is built from: the observed state and the workload objects."""

    state: ClusterState
    objects: Mapping[str, list[Obj]] = field(default_factory=dict)  # resource → objects
    helm: tuple[HelmRelease, ...] = ()


RESOURCES: dict[str, Request] = {
    "nodes": rq.list_nodes(),
    "deployments": rq.list_workloads("deployments"),
    "replicasets": rq.list_workloads("replicasets"),
    "statefulsets": rq.list_workloads("statefulsets"),
    "daemonsets": rq.list_workloads("daemonsets"),
    "pdbs": rq.list_pdbs(),
    "cnpg": rq.list_cnpg_clusters(),
}


def _helm(page: bytes) -> list[HelmRelease]:
    out = []
    for s in _secrets.decode(page).items:
        if s.type != HELM_SECRET_TYPE or "release" not in s.data:
            continue
        release = decode_helm_release(s.data["release"]) or {}
        meta = ((release.get("chart") or {}).get("metadata") or {})  # type: ignore[union-attr]
        chart = f"{meta.get('name', '')}-{meta.get('version', '')}".strip("-") or "chart"
        manifest = release.get("manifest")
        objects = manifest_objects(manifest, "") if isinstance(manifest, str) else []
        out.append(HelmRelease(s.metadata.namespace, s.metadata.labels.get("name", ""), chart,
                               tuple((o.api_version, o.kind, o.name) for o in objects)))
    return out


def _items(page: bytes) -> list[Obj]:
    return _objs.decode(page).items


async def read_cluster(client: KubeClient, node_runner: NodeRunner | None = None
                       ) -> ClusterFacts:
    """Observe the cluster (with workloads, applied API versions and, given `node_runner`,
    node facts) and list the workload objects, concurrently."""
    reader = as_reader(client)
    listed = {name: optional(pages(reader, request, _items), [])
              for name, request in RESOURCES.items()}
    helm = optional(pages(reader, rq.list_secrets("owner=helm,status=deployed"), _helm), [])
    state, helm_found, *lists = await asyncio.gather(
        observe(client, workloads=True, apis=True, node_runner=node_runner, kubectl=False),
        helm, *listed.values())
    return ClusterFacts(state, dict(zip(listed, lists, strict=True)), tuple(helm_found))


# --- names ---------------------------------------------------------------------------------


class Names:
    """Keyed hashes of names (identity without a key): `ns-…`, `w-…`, `node-…`, `v-…`."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key
        self.mapping: dict[str, dict[str, str]] = defaultdict(dict)

    def __call__(self, kind: str, name: str) -> str:
        if self.key is None or not name:
            return name
        digest = hmac.new(self.key, f"{kind}\0{name}".encode(), hashlib.sha256).hexdigest()
        hashed = f"{kind}-{digest[:12]}"
        self.mapping[kind][name] = hashed
        return hashed

    def labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {k: self("v", v) if v else v for k, v in labels.items()}


# --- building the document -----------------------------------------------------------------


@dataclass
class Snapshot:
    """The scenario document, what it could not reproduce, and (anonymized) the names."""

    document: Doc
    notes: list[str]
    names: dict[str, dict[str, str]] = field(default_factory=dict)


def _quantity_cpu(milli: int) -> str:
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _quantity_bytes(n: int) -> str:
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def _requests(r: Resources) -> dict[str, str]:
    out = {}
    if r.cpu_milli:
        out["cpu"] = _quantity_cpu(r.cpu_milli)
    if r.memory:
        out["memory"] = _quantity_bytes(r.memory)
    return out


def _family(node: NodeState) -> str:
    if node.packages is not None:
        return str(node.packages.os_family)
    return "rhel" if node.os_image.lower().startswith(RHEL_IMAGES) else "debian"


def _plain(version: KubeVersion | None, fallback: str) -> str:
    return version.plain if version is not None else fallback.lstrip("v")


def _node(n: NodeState, raw: Obj | None, cluster: Mapping[str, str], names: Names
          ) -> tuple[Doc, list[Doc]]:
    """The `nodes[]` entry of `n` and the faults that reproduce its host hazards."""
    family = _family(n)
    p = n.packages
    kubelet = _plain(n.kubelet, cluster["kubernetesVersion"])
    packages = {"kubeadm": kubelet, "kubelet": kubelet, "kubectl": kubelet}
    if p is not None:
        packages.update({k: v for k, v in (("kubeadm", p.kubeadm), ("kubelet", p.kubelet),
                                           ("kubectl", p.kubectl)) if v})
    name = names("node", n.name)
    entry: Doc = {"name": name, "roles": list(n.roles),
                  "os": {"family": family, "image": n.os_image or "unknown",
                         "kernel": n.kernel or "unknown"},
                  "runtime": n.container_runtime or "containerd://1.7.13",
                  "packages": packages}
    if p is not None:
        if p.repo_minor is not None:
            entry["repo"] = {"minor": str(p.repo_minor), "legacy": p.repo_legacy}
        # On RHEL the pin is the repository's exclude= line (the lab writes it) and dnf
        # versionlocks are a fault of their own; on Debian, apt-mark holds.
        entry["holds"] = [] if family == "rhel" else list(p.held)
        preferences = _apt_preferences(p)
        if preferences:
            entry["aptPreferences"] = preferences
    images = {}
    for component, image in n.control_plane_images:
        default = cluster["etcd"] if component == "etcd" else cluster["kubernetesVersion"]
        tag = image_tag(image)
        if tag and tag != default:
            images[component] = tag
    if images:
        entry["controlPlaneImages"] = images
    a = n.allocatable
    if a.cpu_milli or a.memory or a.pods:
        entry["capacity"] = {"cpu": _quantity_cpu(a.cpu_milli or 4000),
                             "memory": _quantity_bytes(a.memory or 8 * 2**30),
                             "pods": a.pods or 110}
    entry["unschedulable"] = not n.schedulable
    if not n.ready:
        entry["ready"] = False
    labels = {k: v for k, v in n.labels if not k.startswith(OWN_LABEL_PREFIXES)}
    if labels:
        entry["labels"] = names.labels(labels)
    taints = [{"key": t["key"], **({"value": names("v", t["value"])} if t.get("value") else {}),
               "effect": t["effect"]}
              for t in (raw.spec.taints if raw else []) if t.get("key") not in OWN_TAINTS]
    if taints:
        entry["taints"] = taints
    faults: list[Doc] = []
    host = n.host
    if host is not None and host.extra_args:
        faults.append({"kind": "kubelet-extra-args", "node": name,
                       "args": " ".join(host.extra_args)})
    if host is not None and host.cgroup_v1:
        faults.append({"kind": "cgroup-v1", "node": name})
    if p is not None:
        if p.dnf5:
            faults.append({"kind": "dnf5", "node": name})
        if p.locked:
            faults.append({"kind": "versionlock", "node": name})
        if p.key_found is False:
            faults.append({"kind": "repo-key", "node": name, "state": "missing"})
        elif p.key_expired:
            faults.append({"kind": "repo-key", "node": name, "state": "expired"})
    return entry, faults


def _apt_preferences(p: NodePackages) -> dict[str, str]:
    """The apt preferences files that pin Kubernetes packages, written back stanza by stanza
    (apt_preferences(5): Package, Pin, Pin-Priority), the file's other stanzas after them."""
    pins = getattr(p, "pins", ())  # read since the apt-pins work (issue #20)
    files: dict[str, list[str]] = {}
    for pin in pins:
        files.setdefault(pin.file, []).append(
            f"Package: {' '.join(pin.packages)}\nPin: {pin.pin}\nPin-Priority: {pin.priority}")
    other = getattr(p, "pins_other", "")
    if pins and other:
        files[pins[0].file].append(other.strip())
    return {path: "\n\n".join(stanzas) + "\n" for path, stanzas in files.items()}


def _cluster(state: ClusterState) -> Doc:
    kubeadm = state.kubeadm_kubernetes_version
    first = next(iter(state.control_plane_nodes), None)
    api = first.component_version("kube-apiserver") if first else None
    version = kubeadm or api or next((n.kubelet for n in state.nodes if n.kubelet), None)
    etcd = image_tag(first.image("etcd")) if first and first.image("etcd") else None
    cluster: Doc = {"kubernetesVersion": version.full if version else "v1.28.9",
                    "coredns": state.addons.coredns or "v1.10.1", "etcd": etcd or "3.5.12-0",
                    "loadBalancer": len(state.control_plane_nodes) > 1}
    if state.addons.cni:
        name, cni_version = state.addons.cni[0]
        if _is_version(cni_version) and name.replace("-", "").isalnum():
            cluster["cni"] = {"name": name.lower(), "version": cni_version}
    proxy = state.addons.kube_proxy
    if proxy and proxy != cluster["kubernetesVersion"]:
        cluster["kubeProxy"] = proxy
    return cluster


def _is_version(tag: str) -> bool:
    try:
        parse_kube_version(tag)
    except VersionError:
        return False
    return True


@dataclass
class _Group:
    """The pods of one workload, found from their controller owner."""

    kind: str
    namespace: str
    name: str
    pods: list[PodInfo] = field(default_factory=list)
    template: Obj | None = None


def _groups(state: ClusterState, objects: Mapping[str, list[Obj]], notes: list[str]
            ) -> dict[tuple[str, str, str], _Group]:
    rs_owner = {}
    for rs in objects.get("replicasets", []):
        owner = controller_of(rs.metadata.ownerReferences)
        rs_owner[(rs.metadata.namespace, rs.metadata.name)] = (
            ("Deployment", owner.name) if owner and owner.kind == "Deployment"
            else ("Deployment", rs.metadata.name))
    addons = _addon_keys(state, objects)
    groups: dict[tuple[str, str, str], _Group] = {}
    skipped: Counter[str] = Counter()
    for p in state.pods:
        if p.mirror or p.terminal:
            continue
        if p.owner_kind == "ReplicaSet":
            kind, name = rs_owner.get((p.namespace, p.owner_name or ""),
                                      ("Deployment", p.owner_name or ""))
        elif p.owner_kind in ("StatefulSet", "DaemonSet", "Cluster"):
            kind, name = ("CNPGCluster" if p.owner_kind == "Cluster" else p.owner_kind,
                          p.owner_name or "")
        elif p.owner_kind is None:
            kind, name = "Pod", p.name
        else:
            skipped[p.owner_kind] += 1
            continue
        if (kind, p.namespace, name) in addons:
            continue
        if p.node is None:
            skipped["unscheduled"] += 1
            continue
        groups.setdefault((kind, p.namespace, name), _Group(kind, p.namespace, name)
                          ).pods.append(p)
    for what, count in sorted(skipped.items()):
        notes.append(f"{count} pod{'s' * (count > 1)} "
                     + ("not scheduled" if what == "unscheduled" else f"owned by a {what}")
                     + " not reproduced")
    by_key = {(kind, o.metadata.namespace, o.metadata.name): o
              for res, kind in (("deployments", "Deployment"), ("statefulsets", "StatefulSet"),
                                ("daemonsets", "DaemonSet"), ("cnpg", "CNPGCluster"))
              for o in objects.get(res, [])}
    for key, g in groups.items():
        g.template = by_key.get(key)
    return groups


def _addon_keys(state: ClusterState, objects: Mapping[str, list[Obj]]
                ) -> set[tuple[str, str, str]]:
    """kube-proxy, the CNI's DaemonSets and CoreDNS: the lab builds these itself."""
    keys = {("DaemonSet", "kube-system", "kube-proxy"), ("Deployment", "kube-system", "coredns")}
    for ds in objects.get("daemonsets", []):
        if ds.metadata.namespace == "kube-system" and any(
                name in c.image for c in ds.spec.template.spec.containers
                for name, _ in state.addons.cni):
            keys.add(("DaemonSet", "kube-system", ds.metadata.name))
    for d in objects.get("deployments", []):
        if d.metadata.namespace == "kube-system" and \
                d.spec.template.metadata.labels.get("k8s-app") == "kube-dns":
            keys.add(("Deployment", "kube-system", d.metadata.name))
    return keys


def _pod_labels(g: _Group) -> dict[str, str]:
    if g.template is not None and g.template.spec.template.metadata.labels:
        labels = dict(g.template.spec.template.metadata.labels)
    else:
        labels = dict(g.pods[0].labels)
    return {k: v for k, v in labels.items() if k not in CONTROLLER_LABELS}


def _tolerations(raw: Iterable[Mapping[str, Any]], names: Names) -> list[dict[str, str]]:
    return [{k: names("v", str(v)) if k == "value" and v else str(v)
             for k, v in t.items() if v is not None and v != ""} for t in raw]


def _workload(g: _Group, all_nodes: int, names: Names) -> Doc:
    ns, name = names("ns", g.namespace), names("w", g.name)
    d: Doc = {"kind": g.kind, "namespace": ns, "name": name}
    pods = sorted(g.pods, key=lambda p: _ordinal(p.name))
    if g.kind in ("Deployment", "StatefulSet"):
        d["replicas"] = len(pods)
    if g.kind == "CNPGCluster":
        d["instances"] = len(pods)
        if g.template is not None:
            d["enablePDB"] = g.template.spec.enablePDB
        primary = g.template.status.currentPrimary if g.template else None
        pods.sort(key=lambda p: p.name != primary)
    image = _image(g)
    if image and names.key is None:
        d["image"] = image
    requests = _requests(pods[0].requests)
    if requests:
        d["requests"] = requests
    labels = _pod_labels(g)
    if labels and labels != {"app": g.name} and g.kind not in ("CNPGCluster",) \
            and names.key is None:
        d["labels"] = labels
    d["emptyDir"] = pods[0].empty_dir
    if g.kind == "Pod":
        d["node"] = names("node", pods[0].node or "")
    elif g.kind != "DaemonSet" or len(pods) < all_nodes:
        d["placement"] = [names("node", p.node or "") for p in pods]
    spec = g.template.spec.template.spec if g.template else None
    if spec is not None and g.kind != "CNPGCluster":
        if spec.nodeSelector:
            d["nodeSelector"] = names.labels(spec.nodeSelector)
        if spec.tolerations:
            d["tolerations"] = _tolerations(spec.tolerations, names)
    return d


def _ordinal(pod: str) -> tuple[int, str]:
    tail = pod.rsplit("-", 1)[-1]
    return (int(tail), pod) if tail.isdigit() else (0, pod)


def _image(g: _Group) -> str | None:
    if g.template is None:
        return None
    if g.kind == "CNPGCluster":
        return g.template.spec.imageName or None
    containers = g.template.spec.template.spec.containers
    return containers[0].image if containers else None


def _attach_pdbs(state: ClusterState, objects: Mapping[str, list[Obj]],
                 groups: Mapping[tuple[str, str, str], _Group], docs: Mapping[tuple[str, str, str],
                                                                         Doc],
                 names: Names, notes: list[str]) -> None:
    """Each PDB onto the one workload whose pods it covers (CloudNativePG's own PDBs are the
    lab's to make)."""
    owner_of = {f"{g.namespace}/{p.name}": key for key, g in groups.items() for p in g.pods}
    specs = {(o.metadata.namespace, o.metadata.name): o.spec for o in objects.get("pdbs", [])}
    for pdb in state.pdbs:
        if pdb.owner and pdb.owner.startswith("Cluster/"):
            continue
        owners = {owner_of.get(p) for p in pdb.pods}
        spec = specs.get((pdb.namespace, pdb.name))
        key = next(iter(owners)) if len(owners) == 1 else None
        if key is None or spec is None or "pdb" in docs[key]:
            why = ("covers no pod" if not owners else "covers pods of several workloads"
                   if len(owners) > 1 or None in owners else "a second PDB on one workload")
            notes.append(f"PDB {names('ns', pdb.namespace)}/{names('w', pdb.name)} not "
                         f"reproduced ({why})")
            continue
        bound = ({"minAvailable": spec.minAvailable} if spec.minAvailable is not None
                 else {"maxUnavailable": spec.maxUnavailable})
        if key[0] in ("Pod", "DaemonSet") and not isinstance(bound.get("minAvailable"), int):
            notes.append(f"PDB {names('ns', pdb.namespace)}/{names('w', pdb.name)} not "
                         f"reproduced (on a {key[0]} the lab takes only an integer "
                         "minAvailable)")
            continue
        if key[2] != pdb.name:
            bound = {"name": names("w", pdb.name), **bound}
        docs[key]["pdb"] = bound


def build_snapshot(facts: ClusterFacts, *, name: str = "snapshot",
                   anonymize_key: bytes | None = None,
                   max_pods_per_node: int | None = None) -> Snapshot:
    """The scenario document of `facts` (pure)."""
    state, objects = facts.state, facts.objects
    names = Names(anonymize_key)
    notes: list[str] = []
    cluster = _cluster(state)
    raw_nodes = {o.metadata.name: o for o in objects.get("nodes", [])}
    nodes, faults = [], []
    for n in state.nodes:
        entry, node_faults = _node(n, raw_nodes.get(n.name), cluster, names)
        nodes.append(entry)
        faults += node_faults
    groups = _groups(state, objects, notes)
    if max_pods_per_node is not None:
        _sample(groups, max_pods_per_node, notes)
    docs = {key: _workload(g, len(state.nodes), names) for key, g in groups.items() if g.pods}
    _attach_pdbs(state, objects, groups, docs, names, notes)
    applied = {(m.kind, m.namespace, m.name): m.api_version for m in state.manifests
               if m.source == "last-applied" and m.kind in APPLIED_KINDS}
    for (kind, ns, wname), d in docs.items():
        if (kind, ns, wname) in applied and kind != "CNPGCluster":
            d["appliedApiVersion"] = applied[(kind, ns, wname)]
    workloads = [docs[k] for k in sorted(docs)]
    used = {(d["namespace"], d["name"]) for d in workloads}
    for r in facts.helm:
        key = (names("ns", r.namespace), names("w", r.name))
        if key in used:
            notes.append(f"Helm release {key[0]}/{key[1]} not reproduced (a workload has its "
                         "name)")
            continue
        workloads.append({"kind": "HelmRelease", "namespace": key[0], "name": key[1],
                          "chart": names("w", r.chart),
                          "objects": [{"apiVersion": a, "kind": k, "name": names("w", o)}
                                      for a, k, o in r.objects]})
    doc: Doc = {"apiVersion": "kubehop.dev/v1", "kind": "LabScenario", "name": name,
                "description": f"Snapshot: {len(nodes)} nodes, {len(workloads)} workloads",
                "cluster": cluster, "nodes": nodes, "workloads": workloads, "faults": faults}
    if not state.nodes_observed:
        notes.append("no SSH inventory: packages, repositories and holds are kubeadm's "
                     "defaults for each node's kubelet version")
    return Snapshot(doc, notes, {k: dict(v) for k, v in names.mapping.items()})


def _sample(groups: Mapping[tuple[str, str, str], _Group], limit: int,
            notes: list[str]) -> None:
    """Keep at most `limit` non-DaemonSet pods per node (in workload order), drop the rest."""
    per_node: Counter[str] = Counter()
    dropped = 0
    for key in sorted(groups):
        g = groups[key]
        if g.kind == "DaemonSet":
            continue
        kept = []
        for p in sorted(g.pods, key=lambda p: _ordinal(p.name)):
            if per_node[p.node or ""] < limit:
                per_node[p.node or ""] += 1
                kept.append(p)
            else:
                dropped += 1
        g.pods = kept
    if dropped:
        notes.append(f"sampled: {dropped} pods left out (--max-pods-per-node {limit})")


def names_document(snap: Snapshot, key: bytes) -> Doc:
    """The mapping file of an anonymized snapshot: the key and original → hashed names."""
    return {"apiVersion": "kubehop.dev/v1", "kind": "SnapshotNames", "key": key.hex(),
            "hash": "HMAC-SHA256(key, kind + NUL + name), first 12 hex digits",
            "names": snap.names}

