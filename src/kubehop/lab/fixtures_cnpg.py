"""A CloudNativePG cluster at steady state, for `fixtures.populate`.

What the operator (`kubehop.lab.controllers.cnpg`) would have built and left healthy: the
`clusters.postgresql.cnpg.io` object with its status, instance pods `<name>-1 … <name>-N`
(`<name>-1` the primary, on `primary_node` when given, the replicas spread over other nodes as
the default preferred anti-affinity does), and the PDBs of `kubehop.lab.cnpg.desired_pdbs`
with the status the disruption controller computes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubehop.lab import cnpg as logic
from kubehop.lab import objects as o
from kubehop.lab.disruption import compute_pdb_status, scale_resolver

if TYPE_CHECKING:
    from kubehop.lab.fixtures import WorkloadSpec, _Builder

Obj = dict[str, Any]
CLUSTERS = "clusters.postgresql.cnpg.io"
DEFAULT_IMAGE = "ghcr.io/cloudnative-pg/postgresql:16.2"
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"  # WorkloadSpec's default image: "none given"


def cluster_object(w: WorkloadSpec, image: str, created: str) -> Obj:
    """The Cluster as a user applies it, with the operator's healthy status."""
    names = [f"{w.name}-{i}" for i in range(1, w.replicas + 1)]
    spec: Obj = {"instances": w.replicas, "imageName": image, "enablePDB": w.enable_pdb,
                 "primaryUpdateStrategy": "unsupervised", "stopDelay": 1800,
                 "storage": {"size": "1Gi"}}
    if w.requests:
        spec["resources"] = {"requests": dict(w.requests)}
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": o.meta(w.name, w.namespace, labels=w.labels or None, created=created),
        "spec": spec,
        "status": {
            "instances": w.replicas, "readyInstances": w.replicas,
            "currentPrimary": names[0], "targetPrimary": names[0],
            "currentPrimaryTimestamp": created, "latestGeneratedNode": w.replicas,
            "instanceNames": names, "instancesStatus": {"healthy": names, "failed": []},
            "phase": "Cluster in healthy state",
        },
    }


def _volumes(name: str, empty_dir: bool) -> list[Obj]:
    """PGDATA on its PVC; CNPG's `scratch-data` and `shm` are emptyDirs (drain needs
    --delete-emptydir-data)."""
    volumes: list[Obj] = [{"name": "pgdata", "persistentVolumeClaim": {"claimName": name}}]
    if empty_dir:
        volumes += [{"name": "scratch-data", "emptyDir": {}},
                    {"name": "shm", "emptyDir": {"medium": "Memory"}}]
    return volumes


def cnpg_cluster(b: _Builder, w: WorkloadSpec) -> None:
    """Add the Cluster, its instance pods and its PDBs to the builder's store."""
    image = DEFAULT_IMAGE if w.image in (None, "", PAUSE_IMAGE) else w.image
    cluster = b.add(CLUSTERS, cluster_object(w, image, b.created))
    mounts = [{"name": "pgdata", "mountPath": "/var/lib/postgresql/data"}]
    if w.empty_dir:
        mounts += [{"name": "scratch-data", "mountPath": "/run"},
                   {"name": "shm", "mountPath": "/dev/shm"}]
    used: set[str] = set()
    pods = []
    for i in range(1, w.replicas + 1):
        name = f"{w.name}-{i}"
        role = logic.PRIMARY if i == 1 else logic.REPLICA
        node = w.primary_node if i == 1 and w.primary_node else b.place(w, avoid=used)
        used.add(node)
        container = o.container("postgres", image, requests=w.requests or None,
                                volume_mounts=mounts)
        container["ports"] = [{"name": "postgresql", "containerPort": 5432, "protocol": "TCP"}]
        labels = {logic.CLUSTER_LABEL: w.name, logic.POD_ROLE_LABEL: "instance",
                  logic.INSTANCE_ROLE_LABEL: role, "role": role, "cnpg.io/instanceName": name}
        pod = o.pod(w.namespace, name, node_name=node, host_ip=b.node_ip(node),
                    pod_ip=b.pod_ip(node), containers=[container], labels=labels, owner=cluster,
                    volumes=_volumes(name, w.empty_dir), created=b.created)
        pod["spec"].update(terminationGracePeriodSeconds=1800, hostname=name)
        pods.append(b.add("pods", pod))
    resolve = scale_resolver([cluster])
    for pdb in logic.desired_pdbs(cluster):
        pdb["metadata"].update(uid=o.stable_uid(w.namespace, "pdb", pdb["metadata"]["name"]),
                               creationTimestamp=b.created, generation=1)
        pdb["status"] = compute_pdb_status(pdb, pods, resolve, b.created_at)
        b.add("poddisruptionbudgets.policy", pdb)

