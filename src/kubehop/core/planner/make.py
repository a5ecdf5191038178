"""The upgrade planner: observed state + target → a `Plan` that passes the simulator.

Per hop, the upstream order (kubernetes/website kubeadm-upgrade.md): the first
control plane switches its repository, installs kubeadm, runs `kubeadm upgrade plan` and
`apply`; the other control planes, one at a time, `kubeadm upgrade node`; only then — every
kube-apiserver at the new minor, or a control plane's kubelet would be newer than an apiserver —
each control plane's kubelet (drain, packages, restart, uncordon), one at a time; then workers
in waves.

Workers (`worker_strategy`):
- `every-minor` follows the guide: every worker, every hop.
- `skip` (default) upgrades a worker's kubelet once, at the last hop — or earlier, at the last
  hop where it is still allowed, when the next hop would leave it too old (skew policy: n-3,
  n-2 below 1.25; kubeadm's apply check: n-3 from 1.29, n-1 before; kube-proxy within 3 minors).
  Its kubeadm jumps with it: the worker gets the hop's kubeadm (and kubectl) and runs `kubeadm
  upgrade node` right before its drain, as the upstream worker page orders it — once per kubelet
  move. kubeadm's docs say a node's kubeadm should be the minor that last managed it or one newer
  (create-cluster-kubeadm.md, "kubeadm's skew against kubeadm"), but kubeadm's code enforces no
  such rule and a worker's `upgrade node` only rewrites the kubelet configuration
  (kubernetes/kubernetes#120825 tested it two minors apart); `strict_kubeadm_skew` follows the
  letter instead: every worker gets each hop's kubeadm and `upgrade node` (no drain).
"""

from __future__ import annotations

from collections.abc import Sequence

from kubehop.core.hops import newest_patch
from kubehop.core.kubeadm_policy import maximum_allowed_kubelet_skew
from kubehop.core.planner import nodes as pn
from kubehop.core.planner.build import PlanBuilder
from kubehop.core.planner.target import (
    Target,
    check_installed_by_kubeadm,
    refuse_blocking_findings,
    resolve,
)
from kubehop.core.simulate.run import PlanInvariantError, check_plan
from kubehop.core.skew import kubeadm_kubelet_lag, max_kubelet_lag
from kubehop.core.steps import remediate_drift
from kubehop.core.steps.base import VERSIONED_COMPONENTS, StepCosts
from kubehop.core.steps.etcd_snapshot import stacked_etcd
from kubehop.core.workloads import WorkloadIndex, build_waves
from kubehop.model.cluster import ClusterState, NodeState
from kubehop.model.cluster_codec import state_fingerprint
from kubehop.model.errors import UsageError
from kubehop.model.findings import Finding
from kubehop.model.plan import Plan, PlanOptions, StepKind
from kubehop.model.releases import ReleaseData
from kubehop.model.versions import KubeVersion, MinorVersion


