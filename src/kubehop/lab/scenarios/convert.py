"""A validated `Scenario` as the fixture builder's `ClusterSpec` (which `populate()` loads)."""

from __future__ import annotations

from kubehop.lab.fixtures.specs import (
    ClusterSpec,
    FaultSpec,
    LabNodeSpec,
    LabPdbSpec,
    LabWorkloadSpec,
)
from kubehop.lab.scenarios.schema import Node, Scenario, ScenarioWorkload
from kubehop.model.versions import parse_deb_version

# Images when a workload names none (what the classic training cluster runs).
DEFAULT_IMAGES = {
    "Deployment": "docker.io/library/nginx:1.25.4",
    "StatefulSet": "docker.io/library/redis:7.2.4",
    "DaemonSet": "quay.io/prometheus/node-exporter:v1.7.0",
    "Pod": "docker.io/library/busybox:1.36",
    "CNPGCluster": "ghcr.io/cloudnative-pg/postgresql:16.2",
    "HelmRelease": "",
}


def _node(n: Node) -> LabNodeSpec:
    kubelet = parse_deb_version(n.packages.kubelet).kube_version()
    return LabNodeSpec(
        name=n.name, roles=n.roles, kubelet_version=str(kubelet), kube_proxy_version=None,
        os_image=n.os.image, kernel_version=n.os.kernel, container_runtime=n.runtime,
        cpu=n.capacity.cpu, memory=n.capacity.memory, pods=str(n.capacity.pods),
        unschedulable=n.unschedulable, control_plane_images=dict(n.control_plane_images),
        count=n.count, os_family=n.os.family, packages=n.packages.as_dict(),
        repo_minor=n.repo.minor, repo_legacy=n.repo.legacy, holds=n.holds,
        labels=dict(n.labels), taints=tuple(t.to_dict() for t in n.taints), ready=n.ready,
    )


def _workload(w: ScenarioWorkload) -> LabWorkloadSpec:
    pdb = None
    if w.pdb is not None:
        pdb = LabPdbSpec(min_available=w.pdb.min_available, max_unavailable=w.pdb.max_unavailable,
                      name=w.pdb.name)
    return LabWorkloadSpec(
        kind=w.kind, namespace=w.namespace, name=w.name, replicas=w.replicas,
        image=w.image or DEFAULT_IMAGES[w.kind], requests=dict(w.requests),
        empty_dir=w.empty_dir, node=w.node, labels=dict(w.labels), pdb=pdb,
        primary_node=w.primary_node, enable_pdb=w.enable_pdb,
        applied_api_version=w.applied_api_version, chart=w.chart, objects=w.objects,
        placement=w.placement, node_selector=dict(w.node_selector), tolerations=w.tolerations,
    )


def to_cluster_spec(scenario: Scenario) -> ClusterSpec:
    """The `ClusterSpec` of `scenario`, for
    `kubehop.lab.fixtures.cluster.populate(to_cluster_spec(sc), store)`."""
    c = scenario.cluster
    return ClusterSpec(
        nodes=tuple(_node(n) for n in scenario.nodes),
        kubernetes_version=c.kubernetes_version,
        etcd_version=c.etcd,
        coredns_version=c.coredns,
        cni=(c.cni.name, c.cni.version),
        workloads=tuple(_workload(w) for w in scenario.workloads),
        name=scenario.name,
        kube_proxy_version=c.kube_proxy,
        load_balancer=c.load_balancer,
        timing=scenario.timing.to_dict(),
        faults=tuple(FaultSpec(f.kind, f.node, dict(f.options)) for f in scenario.faults),
    )
