"""Builds the step DAG: waves closed by gate steps, each node's steps chained in order.

Structure (see `model.plan`): every step of a wave comes after the gate that closed the previous
wave, and a gate comes after every step of its wave (and after the previous gate), so gates form
a chain and two steps can only run together when no gate separates them. "Prepare" steps
(kubeadm on workers, no drain) run beside the worker waves of their hop and are closed by the
hop's final gate.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

from kubehop.core import steps
from kubehop.core.planner import nodes as pn
from kubehop.core.steps.base import minor_of
from kubehop.core.workloads import WorkloadIndex
from kubehop.model.plan import (
    Command,
    ExpectKey,
    ExpectValue,
    ParamValue,
    Step,
    StepKind,
    Wave,
)
from kubehop.model.versions import KubeVersion, MinorVersion

DRAIN_MINOR = "kubelet changes minor: drain required"
DRAIN_ALWAYS = "drain policy always: drain before every kubelet restart"
DRAIN_SKIPPED = "patch-level restart: drain skipped"
_EMPTY: Mapping[ExpectKey, ExpectValue] = {}
_NO_PARAMS: Mapping[str, ParamValue] = {}
# A step without its id, node, hop, waits and wave: (kind, commands, expect, params, reason,
# description).
Row = tuple[StepKind, tuple[Command, ...], Mapping[ExpectKey, ExpectValue],
            Mapping[str, ParamValue], str | None, str]


@dataclass(frozen=True, slots=True)
class Recipe:
    """A node sequence without the node (see `PlanBuilder._sequence`): its steps' id suffixes
    and rows, whether one drains, the track's state after them, and how many leading steps may
    start a wave early (`PlanBuilder.ahead`)."""

    suffixes: tuple[str, ...]
    rows: tuple[Row, ...]
    drains: bool
    end_state: pn.TrackState
    ahead: int


# Steps of a worker that neither cordon nor disrupt it (kubeadm and its repository; `kubeadm
# upgrade node` rewrites the kubelet's configuration, read only when the kubelet restarts).
AHEAD_KINDS = frozenset({StepKind.REPO_SWITCH, StepKind.KUBEADM_INSTALL, StepKind.KUBEADM_NODE})


def chain(ids: list[str], node: str, hop: str, after: tuple[str, ...], rows: tuple[Row, ...],
          wave: int | None) -> list[Step]:
    """Steps `ids` of `node` from `rows`, each waiting for the one before it (the first for
    `after`)."""
    out: list[Step] = []
    append = out.append
    for step_id, (kind, commands, expect, params, reason, description) in zip(
            ids, rows, strict=True):
        append(Step(step_id, kind, node, hop, after, commands, expect, params, wave, reason,
                    description))
        after = (step_id,)
    return out


class PlanBuilder:
    """Accumulates steps, waves and gates; node-level sequences of the upstream guide."""

    def __init__(self, tracks: Mapping[str, pn.NodeTrack], index: WorkloadIndex,
                 drain_policy: str, *, memo: bool = True) -> None:
        self.tracks = tracks
        self.memo = memo  # replay node sequences of nodes in equal states (`_sequence`)
        self.index = index
        self.drain_policy = drain_policy
        self.etcd_snapshot = True  # stacked etcd: a snapshot before each `kubeadm upgrade apply`
        self.steps: list[Step] = []
        self.waves: list[Wave] = []
        self.precordoned = {n for n, t in tracks.items() if not t.schedulable}
        self._ids: set[str] = set()
        self._recipes: dict[tuple[Hashable, pn.TrackState], Recipe] = {}
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
                               description=steps.gate.DESCRIPTION))
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
            commands: tuple[Command, ...] = (),
            expect: Mapping[ExpectKey, ExpectValue] | None = None,
            params: Mapping[str, ParamValue] | None = None, reason: str | None = None,
            tag: str = "") -> Step:
        """A step of `node` in the open wave (or, with no wave open, a prepare step); `tag`
        tells apart two steps of one kind on one node in one hop."""
        wave, after = self._place(node)
        if self._ahead:
            self._ahead_made += 1
        step_id = f"{self._prefix}/{node}/{kind}{tag}"
        step = Step(step_id, kind, node, self._hop, after, commands,
                    _EMPTY if expect is None else expect, params or _NO_PARAMS, wave, reason,
                    description)
        if step_id in self._ids:
            raise RuntimeError(f"planner bug: duplicate step id {step_id}")
        self._ids.add(step_id)
        self.steps.append(step)
        self._tail[node] = step_id
        if kind is StepKind.DRAIN:
            self.drained[node] = None
        return step

    def _emit(self, node: str, recipe: Recipe) -> None:
        """`add` for each step of `recipe` on `node` (the same ids, waits and waves)."""
        rows = recipe.rows
        if not rows:
            return
        ahead = recipe.ahead
        self._ahead += bool(ahead)
        wave, after = self._place(node)
        self._ahead -= bool(ahead)
        base = f"{self._prefix}/{node}/"
        ids = [base + suffix for suffix in recipe.suffixes]
        if not self._ids.isdisjoint(ids):
            raise RuntimeError(f"planner bug: duplicate step id "
                               f"{next(i for i in ids if i in self._ids)}")
        self._ids.update(ids)
        if ahead and node in self._owing and ahead < len(ids):
            self._owing.discard(node)
            self.steps += chain(ids[:ahead], node, self._hop, after, rows[:ahead], wave)
            after = tuple(x for x in (self._gate, ids[ahead - 1]) if x)  # (as `_place`)
            ids, rows = ids[ahead:], rows[ahead:]
        self.steps += chain(ids, node, self._hop, after, rows, wave)
        self._tail[node] = ids[-1]
        if recipe.drains:
            self.drained[node] = None

    def _sequence(self, t: pn.NodeTrack, head: Hashable, run: Callable[[], None]) -> None:
        """`run()` — which adds steps of node `t` only and updates `t` — or, when a node in an
        equal state ran the same sequence (`head`: its name and arguments, as values), replay
        its steps and end state: 5,000 workers make a few recipes. With `memo` off, always
        `run()`."""
        if not self.memo:
            run()
            return
        key = (head, t.state)
        recipe = self._recipes.get(key)
        if recipe is not None:
            self._emit(t.name, recipe)
            t.state = recipe.end_state
            return
        start = len(self.steps)
        self._ahead_made = 0
        run()
        made = self.steps[start:]
        if any(s.node != t.name for s in made):
            return
        cut = len(self._prefix) + len(t.name) + 2
        self._recipes[key] = Recipe(
            tuple(s.id[cut:] for s in made),
            tuple((s.kind, s.commands, s.expect, s.params, s.reason, s.description)
                  for s in made),
            any(s.kind is StepKind.DRAIN for s in made), t.state, self._ahead_made)

    def _minor(self, version: KubeVersion) -> MinorVersion:
        return minor_of(version)

    # --- node sequences --------------------------------------------------------------------

    def repo(self, t: pn.NodeTrack, minor: MinorVersion, tag: str = "") -> None:
        """Point the node's repository at `minor` unless it already is (pkgs.k8s.io has one
        repository per minor)."""
        if t.repo != minor:
            self.add(t.name, StepKind.REPO_SWITCH, steps.repo_switch.description(minor),
                     commands=steps.repo_switch.commands(t.family, minor),
                     expect=steps.repo_switch.expect(minor), tag=tag,
                     params={"version": f"v{minor}.0"} if tag else None)
            t.update(repo=minor)

    def repo_and_kubeadm(self, t: pn.NodeTrack, version: KubeVersion) -> None:
        """Point the repository at the hop's minor (when needed) and install its kubeadm and
        kubectl (see `core.steps.kubeadm_install`)."""
        self.repo(t, self._minor(version))
        pv = t.package(version)
        if t.kubeadm_pkg != pv or t.kubeadm != version or t.kubectl_pkg != pv:
            pinned = pn.pin_state(t, {"kubeadm": pv, "kubectl": pv})
            text, expect = steps.kubeadm_install.texts(t.family, pv, pinned)
            self.add(t.name, StepKind.KUBEADM_INSTALL, text,
                     commands=steps.kubeadm_install.commands(t.family, version, pinned),
                     expect=expect)
            t.update(kubeadm_pkg=pv, kubeadm=version, kubectl_pkg=pv)

    def prepare(self, t: pn.NodeTrack, version: KubeVersion, *, kubeadm_node: bool) -> None:
        """A worker following the hop without a drain: repository, kubeadm and (unless its
        kubelet is upgraded in a wave of this hop) `kubeadm upgrade node`."""
        def run() -> None:
            self.repo_and_kubeadm(t, version)
            if kubeadm_node:
                self.kubeadm_node(t, version)
        self._sequence(t, ("prepare", version, kubeadm_node), run)

    def kubeadm_apply(self, t: pn.NodeTrack, version: KubeVersion) -> None:
        """First control plane: `kubeadm upgrade plan` as a gate, an etcd snapshot (stacked etcd),
        then `upgrade apply`."""
        self.add(t.name, StepKind.KUBEADM_PLAN, steps.kubeadm_plan.description(version),
                 commands=steps.kubeadm_plan.commands(version))
        if self.etcd_snapshot:
            self.add(t.name, StepKind.ETCD_SNAPSHOT, steps.etcd_snapshot.description(version),
                     commands=steps.etcd_snapshot.commands(version),
                     expect=steps.etcd_snapshot.expect(version))
        self.add(t.name, StepKind.KUBEADM_APPLY, steps.kubeadm_apply.description(version),
                 commands=steps.kubeadm_apply.commands(version),
                 expect=steps.kubeadm_apply.expect(version))
        t.update(images=version, managed=self._minor(version))

    def kubeadm_node(self, t: pn.NodeTrack, version: KubeVersion) -> None:
        """`kubeadm upgrade node`: a control plane's static pods, or a worker's kubelet config."""
        if t.control_plane:
            self.add(t.name, StepKind.KUBEADM_NODE,
                     steps.kubeadm_node.control_plane_description(version),
                     commands=steps.kubeadm_node.COMMANDS,
                     expect=steps.kubeadm_node.control_plane_expect(version))
            t.update(images=version, managed=self._minor(version))
        else:
            self.add(t.name, StepKind.KUBEADM_NODE,
                     steps.kubeadm_node.worker_description(self._minor(version)),
                     commands=steps.kubeadm_node.COMMANDS)
            t.update(managed=self._minor(version))

    def drain_reason(self, t: pn.NodeTrack, version: KubeVersion) -> str:
        # Skew policy: in-place minor kubelet upgrades are not supported; drain first.
        k = t.kubelet
        if k is None or (k.major, k.minor) != (version.major, version.minor):
            return DRAIN_MINOR
        return DRAIN_ALWAYS if self.drain_policy == "always" else DRAIN_SKIPPED

    def kubelet_upgrade(self, t: pn.NodeTrack, version: KubeVersion, *, kubeadm_node: bool,
                        via: KubeVersion | None = None) -> None:
        """See `_kubelet_upgrade`; replayed for nodes in equal states with the same pods."""
        load = self.index.load(t.name)
        head = ("kubelet", version, via, kubeadm_node, t.name in self.precordoned,
                load.evictable, load.primaries, bool(load.empty_dir), bool(load.bare))
        self._sequence(t, head, lambda: self._kubelet_upgrade(
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
        drains = reason != DRAIN_SKIPPED
        cordoned_here = drains and name not in self.precordoned
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
            self.add(name, StepKind.CORDON, steps.cordon.DESCRIPTION, expect=steps.cordon.EXPECT,
                     reason=reason)
        load = self.index.load(name)
        if drains and load.primaries:
            self.add(name, StepKind.SWITCHOVER, steps.switchover.description(load.primaries),
                     expect=steps.switchover.EXPECT,
                     params=steps.switchover.params(load.primaries))
        if drains:
            self.add(name, StepKind.DRAIN, steps.drain.description(load.evictable),
                     expect=steps.drain.EXPECT,
                     params=steps.drain.params(bool(load.empty_dir), bool(load.bare)),
                     reason=reason)
        if via is not None:
            tag = f"@{via.minor_version}"
            self.repo(t, self._minor(via), tag)
            self._kubelet(t, via, None if drains else reason, tag)
        if kubeadm_node and not early:
            self.repo_and_kubeadm(t, version)
            self.kubeadm_node(t, version)
        self.repo(t, self._minor(version))
        self._kubelet(t, version, None if drains else reason)
        if cordoned_here:
            self.add(name, StepKind.UNCORDON, steps.uncordon.DESCRIPTION,
                     expect=steps.uncordon.expect(version))

    def _kubelet(self, t: pn.NodeTrack, version: KubeVersion, reason: str | None,
                 tag: str = "") -> None:
        name = t.name
        pv = t.package(version)
        # Steps towards another version than the hop's say which in params["version"].
        params = {"version": str(version)} if tag else None
        if t.kubelet_pkg != pv:  # (kubectl came with kubeadm: `repo_and_kubeadm`)
            pinned = pn.pin_state(t, {"kubelet": pv})
            text, expect = steps.kubelet_install.texts(t.family, pv, pinned)
            self.add(name, StepKind.KUBELET_INSTALL, text,
                     commands=steps.kubelet_install.commands(t.family, version, pinned),
                     expect=expect, tag=tag, params=params)
            t.update(kubelet_pkg=pv)
        self.add(name, StepKind.KUBELET_RESTART, steps.kubelet_restart.description(version),
                 commands=steps.kubelet_restart.COMMANDS,
                 expect=steps.kubelet_restart.expect(version), reason=reason, tag=tag,
                 params=params)
        self.add(name, StepKind.WAIT_READY, steps.wait_ready.description(version),
                 expect=steps.wait_ready.expect(version), tag=tag, params=params)
        t.update(kubelet=version)
