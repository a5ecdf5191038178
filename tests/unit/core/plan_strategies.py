"""Hypothesis strategies and builders for clusters to plan: kubeadm clusters whose versions the
skew policy allows, Debian and RHEL nodes, Deployments with PDBs, DaemonSets, CloudNativePG."""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

from kubehop.core.node_commands import package_version
from kubehop.core.skew import kubeadm_kubelet_lag, max_kubelet_lag
from kubehop.data import load_release_data
from kubehop.model.cluster import (
    ApiServerInfo,
    ClusterState,
    DatabaseInfo,
    NodePackages,
    NodeState,
    OsFamily,
    PdbInfo,
    PodInfo,
    Resources,
)
from kubehop.model.releases import ReleaseData
from kubehop.model.versions import KubeVersion, MinorVersion, parse_kube_version

CP_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
HELD = ("kubeadm", "kubelet", "kubectl")
ALLOC = Resources(4000, 16 * 2**30, 110)
REQ = Resources(100, 128 * 2**20, 0)


@cache
def release_data() -> ReleaseData:
    return load_release_data()


def newest(minor: MinorVersion) -> KubeVersion:
    patch = release_data().latest_patch(minor)
    assert patch is not None
    return patch


def images(version: KubeVersion, **override: str) -> tuple[tuple[str, str], ...]:
    out = {c: f"registry.k8s.io/{c}:{version}" for c in CP_COMPONENTS}
    out["etcd"] = "registry.k8s.io/etcd:3.5.12-0"
    out.update({k.replace("_", "-"): f"registry.k8s.io/{k.replace('_', '-')}:{v}"
                for k, v in override.items()})
    return tuple(out.items())


def packages(family: OsFamily, kubeadm: KubeVersion, kubelet: KubeVersion,
             repo: MinorVersion | None = None, legacy: bool = False) -> NodePackages:
    fam = str(family)
    return NodePackages(family, package_version(kubeadm.plain, fam),
                        package_version(kubelet.plain, fam), package_version(kubelet.plain, fam),
                        repo or kubeadm.minor_version, legacy, HELD, kubeadm)


def cp_node(name: str, version: KubeVersion, kubelet: KubeVersion | None = None, *,
            family: OsFamily = OsFamily.DEBIAN, known: bool = True,
            **image_override: str) -> NodeState:
    kubelet = kubelet or version
    return NodeState(name=name, roles=("control-plane",), kubelet=kubelet, kube_proxy=version,
                     control_plane_images=images(version, **image_override), allocatable=ALLOC,
                     packages=packages(family, version, kubelet) if known else None)


def worker(name: str, kubelet: KubeVersion, kube_proxy: KubeVersion,
           kubeadm: KubeVersion | None = None, *, family: OsFamily = OsFamily.DEBIAN,
           known: bool = True, schedulable: bool = True) -> NodeState:
    return NodeState(name=name, kubelet=kubelet, kube_proxy=kube_proxy, allocatable=ALLOC,
                     schedulable=schedulable,
                     packages=packages(family, kubeadm or kubelet, kubelet) if known else None)


def cluster(nodes: list[NodeState], version: KubeVersion, pods: tuple[PodInfo, ...] = (),
            pdbs: tuple[PdbInfo, ...] = (),
            databases: tuple[DatabaseInfo, ...] = ()) -> ClusterState:
    apiservers = tuple(ApiServerInfo(f"127.77.0.{i + 1}:6443", n.name,
                                     n.component_version("kube-apiserver"))
                       for i, n in enumerate(x for x in nodes if x.is_control_plane))
    return ClusterState(apiservers=apiservers, nodes=tuple(nodes),
                        kubeadm_kubernetes_version=version, pods=pods, pdbs=pdbs,
                        databases=databases, workloads_observed=True)


def deployment(ns: str, name: str, nodes: list[str], pdb_budget: int | None = 1,
               req: Resources = REQ) -> tuple[list[PodInfo], list[PdbInfo]]:
    pods = [PodInfo(ns, f"{name}-{i}", n, "ReplicaSet", f"{name}-rs", requests=req)
            for i, n in enumerate(nodes)]
    pdbs = []
    if pdb_budget is not None:
        pdbs.append(PdbInfo(ns, name, tuple(p.key for p in pods), len(pods),
                            max(0, len(pods) - pdb_budget), len(pods), pdb_budget))
    return pods, pdbs


def daemonset(ns: str, name: str, nodes: list[str]) -> list[PodInfo]:
    return [PodInfo(ns, f"{name}-{n}", n, "DaemonSet", name) for n in nodes]