def plan_upgrade(state: ClusterState, target: str | Target, release_data: ReleaseData,
                 options: PlanOptions | None = None, findings: Sequence[Finding] = (),
                 costs: StepCosts | None = None, *, memo: bool = True) -> Plan:
    """Plan the upgrade of `state` to `target` (`1.30`, `v1.30.14`, `latest`, `next-minor`,
    `latest-patch`, or a `Target` resolved already for the checks). Raises UsageError (one
    line) when it refuses. `memo=False` turns off every memo of the planner and of the
    simulator it runs (nodes in equal states share work): the same plan, slower."""
    options = options or PlanOptions()
    check_installed_by_kubeadm(state)
    refuse_blocking_findings(findings, options)
    if isinstance(target, str):
        target = resolve(state, target, release_data, options)
    cluster, final, hops = target.cluster, target.final, list(target.hops)
    warnings = list(target.warnings)
    control_planes = sorted((n for n in state.nodes if n.is_control_plane), key=lambda n: n.name)
    if not control_planes:
        raise UsageError("no control-plane node found (no node labelled "
                         "node-role.kubernetes.io/control-plane): kubehop upgrades kubeadm "
                         "clusters whose control plane runs on their nodes")
    pool = pn.ValuePool() if memo else None  # (pooling only makes comparisons cheaper)
    tracks = {n.name: pn.track_node(n, cluster, warnings, pool) for n in state.nodes}
    warnings += pn.package_warnings(state)
    index = WorkloadIndex(state)
    # By name, nodes with a CloudNativePG primary last (few: a stable partition of the sort).
    names = sorted(n.name for n in state.nodes if not n.is_control_plane)
    primaries = {name for name, load in index.loads.items() if load.primaries}
    workers = [n for n in names if n not in primaries] + [n for n in names if n in primaries]
    limit = options.max_unavailable_nodes(len(workers))
    builder = PlanBuilder(tracks, index, options.drain_policy, memo=memo)
    builder.etcd_snapshot = stacked_etcd(control_planes)
    if not builder.etcd_snapshot and hops:
        warnings.append("etcd: no control-plane node runs an etcd static pod (external etcd): "
                        "no etcd snapshot is taken before `kubeadm upgrade apply`; back up "
                        "your etcd cluster yourself first")
    _remediate_drift(builder, state, control_planes, cluster, tracks, warnings)

    known = release_data.all_versions()
    sequence = [cluster, *hops]
    forced: dict[str, str] = {}
    for i, version in enumerate(sequence):
        nxt = sequence[i + 1] if i + 1 < len(sequence) else None
        prefix = "prepare" if i == 0 else str(version.minor_version)
        builder.start_hop(prefix, version)
        _control_plane(builder, tracks, [n.name for n in control_planes], version,
                       apply=i > 0, nxt=nxt)
        _workers(builder, tracks, workers, version, nxt, options, limit, index, forced, known,
                 apply=i > 0, memo=memo)
        builder.close_hop()
    if not builder.steps:
        raise UsageError(f"the cluster already runs {final}: nothing to upgrade")

    violations, estimate = check_plan(state, builder.steps, limit, costs, index, memo=memo)
    if violations:
        raise PlanInvariantError(f"internal error: the plan would break an invariant at "
                                 f"{violations[0]}")
    warnings += _workload_warnings(builder, index, state)
    if forced:
        names = sorted(forced)
        warnings.append(f"{len(names)} worker(s) upgraded before the last hop, where the next "
                        f"hop would leave their kubelet too old: " + ", ".join(
                            f"{n} at {forced[n]}" for n in names[:5]) +
                        (" …" if len(names) > 5 else ""))
    return Plan(
        from_version=str(cluster), to_version=str(final), hops=tuple(str(h) for h in hops),
        strategy=options, max_unavailable_nodes=limit, steps=tuple(builder.steps),
        waves=tuple(builder.waves), estimate_seconds=estimate,
        warnings=tuple(warnings), fingerprint=state_fingerprint(state))


# --- control plane ---------------------------------------------------------------------------


def _control_plane(b: PlanBuilder, tracks: dict[str, pn.NodeTrack], names: list[str],
                   version: KubeVersion, *, apply: bool, nxt: KubeVersion | None) -> None:
    """kubeadm on each control plane, one at a time; then their kubelets, one at a time."""
    for k, name in enumerate(names):
        t = tracks[name]
        first = apply and k == 0
        if not first and t.images is not None and t.images >= version:
            continue
        b.open_wave("control-plane", [name])
        b.repo_and_kubeadm(t, version)
        if first:
            b.kubeadm_apply(t, version)
        else:
            b.kubeadm_node(t, version)
        b.close_wave()
    for name in names:
        t = tracks[name]
        # Control planes upgrade their kubelet every hop (the guide); before the first hop
        # only when the next hop would leave it too old.
        early = t.kubelet is not None and nxt is not None and _forced(t.kubelet, nxt, {})
        if _needs_kubelet(t, version) and (apply or nxt is None or early):
            b.open_wave("control-plane-kubelet", [name])
            b.repo_and_kubeadm(t, version)
            b.kubelet_upgrade(t, version, kubeadm_node=False)
            b.close_wave()


# --- workers ---------------------------------------------------------------------------------


