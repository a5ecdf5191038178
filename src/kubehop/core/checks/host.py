"""Checks of how each node's kubelet starts (`host.*`), of the kubectl on the nodes
(`skew.node-kubectl`) and of the space for the etcd snapshot (`node.disk-etcd-snapshot`), from
the host and package facts read over SSH.

A kubelet that cannot start after its upgrade leaves a drained node NotReady, so these findings
block before anything is drained: kubelet flags a newer minor removed (the release data's
`kubeletRemovedFlags`) and host requirements a newer kubelet has (`hostRequirements`: cgroup v2
from 1.35). With `--to`, the target's minor is judged; without it, the next minor (a warning).
The space rule of the etcd snapshot step lives here too (`etcd_snapshot_space`), so the check
and the step (`kubehop.shell.steps.etcd_snapshot`) agree on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubehop.core.checks.common import grouped, package_kube_version
from kubehop.core.steps.etcd_snapshot import ETCD_SNAPSHOT_DIR, stacked_etcd
from kubehop.model.cluster import ClusterState, NodeState
from kubehop.model.findings import Finding, Severity
from kubehop.model.releases import HostRequirement, KubeletFlagRemoval, ReleaseData
from kubehop.model.versions import KubeVersion, MinorVersion


def host_findings(state: ClusterState, data: ReleaseData, current: KubeVersion | None,
                  target: KubeVersion | None) -> list[Finding]:
    """Removed kubelet flags and unmet host requirements for the kubelet of `target`'s minor
    (blocking), or of the minor after `current` without a target (warning); nodes' kubectl
    outside the skew window of the apiservers; too little space for the etcd snapshot."""
    out = node_kubectl_findings(state) + etcd_space_findings(state, current, target)
    if target is not None:
        minor, severity = target.minor_version, Severity.BLOCKING
    elif current is not None:
        minor, severity = current.minor_version + 1, Severity.WARNING
    else:
        return out
    nodes = [n for n in state.nodes if n.host is not None]
    for removal in data.kubelet_removed_flags:
        if removal.removed_in <= minor:
            out += _removed_flag(removal, nodes, minor, severity)
    for requirement in data.host_requirements:
        if requirement.since <= minor and requirement.requirement == "cgroupV2":
            out += _cgroup_v2(requirement, nodes, minor, severity)
    return out


def passes_flag(args: tuple[str, ...], flag: str) -> bool:
    """Whether `args` pass `flag` (`--flag`, `--flag=value`; `--flag-other` is another flag)."""
    return any(a == flag or a.startswith(flag + "=") for a in args)


def _removed_flag(removal: KubeletFlagRemoval, nodes: list[NodeState], minor: MinorVersion,
                  severity: Severity) -> list[Finding]:
    by_node = {n.name: n.host.extra_args_file or "KUBELET_EXTRA_ARGS" for n in nodes
               if n.host is not None and passes_flag(n.host.extra_args, removal.flag)}
    flag = removal.flag
    return grouped(
        "host.kubelet-flag-removed", severity, by_node,
        lambda where, path: f"KUBELET_EXTRA_ARGS in {path} on {where} passes {flag}, which "
                            f"kubelet {removal.removed_in} removed: the kubelet of {minor} "
                            f"would not start after its upgrade ({removal.source})",
        lambda where, path: f"remove {flag} from KUBELET_EXTRA_ARGS in {path} on {where} "
                            f"before upgrading ({removal.fix})",
    )


def _cgroup_v2(requirement: HostRequirement, nodes: list[NodeState], minor: MinorVersion,
               severity: Severity) -> list[Finding]:
    by_node = {n.name: n.host.cgroup_fs or "" for n in nodes
               if n.host is not None and n.host.cgroup_v1}
    return grouped(
        "host.cgroup-v1", severity, by_node,
        lambda where, fs: f"{where} {'runs' if ',' not in where else 'run'} cgroup v1 "
                          f"(/sys/fs/cgroup is {fs}): the kubelet of {requirement.since} and "
                          f"later refuses to start there by default (failCgroupV1), so the "
                          f"upgrade to {minor} would leave the node NotReady "
                          f"({requirement.source})",
        lambda where, _fs: f"on {where}: {requirement.fix}",
    )


def node_kubectl_findings(state: ClusterState) -> list[Finding]:
    """kubectl packages on nodes more than one minor from an apiserver (the skew policy: kubectl
    is supported within one minor, older or newer, of kube-apiserver). A warning: kubectl on a
    node plays no part in the upgrade, but the people who use it there get errors."""
    apiservers = sorted({a.version.minor_version for a in state.apiservers
                         if a.version is not None})
    if not apiservers:
        return []
    oldest, newest = apiservers[0], apiservers[-1]
    by_node: dict[str, str] = {}
    for n in state.nodes:
        kubectl = package_kube_version(n.packages.kubectl) if n.packages else None
        if kubectl is None:
            continue
        minor = kubectl.minor_version
        if minor.major != newest.major or minor < newest - 1 or minor > oldest + 1:
            by_node[n.name] = str(minor)
    window = (f"{newest - 1} to {oldest + 1}" if newest - 1 <= oldest + 1
              else f"none: the apiservers run {oldest} to {newest}")
    return grouped(
        "skew.node-kubectl", Severity.WARNING, by_node,
        lambda where, v: f"kubectl {v} on {where} is outside the skew window of the "
                         f"apiservers (kubectl within one minor of every kube-apiserver: "
                         f"{window})",
        lambda where, _v: f"install the kubectl of the cluster's minor on {where} (kubehop "
                          f"upgrade installs kubectl with kubeadm on every node)",
    )


# --- free space for the etcd snapshot ---------------------------------------------------------
# etcd's data directory, kubeadm's default `etcd.local.dataDir` (kubernetes/kubernetes
# cmd/kubeadm/app/apis/kubeadm/v1beta4/defaults.go `DefaultEtcdDataDir`); the bolt database is
# `member/snap/db` inside it (etcd-io/etcd server/storage/datadir/datadir.go
# `ToBackendFileName`).
ETCD_DATA_DIR = "/var/lib/etcd"
ETCD_DB_FILE = f"{ETCD_DATA_DIR}/member/snap/db"
# A snapshot is at most the size of etcd's database file (`dbSize` of `endpoint status`: the
# snapshot copies the bolt database, without the free pages `dbSize - dbSizeInUse` only after
# a defragmentation); a tenth more and 16 MiB leave room for writes meanwhile.
ETCD_SNAPSHOT_MARGIN_BYTES = 16 * 1024 * 1024


def etcd_snapshot_space(db_bytes: int) -> int:
    """Bytes the etcd snapshot step wants free in etcd's data directory for a database of
    `db_bytes` (the snapshot is written there first: the etcd container mounts nothing else)."""
    return db_bytes + db_bytes // 10 + ETCD_SNAPSHOT_MARGIN_BYTES


def format_bytes(n: int) -> str:
    """`n` bytes for people (`512 B`, `4.0 MiB`, `1.5 GiB`)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def snapshot_node(control_planes: Sequence[NodeState]) -> NodeState | None:
    """The control plane the etcd snapshot runs on: the one `kubeadm upgrade apply` runs on,
    the first by name (`core.planner`)."""
    return min(control_planes, key=lambda n: n.name, default=None)


