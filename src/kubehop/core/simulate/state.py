"""The simulator's model of a cluster under upgrade: what each step changes, what it requires.

Mutable on purpose (one object per simulation, never shared): a 5,000-node replay would
otherwise copy the cluster at each of its 60,000 steps. Skew is judged by `evaluate_skew`;
workers with equal versions share one evaluation (grouped by their version signature).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from itertools import groupby, repeat

from kubehop.core import node_commands as nc
from kubehop.core.kubeadm_policy import enforce_version_policies
from kubehop.core.node_commands import package_glob
from kubehop.core.planner.nodes import ValuePool, family_name, packaging
from kubehop.core.simulate.dag import Violation
from kubehop.core.skew import evaluate_skew
from kubehop.core.steps import REGISTRY
from kubehop.core.steps.base import (
    KUBEADM,
    SKEW,
    VERSIONED_COMPONENTS,
    Problem,
    SimNode,
    minor_of,
    shared_minor,
)
from kubehop.core.workloads import WorkloadIndex
from kubehop.model.cluster import ClusterState, NodePackages, OsFamily
from kubehop.model.components import ApiServer, ClusterComponents, NodeComponents
from kubehop.model.errors import VersionError
from kubehop.model.plan import ExpectKey, Step, StepKind
from kubehop.model.versions import KubeVersion, parse_deb_version, parse_kube_version

__all__ = ["Problem", "SimNode", "SimState"]
_GATE = StepKind.GATE
_SKEW = SKEW
_KUBEADM = KUBEADM


@cache
def _pkg_version(text: str | None) -> KubeVersion | None:
    try:
        return parse_deb_version(text).kube_version() if text else None
    except VersionError:
        return None


@cache
def _hop(text: str) -> KubeVersion | None:
    try:
        return parse_kube_version(text)
    except VersionError:
        return None


# Plans install any build of a patch (`1.29.15-*`): the simulated node holds that glob.
_package_version = cache(lambda plain, _family: package_glob(plain))


_minor = minor_of  # `version.minor_version`, shared


def _mk(version: KubeVersion | None) -> tuple[int, int] | None:
    """The skew-relevant part of a version: skew rules compare minors only."""
    return (version.major, version.minor) if version is not None else None


class SimState:
    """A cluster as a plan changes it."""

    def __init__(self, state: ClusterState, *, memo: bool = True) -> None:
        self.memo = memo  # replay runs of equal workers, cache skew by version signature
        self.cluster_version = state.kubeadm_kubernetes_version
        self.load_balanced = state.load_balanced
        by_node = {a.node: a.version for a in state.apiservers if a.node and a.version}
        self.nodes: dict[str, SimNode] = {}
        # Package facts of nodes pinning with apt preferences (`pin_file`).
        self._pins: dict[str, NodePackages] = {
            n.name: n.packages for n in state.nodes if n.packages and n.packages.pins}
        # Equal values, one object: comparing keys of `replay` then takes identity shortcuts.
        share_all = ValuePool().share_all if memo else tuple
        for n in state.nodes:
            pk = n.packages
            kubeadm = (pk.kubeadm_binary or _pkg_version(pk.kubeadm)) if pk else None
            repo = pk.repo_minor if pk and not pk.repo_legacy else None
            repo = shared_minor(repo) if repo is not None else None
            family, kubelet, proxy, kubeadm, repo, kubeadm_pkg, kubelet_pkg, kubectl_pkg = (
                share_all((family_name(pk.os_family if pk else OsFamily.DEBIAN), n.kubelet,
                           n.kube_proxy, kubeadm, repo, pk.kubeadm if pk else None,
                           pk.kubelet if pk else None, pk.kubectl if pk else None)))
            node = SimNode(
                n.name, n.is_control_plane, family, kubelet, proxy, kubeadm, None, repo,
                {"kubeadm": kubeadm_pkg, "kubelet": kubelet_pkg, "kubectl": kubectl_pkg},
                schedulable=n.schedulable, ready=n.ready)
            if n.is_control_plane:
                for c in VERSIONED_COMPONENTS:
                    node.images[c] = n.component_version(c)
                if node.images["kube-apiserver"] is None:
                    node.images["kube-apiserver"] = by_node.get(n.name) or self.cluster_version
                oldest = min((v for v in node.images.values() if v), default=None)
                node.managed = _minor(oldest) if oldest else None
            elif kubeadm is not None:
                node.managed = _minor(kubeadm)
            self.nodes[n.name] = node
        self.control_plane = [n for n in self.nodes.values() if n.control_plane]
        self._workers = [n for n in self.nodes.values() if not n.control_plane]
        self.cordoned: set[str] = set()
        self.drained: set[str] = set()
        self.precordoned = {n.name for n in state.nodes if not n.schedulable}
        self.primaries = {f"{d.namespace}/{d.name}": d.primary_node for d in state.databases}
        self._node_cache: dict[tuple[object, ...], tuple[str, ...]] = {}  # (memo)
        self._api: tuple[ApiServer, ...] = ()
        self._epoch = 0  # changes with the cluster version and the apiservers (see `replay`)
        self._refresh_apiservers()
        self.allowed = set(self._all_findings())
        self._allowed_by_node: dict[str, frozenset[str]] = {}
        for fid, name in self.allowed:
            self._allowed_by_node[name] = self._allowed_by_node.get(name, frozenset()) | {fid}
        # Local runs (see `replay`): their end states by start, and whether a shape is local.
        self._runs: dict[tuple[object, ...], tuple[object, ...]] = {}
        self._local_shapes: dict[tuple[int, ...], bool] = {}

    # --- skew --------------------------------------------------------------------------------

    def _refresh_apiservers(self) -> None:
        self._epoch += 1
        self._api = tuple(ApiServer(n.name, n.name, v) for n in self.control_plane
                          if (v := n.images.get("kube-apiserver")) is not None)
        self._api_key = tuple(_mk(a.version) for a in self._api)

    def _components(self, n: SimNode) -> NodeComponents:
        return NodeComponents(
            n.name, n.control_plane, n.kubelet, n.kube_proxy, n.kubeadm,
            n.images.get("kube-apiserver"), n.images.get("kube-controller-manager"),
            n.images.get("kube-scheduler"))

    def _evaluate(self, nodes: Iterable[NodeComponents]) -> list[tuple[str, str, str]]:
        comps = ClusterComponents(self._api, tuple(nodes), None, self.load_balanced)
        return [(f.id, f.subject, f.message) for f in evaluate_skew(comps)]

    def _all_findings(self) -> list[tuple[str, str]]:
        """(id, node name or subject) of every blocking skew finding; workers grouped."""
        groups = self._worker_groups()
        reps = [self._components(n) for n in self.control_plane]
        reps += [self._components(self.nodes[members[0]]) for members in groups.values()]
        out: list[tuple[str, str]] = []
        for fid, subject, _ in self._evaluate(reps):
            name = subject.removeprefix("node/")
            members = groups.get(self._sig(name)) if name in self.nodes else None
            if members and not self.nodes[name].control_plane:
                out += zip(repeat(fid), members)
            else:
                out.append((fid, name))
        return out

    def _worker_groups(self) -> dict[tuple[object, ...], list[str]]:
        """Worker names by `_sig` (the minors skew rules read), in node order."""
        by_sig: dict[tuple[object, ...], list[str]] = {}
        for n in self._workers:  # (`_sig` inlined: this runs for every worker)
            a, b, c = n.kubelet, n.kube_proxy, n.kubeadm
            sig = ((a.major, a.minor) if a is not None else None,
                   (b.major, b.minor) if b is not None else None,
                   (c.major, c.minor) if c is not None else None)
            members = by_sig.get(sig)
            if members is None:
                by_sig[sig] = [n.name]
            else:
                members.append(n.name)
        return by_sig

    def _sig(self, name: str) -> tuple[object, ...]:
        n = self.nodes[name]
        return (_mk(n.kubelet), _mk(n.kube_proxy), _mk(n.kubeadm))

    def check_global(self) -> list[Problem]:
        self._refresh_apiservers()
        new = [f for f in self._all_findings() if f not in self.allowed]
        if not new:
            return []
        return [(_SKEW, f"{fid} on {key}" + (f" (and {len(new) - 1} more)" if len(new) > 1
                                             else "")) for fid, key in new[:1]]

    def check_node(self, n: SimNode) -> list[Problem]:
        if n.control_plane:
            found = tuple(f[0] for f in self._evaluate([self._components(n)])
                          if f[1] == f"node/{n.name}")
        else:
            key = (self._api_key, _mk(n.kubelet), _mk(n.kube_proxy), _mk(n.kubeadm))
            found = self._node_cache.get(key) if self.memo else None  # type: ignore[assignment]
            if found is None:
                found = tuple(f[0] for f in self._evaluate([self._components(n)])
                              if f[1].startswith("node/"))
                if self.memo:
                    self._node_cache[key] = found
        return [(_SKEW, f"{fid} on node {n.name}") for fid in found
                if (fid, n.name) not in self.allowed]

    # --- steps ---------------------------------------------------------------------------

    def replay(self, steps: Sequence[Step], index: WorkloadIndex, out: list[Violation]) -> None:
        """`apply` each step in order, its problems added to `out` as violations; stops after
        the step that takes `out` past 50.

        With `memo`, a run of consecutive steps on one worker whose kinds change only that
        worker (`LOCAL` in `core.steps`) and whose expectations read the node alone
        (`_LOCAL_EXPECT`) is applied once per distinct start: when an earlier run of equal
        steps (kind, hop, params and expect as values) found no problem from an equal node
        state in the same cluster (`_epoch`: the cluster version and the apiservers, all such a
        run reads beyond its node), its end state is copied. 5,000 identical workers make a few
        distinct runs."""
        if not self.memo:
            for step in steps:
                if step.kind is not _GATE:
                    for problem in self.apply(step, index):
                        out.append(Violation(step.id, problem[0], problem[1]))
                if len(out) > 50:
                    return
            return
        nodes, runs, shapes = self.nodes, self._runs, self._local_shapes
        cordoned, drained, precordoned = self.cordoned, self.drained, self.precordoned
        allowed, load = self._allowed_by_node, index.load
        names = [s.node for s in steps]
        # What `apply` reads of each step but its node, as values numbered in order of first
        # appearance: runs' keys then hash and compare quickly.
        shape_ids: dict[tuple[object, ...], int] = {}
        step_shapes = [shape_ids.setdefault(
            (s.kind, s.hop, tuple(s.params.items()), tuple(s.expect.items())), len(shape_ids))
            for s in steps]
        j = 0
        for name, run in groupby(names):
            i, j = j, j + len(list(run))
            node = nodes.get(name) if name is not None else None
            key: tuple[object, ...] | None = None
            if node is not None and not node.control_plane and len(out) <= 50:
                shape = tuple(step_shapes[i:j])
                pk = node.packages
                key = (self._epoch, shape, node.kubelet, node.kube_proxy, node.kubeadm,
                       node.managed, node.repo, pk.get("kubeadm"), pk.get("kubelet"),
                       pk.get("kubectl"), node.family, node.schedulable, node.ready,
                       name in cordoned, name in drained, name in precordoned,
                       allowed.get(name), load(name).evictable,  # type: ignore[arg-type]
                       tuple(node.images.items()) if node.images else ())
                done = runs.get(key)
                if done is not None:
                    (node.kubelet, node.kube_proxy, node.kubeadm, node.managed, node.repo,
                     pk["kubeadm"], pk["kubelet"], pk["kubectl"], node.schedulable, node.ready,
                     is_cordoned, is_drained) = done  # type: ignore[assignment]
                    if is_cordoned:
                        cordoned.add(node.name)
                    else:
                        cordoned.discard(node.name)
                    if is_drained:
                        drained.add(node.name)
                    else:
                        drained.discard(node.name)
                    continue
                local = shapes.get(shape)
                if local is None:
                    local = shapes[shape] = all(
                        REGISTRY[s.kind].LOCAL and _LOCAL_EXPECT.issuperset(s.expect)
                        for s in steps[i:j])
                if not local:
                    key = None
            before = len(out)
            for k in range(i, j):
                step = steps[k]
                if step.kind is not _GATE:
                    for problem in self.apply(step, index):
                        out.append(Violation(step.id, problem[0], problem[1]))
                if len(out) > 50:
                    return
            if key is not None and len(out) == before and node is not None:
                pk = node.packages
                runs[key] = (node.kubelet, node.kube_proxy, node.kubeadm, node.managed,
                             node.repo, pk.get("kubeadm"), pk.get("kubelet"), pk.get("kubectl"),
                             node.schedulable, node.ready, node.name in cordoned,
                             node.name in drained)

    def apply(self, step: Step, index: WorkloadIndex) -> list[Problem]:
        """Apply `step` (its kind's `simulate`, `core.steps`); the invariants it breaks (empty
        when none)."""
        kind = step.kind
        if kind is StepKind.GATE:
            return []
        n = self.nodes.get(step.node or "")
        if n is None:
            return [("plan", f"unknown node {step.node!r}")]
        # The version a step works towards: its hop, unless params say otherwise.
        text = step.params.get("version", step.hop) if step.params else step.hop
        hop = _hop(str(text))
        if hop is None:
            return [("plan", f"bad version {text!r}")]
        problems = REGISTRY[kind].simulate(self, step, n, hop)
        if step.expect:
            for key, want in step.expect.items():
                observe = _OBSERVE.get(key)  # type: ignore[call-overload]
                got = observe(self, n, step, index) if observe else f"<unknown {key}>"
                if got != want:
                    problems.append(("expectation", f"after it {key} would be {got!r}, the "
                                                    f"step expects {want!r}"))
        return problems

    def pin_file(self, n: SimNode) -> str | None:
        """The node's apt preferences pins as its packages now stand (`aptPins`): the
        managed stanzas of its file with each package at its simulated minor."""
        pk = self._pins.get(n.name)
        if pk is None:
            return None
        family = packaging(pk)
        versions = {k: v for k, v in n.packages.items() if v}
        return nc.pins_expect(family, versions) if family.pins else None

    def install(self, n: SimNode, hop: KubeVersion, names: tuple[str, ...]) -> list[Problem]:
        # pkgs.k8s.io serves one minor per repository (kubernetes.io blog, 2023-08-15).
        problems = []
        if n.repo != _minor(hop):
            problems.append(("packages", f"{', '.join(names)} {hop} installed on node {n.name} "
                                         f"while its repository serves {n.repo or 'unknown'}"))
        for name in names:
            n.packages[name] = _package_version(hop.plain, n.family)
        return problems

    def restart_kubelet(self, n: SimNode, hop: KubeVersion) -> list[Problem]:
        new = _pkg_version(n.packages.get("kubelet")) or hop
        problems: list[Problem] = []
        # Skew policy: in-place minor kubelet upgrades are not supported: drain first.
        if n.kubelet is not None and _minor(new) != _minor(n.kubelet) and (
                n.name not in self.drained):
            problems.append(("drain before a kubelet minor change",
                             f"kubelet on node {n.name} goes from {n.kubelet} to {new} on a "
                             f"node that is not drained"))
        n.kubelet = new
        n.ready = True
        return problems + self.check_node(n)

    def kubeadm_policy(self, n: SimNode, hop: KubeVersion) -> list[Problem]:
        if n.kubeadm is None:
            return [(_KUBEADM, f"kubeadm on node {n.name} is not installed")]
        seen = n.images.get("kube-apiserver") or self.cluster_version or hop
        kubelets = {k for m in self.nodes.values() if (k := m.kubelet) is not None}
        errors = enforce_version_policies(hop, seen, n.kubeadm, sorted(kubelets))
        problems = [(_KUBEADM, e) for e in (*errors.mandatory, *errors.skippable)]
        return problems + self._managed(n)

    def _managed(self, n: SimNode) -> list[Problem]:
        # kubeadm upgrades a control plane last managed by its own minor or one older (kubeadm's
        # skew against kubeadm, create-cluster-kubeadm.md: its static pods are rewritten from
        # the older kubeadm's). A worker's `upgrade node` only rewrites the kubelet
        # configuration; kubeadm's code checks nothing there (cmd/kubeadm/app/cmd/upgrade/node.go).
        if n.kubeadm is None or n.managed is None or not n.control_plane:
            return []
        gap = _minor(n.kubeadm).minus(n.managed)
        if gap in (0, 1):
            return []
        return [(_KUBEADM, f"kubeadm {n.kubeadm} on node {n.name} cannot upgrade a node last "
                           f"managed by kubeadm {n.managed}")]

    def kubeadm_node(self, n: SimNode) -> list[Problem]:
        cluster = self.cluster_version
        if n.kubeadm is None or cluster is None:
            return [(_KUBEADM, f"kubeadm on node {n.name} is not installed")]
        problems = self._managed(n)
        # kubeadm works with a Kubernetes version of its own minor or one older.
        if _minor(n.kubeadm).minus(_minor(cluster)) not in (0, 1):
            problems.append((_KUBEADM, f"kubeadm {n.kubeadm} on node {n.name} cannot manage a "
                                       f"cluster at {cluster}"))
        if n.control_plane and n.kubeadm < cluster:
            problems.append((_KUBEADM, f"kubeadm {n.kubeadm} on node {n.name} is older than "
                                       f"the cluster version {cluster}"))
        n.managed = _minor(n.kubeadm)
        if problems or not n.control_plane:
            return problems
        return self._upgrade_control_plane(n, cluster)

    def apply_cluster_version(self, n: SimNode, hop: KubeVersion) -> list[Problem]:
        """`kubeadm upgrade apply`: kubeadm-config's kubernetesVersion, then `n`'s static pods."""
        self.cluster_version = hop
        self._epoch += 1
        return self._upgrade_control_plane(n, hop)

    def _upgrade_control_plane(self, n: SimNode, version: KubeVersion) -> list[Problem]:
        for c in VERSIONED_COMPONENTS:
            n.images[c] = version
        n.managed = _minor(version)
        self._refresh_apiservers()
        # kubeadm >= 1.28 upgrades the kube-proxy addon once every kube-apiserver runs the new
        # version (before 1.28 it did so at `apply`, briefly out of skew in HA).
        if all(a.version == version for a in self._api):
            for m in self.nodes.values():
                if m.kube_proxy is not None:
                    m.kube_proxy = version
        return self.check_global()

    # --- expectations --------------------------------------------------------------------

    def components(self) -> ClusterComponents:
        return ClusterComponents(self._api, tuple(self._components(n) for n in
                                                  self.nodes.values()), None, self.load_balanced)


def _image(component: str) -> Callable[[SimState, SimNode, Step, WorkloadIndex], object]:
    def observe(sim: SimState, n: SimNode, step: Step, index: WorkloadIndex) -> object:
        v = n.images.get(component)
        return str(v) if v else None
    return observe


def _primary_away(sim: SimState, n: SimNode, step: Step, index: WorkloadIndex) -> object:
    dbs = step.params.get("databases", ())
    return all(sim.primaries.get(str(d)) != n.name for d in dbs)  # type: ignore[union-attr]


# How the simulator reads each `expect` key (see `model.plan`) off its state.
OBSERVE: dict[ExpectKey, Callable[[SimState, SimNode, Step, WorkloadIndex], object]] = {
    ExpectKey.KUBELET: lambda sim, n, step, ix: str(n.kubelet) if n.kubelet else None,
    ExpectKey.READY: lambda sim, n, step, ix: n.ready,
    ExpectKey.SCHEDULABLE: lambda sim, n, step, ix: (
        n.schedulable and n.name not in sim.cordoned and n.name not in sim.precordoned),
    ExpectKey.EVICTABLE_PODS: lambda sim, n, step, ix: (
        0 if n.name in sim.drained else ix.load(n.name).evictable),
    ExpectKey.KUBERNETES_VERSION: lambda sim, n, step, ix: (
        str(sim.cluster_version) if sim.cluster_version else None),
    ExpectKey.REPO_MINOR: lambda sim, n, step, ix: str(n.repo) if n.repo else None,
    ExpectKey.KUBEADM: lambda sim, n, step, ix: n.packages.get("kubeadm"),
    ExpectKey.KUBECTL: lambda sim, n, step, ix: n.packages.get("kubectl"),
    ExpectKey.KUBELET_PACKAGE: lambda sim, n, step, ix: n.packages.get("kubelet"),
    ExpectKey.APT_PINS: lambda sim, n, step, ix: sim.pin_file(n),
    ExpectKey.PRIMARY_NOT_ON_NODE: _primary_away,
    # Only an etcd-snapshot step leaves a snapshot file on its node.
    ExpectKey.ETCD_SNAPSHOT: lambda sim, n, step, ix: (
        step.expect.get(ExpectKey.ETCD_SNAPSHOT) if step.kind is StepKind.ETCD_SNAPSHOT
        else None),
    **{ExpectKey(c): _image(c) for c in VERSIONED_COMPONENTS},
}
_OBSERVE = OBSERVE

# Expectations read off the node alone (and the cluster version): runs of `LOCAL` step kinds
# with only these are replayed (`SimState.replay`).
_LOCAL_EXPECT = frozenset(OBSERVE) - {ExpectKey.PRIMARY_NOT_ON_NODE, ExpectKey.APT_PINS}