def _workers(b: PlanBuilder, tracks: dict[str, pn.NodeTrack], workers: list[str],
             version: KubeVersion, nxt: KubeVersion | None, options: PlanOptions, limit: int,
             index: WorkloadIndex, forced: dict[str, str], known: list[KubeVersion], *,
             apply: bool, memo: bool) -> None:
    """Upgrade the workers whose kubelet moves at this hop, in waves: each gets this hop's
    kubeadm and `kubeadm upgrade node` right before its drain, whatever kubeadm last managed it
    (kubeadm's code checks no skew against the node's old kubeadm or kubelet: a worker's
    `upgrade node` runs preflight and rewrites the kubelet configuration, no more —
    kubernetes/kubernetes cmd/kubeadm/app/cmd/upgrade/node.go and phases/upgrade/node/). With
    `strict_kubeadm_skew` every worker whose kubeadm is behind follows each hop first (kubeadm,
    `upgrade node`, no drain), as kubeadm's documented skew says."""
    every = options.worker_strategy == "every-minor"
    minor = version.minor_version
    lag_here = kubeadm_kubelet_lag(minor)
    limits: dict[MinorVersion, int] = {}
    upgrade: list[str] = []
    via: dict[str, KubeVersion] = {}
    # Workers in equal states (a few groups) decide alike.
    decisions: dict[pn.TrackState, tuple[bool, bool, bool]] = {}
    for name in workers:
        t = tracks[name]
        decision = decisions.get(t.state) if memo else None
        if decision is None:
            decision = _decide(t, version, nxt, every and apply, lag_here,
                               limits if memo else {})
            if memo:
                decisions[t.state] = decision
        chosen, early, stuck = decision
        if chosen:
            upgrade.append(name)
            if early:
                forced[name] = str(version)
            if stuck:
                via[name] = _via(version, known)
    chosen_set = set(upgrade)
    if options.strict_kubeadm_skew:
        # The letter of kubeadm's documented skew: a worker's kubeadm follows every hop.
        for name in workers:
            t = tracks[name]
            behind = _minor_lt(t.kubeadm, version)
            if name in chosen_set or behind:
                _require_manageable(t, minor)
            if name in via:
                continue  # all of it on the drained node, in its wave
            if name in chosen_set or behind:
                b.prepare(t, version, kubeadm_node=name not in chosen_set)
    try:
        waves = build_waves(upgrade, limit, index)
    except ValueError as e:
        raise UsageError(f"{e}; add capacity or scale workloads down, then plan again") from None
    for wave in waves:
        b.open_wave("workers", wave)
        for name in wave:
            b.kubelet_upgrade(tracks[name], version, kubeadm_node=True, via=via.get(name))
        b.close_wave()


def _decide(t: pn.NodeTrack, version: KubeVersion, nxt: KubeVersion | None, every: bool,
            lag_here: int, limits: dict[MinorVersion, int]) -> tuple[bool, bool, bool]:
    """(upgrade the kubelet at this hop, because the next hop would leave it too old, by way of
    an older kubelet): `every` is every-minor past the first hop."""
    kubelet = t.kubelet
    # kubeadm must follow to this hop but could not manage the kubelet it would find.
    stuck = kubelet is not None and _minor_lt(t.kubeadm, version) and (
        version.minor - kubelet.minor > lag_here)
    if not stuck and not _needs_kubelet(t, version):
        return False, False, False
    if nxt is None or every or stuck:
        return True, False, stuck
    if kubelet is not None and _forced(kubelet, nxt, limits):
        return True, True, False
    return False, False, False


def _minor_lt(a: KubeVersion | None, b: KubeVersion) -> bool:
    """Whether `a` (None: unknown) is of an older minor than `b` (ints: this runs 10^4 times)."""
    return a is None or (a.major, a.minor) < (b.major, b.minor)


def _via(version: KubeVersion, known: list[KubeVersion]) -> KubeVersion:
    """The kubelet to pass through: the oldest minor kubeadm `version` manages, newest patch."""
    minor = version.minor_version - kubeadm_kubelet_lag(version.minor_version)
    patch = newest_patch(minor, known)
    if patch is None:
        raise UsageError(f"no known release of Kubernetes {minor}, needed to step kubelets "
                         f"on the way to {version}; update the release data (kubehop releases)")
    return patch


def _needs_kubelet(t: pn.NodeTrack, version: KubeVersion) -> bool:
    return t.kubelet != version or (t.kubelet_pkg is not None
                                    and t.kubelet_pkg != t.package(version))


def _forced(kubelet: KubeVersion, nxt: KubeVersion, limits: dict[MinorVersion, int]) -> bool:
    """Whether the kubelet must move before the control plane goes to `nxt`."""
    k, n = kubelet.minor_version, nxt.minor_version  # (few distinct kubelets: cached limits)
    limit = limits.get(k)
    if limit is None:
        limit = limits[k] = min(
            max_kubelet_lag(k),  # kubelet vs kube-apiserver
            maximum_allowed_kubelet_skew(nxt),  # kubeadm apply's "too old kubelets"
            kubeadm_kubelet_lag(n),  # the node's kubeadm vs its kubelet
            max_kubelet_lag(n))  # kube-proxy (the addon follows the control plane)
    return n.minus(k) > limit