def oldversion_state() -> ClusterState:
    """The lab's `oldversion` scenario as an observed state: kubeadm v1.28.9, one control plane,
    two workers, web/frontend (3 replicas, PDB maxUnavailable 1), node-exporter, a bare
    emptyDir pod, CloudNativePG db/pg (primary on oldversion2)."""
    v = parse_kube_version("v1.28.9")
    nodes = [cp_node("oldversion1", v), worker("oldversion2", v, v), worker("oldversion3", v, v)]
    names = [n.name for n in nodes]
    web, web_pdb = deployment("web", "frontend", ["oldversion2", "oldversion3", "oldversion2"])
    pg = [PodInfo("db", f"pg-{i + 1}", n, "Cluster", "pg", requests=Resources(250, 512 * 2**20))
          for i, n in enumerate(["oldversion2", "oldversion3", "oldversion3"])]
    pods = (*web, *daemonset("monitoring", "node-exporter", names), *pg,
            PodInfo("default", "scratch", "oldversion3", empty_dir=True))
    pdbs = (*web_pdb, PdbInfo("db", "pg-primary", ("db/pg-1",), 1, 1, 1, 0, owner="Cluster/pg"),
            PdbInfo("db", "pg", ("db/pg-2", "db/pg-3"), 2, 1, 2, 1, owner="Cluster/pg"))
    return cluster(nodes, v, pods, pdbs, (DatabaseInfo("db", "pg", 3, "pg-1", "oldversion2"),))


# --- random clusters -------------------------------------------------------------------------

FIRST_MINOR, LAST_MINOR = 24, 33  # minors with full release data around them


def _valid_kubelets(cluster_minor: int, kubeadm_minor: int) -> list[int]:
    """Kubelet minors allowed beside apiservers and kube-proxy at `cluster_minor` and a kubeadm
    at `kubeadm_minor` (skew policy and kubeadm's own kubelet skew)."""
    out = []
    for k in range(cluster_minor - 3, kubeadm_minor + 1):
        km = MinorVersion(1, k)
        if (cluster_minor - k <= max_kubelet_lag(km)
                and cluster_minor - k <= max_kubelet_lag(MinorVersion(1, cluster_minor))
                and kubeadm_minor - k <= kubeadm_kubelet_lag(MinorVersion(1, kubeadm_minor))):
            out.append(k)
    return out


def _patch(draw: st.DrawFn, minor: int) -> KubeVersion:
    patches = release_data().patches(MinorVersion(1, minor))
    return draw(st.sampled_from(patches))


@st.composite
def clusters(draw: st.DrawFn, max_workers: int = 200) -> tuple[ClusterState, str]:
    """(a skew-valid kubeadm cluster, a reachable target)."""
    c_minor = draw(st.integers(FIRST_MINOR, LAST_MINOR - 1))
    version = _patch(draw, c_minor)
    cps = draw(st.integers(1, 5))
    n_workers = draw(st.integers(0, max_workers) | st.integers(0, 8))
    families = st.sampled_from([OsFamily.DEBIAN, OsFamily.RHEL])
    nodes: list[NodeState] = []
    for i in range(cps):
        kubelet_minor = draw(st.sampled_from(_valid_kubelets(c_minor, c_minor)))
        kubelet = _patch(draw, kubelet_minor)
        if kubelet > version:
            kubelet = version
        drift = {}
        if draw(st.integers(0, 9)) == 0:  # a hand-edited manifest: a newer patch or minor
            drift["kube_apiserver"] = str(draw(st.sampled_from(
                [newest(version.minor_version), newest(version.minor_version + 1)])))
        nodes.append(cp_node(f"cp{i + 1}", version, kubelet, family=draw(families),
                             known=draw(st.booleans() | st.just(True)), **drift))
    precordon = draw(st.integers(0, max(0, n_workers - 2))) if n_workers >= 3 else 0
    for i in range(n_workers):
        kubeadm_minor = draw(st.sampled_from([c_minor - 1, c_minor]))
        kubelet_minor = draw(st.sampled_from(_valid_kubelets(c_minor, kubeadm_minor)))
        kubelet = min(_patch(draw, kubelet_minor), version)
        kubeadm = min(_patch(draw, kubeadm_minor), version)
        if kubeadm < kubelet:
            kubeadm = kubelet
        nodes.append(worker(f"w{i:03d}", kubelet, version, kubeadm, family=draw(families),
                            known=draw(st.integers(0, 9)) > 0,
                            schedulable=i >= precordon))
    names = [n.name for n in nodes]
    workers = [n.name for n in nodes if not n.is_control_plane]
    pods: list[PodInfo] = [*daemonset("monitoring", "node-exporter", names)]
    pdbs: list[PdbInfo] = []
    dbs: list[DatabaseInfo] = []
    if len(workers) >= 2:
        for d in range(draw(st.integers(0, min(6, len(workers))))):
            replicas = draw(st.integers(2, min(8, len(workers) * 2)))
            spread = [workers[(d * 3 + r * 5) % len(workers)] for r in range(replicas)]
            budget = draw(st.sampled_from([None, 1, 2]))
            p, b = deployment(f"ns{d}", f"app{d}", spread, budget)
            pods += p
            pdbs += b
        if draw(st.booleans()):
            primary = draw(st.sampled_from(workers))
            pods.append(PodInfo("db", "pg-1", primary, "Cluster", "pg",
                                requests=Resources(250, 2**29)))
            dbs.append(DatabaseInfo("db", "pg", 3, "pg-1", primary))
    state = cluster(nodes, version, tuple(pods), tuple(pdbs), tuple(dbs))
    top = min(c_minor + 3, LAST_MINOR)
    target_minor = draw(st.integers(c_minor, top))
    target = draw(st.sampled_from([f"1.{target_minor}", str(newest(MinorVersion(1, target_minor))),
                                   f"1.{target_minor}"]))
    return state, target
