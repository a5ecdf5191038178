"""etcd-snapshot: save and verify an etcd snapshot on the first control plane before
`kubeadm upgrade apply` (stacked etcd only).

kubeadm's stacked etcd serves clients on 127.0.0.1:2379 with TLS; the healthcheck-client
certificate is the one kubeadm's own etcd liveness probe uses (kubernetes/kubernetes
cmd/kubeadm/app/phases/etcd/local.go, cmd/kubeadm/app/constants/constants.go). The etcd
static pod mounts only /var/lib/etcd and /etc/kubernetes/pki/etcd, so the snapshot is written
under the data directory and moved out of it: kubeadm copies the whole data directory to
/etc/kubernetes/tmp/kubeadm-backup-etcd-<date> before it upgrades etcd."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from kubehop.core.steps.base import Estimate, Problem, SimNode, Simulation
from kubehop.model.cluster import NodeState
from kubehop.model.plan import Command, ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.ETCD_SNAPSHOT
EXPECT_KEYS = frozenset({ExpectKey.ETCD_SNAPSHOT})
LOCAL = False
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
def commands(version: KubeVersion) -> tuple[Command, ...]:
    """Save a snapshot with etcdctl (etcd-io/etcd etcdctl/README.md `snapshot save`), verify it
    with etcdutl (`snapshot status -w json`: hash, revision, total keys), keep it under
    `ETCD_SNAPSHOT_DIR`. The executor runs the etcd tools in the etcd container when the node
    has no etcdctl of its own (`crictl exec`)."""
    return (Command(("mkdir", "-p", ETCD_SNAPSHOT_DIR)),
            Command(("etcdctl", *ETCDCTL_TLS, "snapshot", "save", ETCD_SNAPSHOT_PART)),
            Command(("etcdutl", "snapshot", "status", ETCD_SNAPSHOT_PART, "-w", "json")),
            Command(("mv", ETCD_SNAPSHOT_PART, etcd_snapshot_path(version))))


def description(version: KubeVersion) -> str:
    return (f"save and verify an etcd snapshot in {etcd_snapshot_path(version)} (restore point "
            f"before kubeadm upgrades etcd and the control plane to {version})")


def expect(version: KubeVersion) -> dict[ExpectKey, ExpectValue]:
    return {ExpectKey.ETCD_SNAPSHOT: etcd_snapshot_path(version)}


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    """Changes no simulated state: only this step leaves a snapshot file (`etcdSnapshot`)."""
    return []


def cost(step: Step, est: Estimate) -> float:
    return est.costs.api_call