def _require_manageable(t: pn.NodeTrack, minor: MinorVersion) -> None:
    if minor.minus(t.managed) > 1:
        raise UsageError(
            f"node {t.name} was last managed by kubeadm {t.managed}, but the cluster runs "
            f"{minor}: --strict-kubeadm-skew upgrades a node only with a kubeadm of the minor "
            f"that last managed it or one newer; plan without --strict-kubeadm-skew (kubeadm "
            f"upgrade node allows the jump), or upgrade node {t.name} by hand, then plan again")


# --- drift -----------------------------------------------------------------------------------


def _remediate_drift(b: PlanBuilder, state: ClusterState, control_planes: list[NodeState],
                     cluster: KubeVersion, tracks: dict[str, pn.NodeTrack],
                     warnings: list[str]) -> None:
    """Restore static pod images newer than kubeadm's kubernetesVersion (hand edits)."""
    drifted: list[tuple[NodeState, list[tuple[str, str, KubeVersion]]]] = []
    for node in control_planes:
        comps = []
        for c in VERSIONED_COMPONENTS:
            v, image = node.component_version(c), node.image(c)
            if v is not None and image and v > cluster:
                if v.minor_version.minus(cluster.minor_version) > 1:
                    raise UsageError(
                        f"{c} on node {node.name} runs {v.full}, more than one minor newer than "
                        f"kubeadm's kubernetesVersion {cluster}: restoring it would downgrade "
                        f"the apiserver by several minors; restore /etc/kubernetes/manifests/"
                        f"{c}.yaml from /etc/kubernetes/tmp/kubeadm-backup-manifests-* by hand, "
                        f"then plan again")
                comps.append((c, image, v))
        if comps:
            drifted.append((node, comps))
    if not drifted:
        return
    newest = max((v.minor_version for n in state.nodes for v in (n.kubelet, n.kube_proxy)
                  if v is not None), default=cluster.minor_version)
    if newest > cluster.minor_version:
        raise UsageError(
            f"control-plane images were edited by hand past kubeadm's kubernetesVersion "
            f"{cluster}, and kubelets or kube-proxy already run {newest}: restoring the images "
            f"would leave them newer than kube-apiserver; fix the cluster by hand, then plan again")
    b.start_hop("prepare", cluster)
    for node, comps in drifted:
        b.open_wave("drift", [node.name])
        names = [c for c, _, _ in comps]
        b.add(node.name, StepKind.REMEDIATE_DRIFT,
              remediate_drift.description(names, cluster),
              commands=tuple(remediate_drift.restore_image_command(c, image, str(cluster))
                             for c, image, _ in comps),
              expect=remediate_drift.expect(names, cluster),
              params=remediate_drift.params(names, cluster))
        b.close_wave()
        tracks[node.name].update(images=cluster)
        warnings.append(f"drift: {', '.join(f'{c} {v}' for c, _, v in comps)} on node "
                        f"{node.name} differ from kubeadm's kubernetesVersion {cluster}: the plan "
                        f"restores the manifests first")


def _workload_warnings(b: PlanBuilder, index: WorkloadIndex, state: ClusterState) -> list[str]:
    drained = {n for n in b.drained if n}
    out = []
    empty = [p for n in sorted(drained) for p in index.load(n).empty_dir]
    bare = [p for n in sorted(drained) for p in index.load(n).bare]
    if empty:
        out.append(f"drains delete the emptyDir data of {len(empty)} pod(s): "
                   f"{', '.join(empty[:5])}")
    if bare:
        out.append(f"drains delete {len(bare)} pod(s) without a controller (they are not "
                   f"recreated): {', '.join(bare[:5])}")
    for n in sorted(drained):
        for db in index.load(n).primaries:
            if db in index.single_instance:
                out.append(f"{db} has a single instance on node {n}: nothing to switch over "
                           f"to, its PodDisruptionBudget blocks the drain")
            else:
                out.append(f"node {n} runs the primary of {db}: cordoning it makes "
                           f"CloudNativePG switch over to a replica (brief write outage)")
    for name in sorted(b.precordoned):
        out.append(f"node {name} was cordoned before the upgrade: it stays cordoned")
    out += [f"node {n.name} is NotReady: its upgrade waits for Ready and halts there"
            for n in state.nodes if not n.ready]
    return out