def etcd_space_findings(state: ClusterState, current: KubeVersion | None,
                        target: KubeVersion | None) -> list[Finding]:
    """Too little free space in etcd's data directory on the node of the etcd snapshot step:
    with `--to` the upgrade would halt at that step before kubeadm runs (blocking); without it,
    the next upgrade would (a warning). Nothing for external etcd (no snapshot step), for a
    target the cluster already runs (no `kubeadm upgrade apply`), or without the facts."""
    if target is not None and current is not None and target <= current:
        return []
    control_planes = [n for n in state.nodes if n.is_control_plane]
    node = snapshot_node(control_planes)
    if node is None or not stacked_etcd(control_planes) or node.host is None:
        return []
    free, db = node.host.etcd_free, node.host.etcd_db
    if free is None or db is None or free >= (need := etcd_snapshot_space(db)):
        return []
    severity = Severity.BLOCKING if target is not None else Severity.WARNING
    upgrade = f"the upgrade to {target}" if target is not None else "an upgrade"
    return [Finding(
        "node.disk-etcd-snapshot", severity, f"node/{node.name}",
        f"node {node.name} has {format_bytes(free)} free in {ETCD_DATA_DIR}, about "
        f"{format_bytes(need)} needed for the etcd snapshot kubehop saves there before "
        f"`kubeadm upgrade apply` (etcd's database is {format_bytes(db)}): {upgrade} would "
        f"halt at that step before kubeadm runs",
        f"free at least {format_bytes(need - free)} on the file system of {ETCD_DATA_DIR} on "
        f"{node.name} (old snapshots in {ETCD_SNAPSHOT_DIR}, /etc/kubernetes/tmp/kubeadm-"
        f"backup-*, unused images: `crictl rmi --prune`), then run `kubehop check` again")]
