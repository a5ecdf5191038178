"""Builds the step DAG: waves closed by gate steps, each node's steps chained in order.

Structure (see `model.plan`): every step of a wave comes after the gate that closed the previous
wave, and a gate comes after every step of its wave (and after the previous gate), so gates form
a chain and two steps can only run together when no gate separates them. "Prepare" steps
(kubeadm on workers, no drain) run beside the worker waves of their hop and are closed by the
hop's final gate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kubehop.core.planner import nodes as pn
from kubehop.core.workloads import WorkloadIndex
from kubehop.model.plan import (
    Command,
    ExpectValue,
    ParamValue,
    Step,
    StepKind,
    StepRow,
    Wave,
    chain_steps,
    make_step,
)
from kubehop.model.versions import KubeVersion, MinorVersion

_T = TypeVar("_T")
DRAIN_MINOR = "kubelet changes minor: drain required"
DRAIN_ALWAYS = "drain policy always: drain before every kubelet restart"
DRAIN_SKIPPED = "patch-level restart: drain skipped"
# Steps share read-only expectation dicts and descriptions (60,000 steps, a few dozen kinds).
_EMPTY: Mapping[str, ExpectValue] = {}
_CORDONED: Mapping[str, ExpectValue] = {"schedulable": False}
_DRAINED: Mapping[str, ExpectValue] = {"schedulable": False, "evictablePods": 0}
# A node sequence without the node (see `PlanBuilder._sequence`): its steps' id suffixes, their
# (kind, commands, expect, params, reason, description), whether one drains, the track's state
# after them, and (pinned: their ids are in the recipe's key) the state before and arguments.
# The last item: how many leading steps may start a wave early (`PlanBuilder.ahead`).
_Recipe = tuple[tuple[str, ...], tuple[StepRow, ...], bool, pn.TrackState, tuple[Any, ...], int]
# Steps of a worker that neither cordon nor disrupt it (kubeadm and its repository; `kubeadm
# upgrade node` rewrites the kubelet's configuration, read only when the kubelet restarts).
AHEAD_KINDS = frozenset({StepKind.REPO_SWITCH, StepKind.KUBEADM_INSTALL, StepKind.KUBEADM_NODE})


def _kubelet_texts(version: KubeVersion, pv: str) -> tuple[Any, ...]:
    v = str(version)
    return (f"install kubelet {pv} (held)", {"kubeletPackage": pv},
            f"restart the kubelet at {v}", {"kubelet": v},
            f"wait until the node is Ready at {v}", {"kubelet": v, "ready": True})


def _install_texts(t: pn.NodeTrack, what: str, pv: str, expect: dict[str, ExpectValue],
                   pinned: tuple[tuple[str, str], ...]) -> tuple[str, dict[str, ExpectValue]]:
    """An install step's description and expectation: held, or (a node pinning with apt
    preferences) pinned in its file, which the expectation reads back (`aptPins`)."""
    if not pinned:
        return f"install {what} {pv} (held)", expect
    return (f"install {what} {pv} (pinned in {t.family.pins[0].file})",
            {**expect, "aptPins": pn.pins_expect(t.family, pinned)})


class PlanBuilder:
    """Accumulates steps, waves and gates; node-level sequences of the upstream guide."""

    def __init__(self, tracks: Mapping[str, pn.NodeTrack], index: WorkloadIndex,
                 drain_policy: str) -> None:
        self.tracks = tracks
        self.index = index
        self.drain_policy = drain_policy
        self.etcd_snapshot = True  # stacked etcd: a snapshot before each `kubeadm upgrade apply`
        self.steps: list[Step] = []
        self.waves: list[Wave] = []
        self.precordoned = {n for n, t in tracks.items() if not t.schedulable}
        self._ids: set[str] = set()
        self._shared: dict[tuple[Any, ...], Any] = {}
        self._recipes: dict[tuple[Any, ...], _Recipe] = {}  # by sequence, arguments, state
        self.drained: dict[str, None] = {}  # nodes with a drain step
        self._gate: str | None = None
        self._prior_gate: str | None = None  # the gate before `_gate`
        self._ahead = 0  # >0 while adding steps that may start during the previous wave
        self._ahead_made = 0  # how many such steps the current sequence made
        self._pipelined = False  # whether the open wave's ahead steps start a wave early
        self._owing: set[str] = set()  # nodes whose next step must also wait for `_gate`
        self._tail: dict[str, str] = {}  # node → its last step not yet behind a gate
        self._in_wave: set[str] = set()
        self._wave: Wave | None = None
        self._prep: Wave | None = None
        self._prep_nodes: dict[str, None] = {}
        self._prefix = ""
        self._hop = ""

    # --- structure -----------------------------------------------------------------------

    def start_hop(self, prefix: str, hop: KubeVersion) -> None:
        self._prefix, self._hop = prefix, str(hop)
        self._prep = None
        self._prep_nodes = {}

    def open_wave(self, kind: str, nodes: list[str]) -> None:
        # A workers wave right after another of the same hop: its nodes' kubeadm steps start
        # beside that wave (the control plane is done by then), their cordons behind its gate.
        last = self.waves[-1] if self.waves else None
        self._pipelined = kind == "workers" and last is not None and last.kind == "workers" \
            and last.hop == self._hop and self._prior_gate is not None
        self._wave = Wave(len(self.waves), self._hop, kind, tuple(nodes))
        self.waves.append(self._wave)
        self._in_wave = set()

    def close_wave(self) -> None:
        """Close the open wave with a gate (or drop the wave when it got no steps)."""
        wave = self._wave
        assert wave is not None
        self._wave = None
        tails = [self._tail.pop(n) for n in wave.nodes if n in self._in_wave]
        if not tails:
            self.waves.pop()
            return
        self._add_gate(f"{self._prefix}/wave{wave.index}/done", tails, wave.index)

    def close_hop(self) -> None:
        """The hop's final gate: after the last wave and every prepare step."""
        if self._prep is not None:
            self.waves[self._prep.index] = Wave(self._prep.index, self._hop, "prepare",
                                                tuple(self._prep_nodes))
        tails = list(self._tail.values())
        self._tail.clear()
        if tails:
            self._add_gate(f"{self._prefix}/done", tails, self._prep.index if self._prep else None)

    def _add_gate(self, gate_id: str, tails: list[str], wave: int | None) -> None:
        after = ([self._gate] if self._gate else []) + tails
        self._ids.add(gate_id)
        self.steps.append(Step(gate_id, StepKind.GATE, None, self._hop, tuple(after), wave=wave,
                               description="barrier: everything before it is done"))
        self._prior_gate, self._gate = self._gate, gate_id

    def _place(self, node: str) -> tuple[int, tuple[str, ...]]:
        """The wave of `node`'s next step (the open wave, or the hop's prepare wave) and what
        it waits for: the node's previous step, and the wave's gate if it is the node's first
        step there."""
        if self._wave is not None:
            first = node not in self._in_wave
            self._in_wave.add(node)
            wave = self._wave.index
        else:
            if self._prep is None:
                self._prep = Wave(len(self.waves), self._hop, "prepare", ())
                self.waves.append(self._prep)
            self._prep_nodes[node] = None
            first = node not in self._tail
            wave = self._prep.index
        tail = self._tail.get(node)
        gate = self._gate if first else None
        if first and self._ahead and self._pipelined:
            gate = self._prior_gate
            self._owing.add(node)
        elif not self._ahead and node in self._owing:
            self._owing.discard(node)
            gate = self._gate
        return wave, tuple(x for x in (gate, tail) if x)

    def add(self, node: str, kind: StepKind, description: str, *,
            commands: tuple[Command, ...] = (), expect: Mapping[str, ExpectValue] | None = None,
            params: Mapping[str, ParamValue] | None = None, reason: str | None = None,
            tag: str = "") -> Step:
        """A step of `node` in the open wave (or, with no wave open, a prepare step); `tag`
        tells apart two steps of one kind on one node in one hop."""
        wave, after = self._place(node)
        if self._ahead:
            self._ahead_made += 1
        step_id = f"{self._prefix}/{node}/{kind}{tag}"
        step = make_step(step_id, kind, node, self._hop, after, commands,
                         _EMPTY if expect is None else expect, params or _EMPTY, wave, reason,
                         description)
        if step_id in self._ids:
            raise RuntimeError(f"planner bug: duplicate step id {step_id}")
        self._ids.add(step_id)
        self.steps.append(step)
        self._tail[node] = step_id
        if kind is StepKind.DRAIN:
            self.drained[node] = None
        return step

    def _emit(self, node: str, recipe: _Recipe) -> None:
        """`add` for each step of `recipe` on `node` (the same ids, waits and waves)."""
        suffixes, rows, drains = recipe[:3]
        if not rows:
            return
        ahead = recipe[5]
        self._ahead += bool(ahead)
        wave, after = self._place(node)
        self._ahead -= bool(ahead)
        base = f"{self._prefix}/{node}/"
        ids = [base + suffix for suffix in suffixes]
        if not self._ids.isdisjoint(ids):
            raise RuntimeError(f"planner bug: duplicate step id "
                               f"{next(i for i in ids if i in self._ids)}")
        self._ids.update(ids)
        if ahead and node in self._owing and ahead < len(ids):
            self._owing.discard(node)
            self.steps += chain_steps(ids[:ahead], node, self._hop, after, rows[:ahead], wave)
            after = tuple(x for x in (ids[ahead - 1], self._gate) if x)
            ids, rows = ids[ahead:], rows[ahead:]
        self.steps += chain_steps(ids, node, self._hop, after, rows, wave)
        self._tail[node] = ids[-1]
        if drains:
            self.drained[node] = None

    def _sequence(self, t: pn.NodeTrack, head: tuple[Any, ...], args: tuple[Any, ...],
                  run: Callable[[], None]) -> None:
        """`run()` — which adds steps of node `t` only and updates `t` — or, when a node in an
        identical state ran the same sequence (`head`: its name and the arguments' values or
        ids; `args`: the objects whose ids are in `head`), replay its steps and state: 5,000
        workers make a few recipes. States count as identical when their objects are (the
        planner pools the tracks' values: `pn.ValuePool`)."""
        state = (t.control_plane, t.family, t.kubelet, t.kubelet_pkg, t.kubectl_pkg,
                 t.kubeadm_pkg, t.kubeadm, t.managed, t.repo, t.images, t.schedulable, t.ready)
        key = (head, t.control_plane, id(t.family), id(t.kubelet), id(t.kubelet_pkg),
               id(t.kubectl_pkg), id(t.kubeadm_pkg), id(t.kubeadm), id(t.managed), id(t.repo),
               id(t.images), t.schedulable, t.ready)
        recipe = self._recipes.get(key)
        if recipe is not None:
            self._emit(t.name, recipe)
            pn.set_track_state(t, recipe[3])
            return
        start = len(self.steps)
        self._ahead_made = 0
        run()
        made = self.steps[start:]
        if any(s.node != t.name for s in made):
            return
        cut = len(self._prefix) + len(t.name) + 2
        self._recipes[key] = (
            tuple(s.id[cut:] for s in made),
            tuple((s.kind, s.commands, s.expect, s.params, s.reason, s.description)
                  for s in made),
            any(s.kind is StepKind.DRAIN for s in made),
            (t.control_plane, t.family, t.kubelet, t.kubelet_pkg, t.kubectl_pkg, t.kubeadm_pkg,
             t.kubeadm, t.managed, t.repo, t.images, t.schedulable, t.ready), (state, args),
            self._ahead_made)

    def _memo(self, key: tuple[Any, ...], make: Callable[[], _T]) -> _T:
        """A description or expectation shared by every step with the same `key`."""
        value = self._shared.get(key)
        if value is None:
            value = self._shared[key] = make()
        return value  # type: ignore[no-any-return]

    def _minor(self, version: KubeVersion) -> MinorVersion:
        return pn.minor_of(version)

    # --- node sequences --------------------------------------------------------------------

    def repo(self, t: pn.NodeTrack, minor: MinorVersion, tag: str = "") -> None:
        """Point the node's repository at `minor` unless it already is (pkgs.k8s.io has one
        repository per minor)."""
        if t.repo != minor:
            text, expect = self._memo(("repo", minor), lambda: (
                f"point the package repository at Kubernetes {minor}",
                {"repoMinor": str(minor)}))
            self.add(t.name, StepKind.REPO_SWITCH, text,
                     commands=pn.repo_switch_commands(t.family, minor), expect=expect, tag=tag,
                     params={"version": f"v{minor}.0"} if tag else None)
            t.repo = minor

    def repo_and_kubeadm(self, t: pn.NodeTrack, version: KubeVersion) -> None:
        """Point the repository at the hop's minor (when needed) and install its kubeadm and
        kubectl: kubectl goes with kubeadm, before any drain (kubernetes/website#57275), so it
        stays within one minor of the apiservers as kubeadm moves them."""
        self.repo(t, self._minor(version))
        pv = t.package(version)
        if t.kubeadm_pkg != pv or t.kubeadm != version or t.kubectl_pkg != pv:
            pinned = pn.pin_state(t, {"kubeadm": pv, "kubectl": pv})
            text, expect = self._memo(("kubeadm", pv, id(t.family) if pinned else 0, pinned),
                                      lambda: _install_texts(t, "kubeadm and kubectl", pv,
                                                             {"kubeadm": pv, "kubectl": pv},
                                                             pinned))
            self.add(t.name, StepKind.KUBEADM_INSTALL, text,
                     commands=pn.install_commands(t.family, version, ("kubeadm", "kubectl"),
                                                  pinned),
                     expect=expect)
            t.kubeadm_pkg, t.kubeadm, t.kubectl_pkg = pv, version, pv

    def prepare(self, t: pn.NodeTrack, version: KubeVersion, *, kubeadm_node: bool) -> None:
        """A worker following the hop without a drain: repository, kubeadm and (unless its
        kubelet is upgraded in a wave of this hop) `kubeadm upgrade node`."""
        def run() -> None:
            self.repo_and_kubeadm(t, version)
            if kubeadm_node:
                self.kubeadm_node(t, version)
        self._sequence(t, ("prepare", id(version), kubeadm_node), (version,), run)

    def kubeadm_apply(self, t: pn.NodeTrack, version: KubeVersion) -> None:
        """First control plane: `kubeadm upgrade plan` as a gate, an etcd snapshot (stacked etcd),
        then `upgrade apply`."""
        self.add(t.name, StepKind.KUBEADM_PLAN,
                 f"kubeadm upgrade plan {version}: kubeadm's own health and version checks",
                 commands=pn.kubeadm_plan_commands(version))
        if self.etcd_snapshot:
            path = pn.etcd_snapshot_path(version)
            self.add(t.name, StepKind.ETCD_SNAPSHOT,
                     f"save and verify an etcd snapshot in {path} (restore point before "
                     f"kubeadm upgrades etcd and the control plane to {version})",
                     commands=pn.etcd_snapshot_commands(version), expect={"etcdSnapshot": path})
        expect: dict[str, ExpectValue] = {"kubernetesVersion": str(version)}
        expect.update(dict.fromkeys(pn.VERSIONED_COMPONENTS, str(version)))
        self.add(t.name, StepKind.KUBEADM_APPLY,
                 f"kubeadm upgrade apply {version}: etcd, kube-apiserver, "
                 f"kube-controller-manager, kube-scheduler, then kubeadm-config",
                 commands=pn.kubeadm_apply_commands(version), expect=expect)
        t.images, t.managed = version, self._minor(version)

    def kubeadm_node(self, t: pn.NodeTrack, version: KubeVersion) -> None:
        """`kubeadm upgrade node`: a control plane's static pods, or a worker's kubelet config."""
        if t.control_plane:
            self.add(t.name, StepKind.KUBEADM_NODE,
                     f"kubeadm upgrade node: this control plane's static pods to {version}",
                     commands=pn.KUBEADM_NODE_COMMANDS,
                     expect=dict.fromkeys(pn.VERSIONED_COMPONENTS, str(version)))
            t.images = version
        else:
            text = self._memo(("kubeadm-node", version.major, version.minor), lambda: (
                f"kubeadm upgrade node: the kubelet configuration of {version.minor_version}"))
            self.add(t.name, StepKind.KUBEADM_NODE, text, commands=pn.KUBEADM_NODE_COMMANDS)
        t.managed = self._minor(version)

    def drain_reason(self, t: pn.NodeTrack, version: KubeVersion) -> str:
        # Skew policy: in-place minor kubelet upgrades are not supported; drain first.
        k = t.kubelet
        if k is None or (k.major, k.minor) != (version.major, version.minor):
            return DRAIN_MINOR
        return DRAIN_ALWAYS if self.drain_policy == "always" else DRAIN_SKIPPED

    def kubelet_upgrade(self, t: pn.NodeTrack, version: KubeVersion, *, kubeadm_node: bool,
                        via: KubeVersion | None = None) -> None:
        """See `_kubelet_upgrade`; replayed for nodes in the same state with the same pods."""
        load = self.index.load(t.name)
        head = ("kubelet", id(version), id(via), kubeadm_node, t.name in self.precordoned,
                load.evictable, load.primaries, bool(load.empty_dir), bool(load.bare))
        self._sequence(t, head, (version, via), lambda: self._kubelet_upgrade(
            t, version, kubeadm_node=kubeadm_node, via=via))

    def _kubelet_upgrade(self, t: pn.NodeTrack, version: KubeVersion, *, kubeadm_node: bool,
                         via: KubeVersion | None = None) -> None:
        """(Worker: kubeadm and kubectl, kubeadm upgrade node), cordon, drain, kubelet,
        restart, wait Ready, uncordon — the drain only when the kubelet changes minor or the
        policy says always.

        `via`: a kubelet version to pass through first, on the drained node, when the hop's
        kubeadm could not manage the current kubelet (kubeadm before 1.29 manages kubelets one
        minor older only)."""
        name = t.name
        reason = self.drain_reason(t, version)
        drain = reason != DRAIN_SKIPPED
        cordoned_here = drain and name not in self.precordoned
        # The upstream worker page: kubeadm, `kubeadm upgrade node`, then drain (the kubelet
        # reads its rewritten configuration only when restarted). With a `via` kubelet first,
        # kubeadm waits until that kubelet is one it can manage.
        early = kubeadm_node and via is None
        if early:
            self._ahead += 1
            try:
                self.repo_and_kubeadm(t, version)
                self.kubeadm_node(t, version)
            finally:
                self._ahead -= 1
        if cordoned_here:
            self.add(name, StepKind.CORDON, "cordon: no new pods", expect=_CORDONED, reason=reason)
        load = self.index.load(name)
        if drain and load.primaries:
            self.add(name, StepKind.SWITCHOVER,
                     f"wait for CloudNativePG to switch over {', '.join(load.primaries)} "
                     f"to a replica on another node (it does so when the node is cordoned)",
                     expect={"primaryNotOnNode": True},
                     params={"databases": load.primaries})
        if drain:
            self.add(name, StepKind.DRAIN,
                     f"drain: evict {load.evictable} pods through the Eviction API "
                     f"(PodDisruptionBudgets honoured)",
                     expect=_DRAINED,
                     params=self._memo(("drain", bool(load.empty_dir), bool(load.bare)),
                                       lambda: {"ignoreDaemonsets": True,
                                                "deleteEmptydirData": bool(load.empty_dir),
                                                "force": bool(load.bare)}),
                     reason=reason)
        if via is not None:
            tag = f"@{via.minor_version}"
            self.repo(t, self._minor(via), tag)
            self._kubelet(t, via, None if drain else reason, tag)
        if kubeadm_node and not early:
            self.repo_and_kubeadm(t, version)
            self.kubeadm_node(t, version)
        self.repo(t, self._minor(version))
        self._kubelet(t, version, None if drain else reason)
        if cordoned_here:
            expect = self._memo(("uncordon", t.package(version)),
                                lambda: {"kubelet": str(version), "schedulable": True})
            self.add(name, StepKind.UNCORDON, "uncordon: schedulable again", expect=expect)

    def _kubelet(self, t: pn.NodeTrack, version: KubeVersion, reason: str | None,
                 tag: str = "") -> None:
        name = t.name
        pv = t.package(version)
        texts = self._memo(("kubelet", pv), lambda: _kubelet_texts(version, pv))
        # Steps towards another version than the hop's say which in params["version"].
        params = {"version": str(version)} if tag else None
        if t.kubelet_pkg != pv:  # (kubectl came with kubeadm: `repo_and_kubeadm`)
            pinned = pn.pin_state(t, {"kubelet": pv})
            text, expect = (texts[0], texts[1]) if not pinned else self._memo(
                ("kubelet", pv, id(t.family), pinned),
                lambda: _install_texts(t, "kubelet", pv, {"kubeletPackage": pv}, pinned))
            self.add(name, StepKind.KUBELET_INSTALL, text,
                     commands=pn.install_commands(t.family, version, ("kubelet",), pinned),
                     expect=expect, tag=tag, params=params)
            t.kubelet_pkg = pv
        self.add(name, StepKind.KUBELET_RESTART, texts[2],
                 commands=pn.KUBELET_RESTART_COMMANDS, expect=texts[3], reason=reason,
                 tag=tag, params=params)
        self.add(name, StepKind.WAIT_READY, texts[4], expect=texts[5], tag=tag, params=params)
        t.kubelet = version
