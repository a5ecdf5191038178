"""Is a plan file what the planner would give? A plan is data anyone can edit; `apply` runs its
commands as root on every node, so before anything runs (and on every resume) it must be
exactly the planner's, up to what legitimately varies.

    mismatch = verify_plan(plan, observed, release_data, baseline=observed)
    if mismatch: refuse(str(mismatch))       # "step 1.29/w1/repo-switch: commands: ..."

Checks, in order (the first mismatch is returned):
1. the header: `from`, `to` and `hops` are versions, `to` is a release the data knows (unless
   the plan says `allowUnknownVersion`), the hops climb one minor at a time to `to`, and
   `maxUnavailableNodes` is what the plan's own `--max-unavailable` gives this cluster;
2. the DAG: ids unique; `after` names earlier steps only; a step waits for nothing but its
   node's previous step and the latest gate (as `PlanBuilder._place` makes it); gates chained;
   every step is waited for by a later one;
3. the planner: planned again from `baseline` (the node facts the plan was made from) with the
   plan's own target, hops and options, every step not done yet (done ones never run again)
   must be one the planner gives, with the same kind, node, hop, commands, expect, params and
   reason — the commands come from the planner's own builders, so they follow
   `core.node_commands` — and each node's steps in the planner's order. Pods are left out of
   the baseline (the fingerprint leaves them out too): waves, gates and switchover steps may
   differ, so dependencies are judged by rule 2, switchovers only where the planner drains,
   and a drain's `force`/`deleteEmptydirData` only where the node runs such pods now;
4. the re-simulation: the steps not done yet replayed on the observed state (with pods), from
   where the done ones left it, through the simulator's invariants (`core.simulate`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from kubehop.core.planner.build import AHEAD_KINDS
from kubehop.core.planner.make import plan_upgrade
from kubehop.core.simulate.dag import Violation, check_concurrency, slot_ranges
from kubehop.core.simulate.state import SimState
from kubehop.core.steps import switchover
from kubehop.core.workloads import WorkloadIndex
from kubehop.model.cluster import ClusterState
from kubehop.model.errors import UsageError, VersionError
from kubehop.model.plan import Plan, Step, StepKind
from kubehop.model.releases import ReleaseData
from kubehop.model.versions import KubeVersion, parse_kube_version

_GATE_ID = re.compile(r"(?P<prefix>[^/]+)/(?:wave\d+/)?done")
_SWITCHOVER_EXPECT = dict(switchover.EXPECT)
# Drain params whose True deletes data or unmanaged pods: allowed only where such pods run.
_DRAIN_FLAGS = ("deleteEmptydirData", "force")


@dataclass(frozen=True, slots=True)
class PlanMismatch:
    """Where a plan differs from what kubehop would run: a step (None: the plan's header), the
    field, and how."""

    step: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"step {self.step}" if self.step else "plan"
        return f"{where}: {self.field}: {self.message}"


def verify_plan(plan: Plan, observed: ClusterState, data: ReleaseData, *,
                baseline: ClusterState | None, done: Collection[str] = frozenset(),
                started: Collection[str] = frozenset()) -> PlanMismatch | None:
    """The first way `plan` differs from what kubehop would run on `observed` (see the module
    docstring), or None. `baseline`: the state the plan was made from (None: unknown, a run
    recorded by an older kubehop: the planner comparison is skipped); `done`: steps the run
    finished; `started`: steps the run began (their drain flags are not judged again)."""
    return (_header(plan, observed, data) or _structure(plan)
            or (_against_planner(plan, baseline, data, set(done)) if baseline is not None
                else None)
            or _drain_flags(plan, observed, set(done) | set(started))
            or _simulate(plan, observed, set(done), set(done) | set(started)))


# --- 1. the header -------------------------------------------------------------------------


def _version(text: str, field: str) -> KubeVersion | PlanMismatch:
    try:
        return parse_kube_version(text)
    except VersionError:
        return PlanMismatch(None, field, f"{text!r} is not a Kubernetes version")


def _header(plan: Plan, observed: ClusterState, data: ReleaseData) -> PlanMismatch | None:
    start = _version(plan.from_version, "from")
    if isinstance(start, PlanMismatch):
        return start
    final = _version(plan.to_version, "to")
    if isinstance(final, PlanMismatch):
        return final
    if not data.is_known(final) and not plan.strategy.allow_unknown_version:
        return PlanMismatch(None, "to", f"{final} is not a release the data knows (data of "
                                        f"{data.data_date})")
    hops: list[KubeVersion] = []
    for i, text in enumerate(plan.hops):
        hop = _version(text, f"hops[{i}]")
        if isinstance(hop, PlanMismatch):
            return hop
        hops.append(hop)
    if not hops and final != start:
        return PlanMismatch(None, "hops", f"no hop from {start} to {final}")
    if hops and hops[-1] != final:
        return PlanMismatch(None, "hops", f"the last hop {hops[-1]} is not the target {final}")
    previous = start
    for i, hop in enumerate(hops):
        # The apiserver never skips a minor (version-skew-policy.md; kubeadm policy.go).
        if hop <= previous or hop.minor_version.minus(previous.minor_version) > 1:
            return PlanMismatch(None, f"hops[{i}]", f"{hop} does not follow {previous} by at "
                                                    f"most one minor")
        if i < len(hops) - 1 and not data.is_known(hop):
            return PlanMismatch(None, f"hops[{i}]", f"{hop} is not a release the data knows")
        previous = hop
    workers = len(observed.worker_nodes)
    limit = plan.strategy.max_unavailable_nodes(workers)
    if plan.max_unavailable_nodes != limit:
        return PlanMismatch(None, "strategy.maxUnavailableNodes",
                            f"{plan.max_unavailable_nodes}, but --max-unavailable "
                            f"{plan.strategy.max_unavailable} of {workers} workers is {limit}")
    return None


# --- 2. the DAG -----------------------------------------------------------------------------


def _structure(plan: Plan) -> PlanMismatch | None:
    """The dependencies `PlanBuilder` gives: a step waits for its node's previous step and/or
    the latest gate, nothing else; a gate for the previous gate and steps before it. A worker's
    kubeadm steps (`AHEAD_KINDS`) may instead wait for the gate before the latest (they run
    beside the previous workers wave); then the node's next other step waits for the latest."""
    steps = plan.steps
    if not steps:
        return PlanMismatch(None, "steps", "the plan has no steps")
    ids = {s.id for s in steps}
    position: dict[str, int] = {}
    gate: str | None = None
    prior: str | None = None  # the gate before `gate`
    owing: set[str] = set()  # nodes that went ahead and owe the latest gate
    previous: dict[str, int] = {}  # node → position of its latest step
    for i, s in enumerate(steps):
        if s.id in position:
            return PlanMismatch(s.id, "id", "a second step with this id")
        for a in s.after:
            if a not in position:
                where = "a later step" if a in ids else "not a step of the plan"
                return PlanMismatch(s.id, "after", f"waits for {a}, {where}")
        if s.kind is StepKind.GATE:
            found = _gate_shape(s, gate, steps, position)
            if found:
                return found
            prior, gate = gate, s.id
        else:
            if not s.node:
                return PlanMismatch(s.id, "node", f"a {s.kind} step names no node")
            p = previous.get(s.node)
            prev = steps[p].id if p is not None else None
            ahead = prior is not None and prior in s.after and s.kind in AHEAD_KINDS and (
                p is None or p < position[prior])
            if ahead:
                owing.add(s.node)
                previous[s.node] = i
                position[s.id] = i
                if len(s.after) != 1:
                    return PlanMismatch(s.id, "after", f"waits for {prior} and more: a step "
                                                       f"going ahead waits for that gate only")
                continue
            if s.node in owing and s.kind not in AHEAD_KINDS:
                owing.discard(s.node)
                if gate not in s.after:
                    return PlanMismatch(s.id, "after", f"does not wait for the gate {gate}")
            allowed = {x for x in (gate, prev) if x}
            for a in s.after:
                if a not in allowed:
                    return PlanMismatch(s.id, "after", f"waits for {a}: a step waits only for "
                                                       f"its node's previous step and the "
                                                       f"latest gate")
            # The latest gate's position (-1: none yet), and whether the step waits for it.
            g = position[gate] if gate is not None else -1
            behind_gate = gate is not None and gate in s.after
            if gate is not None and not behind_gate and (p is None or p < g):
                return PlanMismatch(s.id, "after", f"does not wait for the gate {gate}")
            if p is not None and prev not in s.after and not (behind_gate and g > p):
                return PlanMismatch(s.id, "after", f"does not wait for {prev}, the previous "
                                                   f"step of node {s.node}")
            previous[s.node] = i
        position[s.id] = i
    waited = {a for s in steps for a in s.after}
    for s in steps:
        if s.kind is not StepKind.GATE and s.id not in waited:
            return PlanMismatch(s.id, "after", "no later step or gate waits for it")
    if steps[-1].kind is not StepKind.GATE:
        return PlanMismatch(steps[-1].id, "kind", "the plan must end with a gate")
    return None


def _gate_shape(s: Step, gate: str | None, steps: Sequence[Step],
                position: Mapping[str, int]) -> PlanMismatch | None:
    if s.node is not None:
        return PlanMismatch(s.id, "kind", f"a gate on node {s.node} (gates run nothing)")
    if s.commands or s.expect or s.params:
        field = "commands" if s.commands else "expect" if s.expect else "params"
        return PlanMismatch(s.id, field, "a gate runs nothing and expects nothing")
    if not _GATE_ID.fullmatch(s.id):
        return PlanMismatch(s.id, "kind", f"gate, but {s.id} is not a gate's id (HOP/waveN/done "
                                          f"or HOP/done)")
    if gate is not None and (not s.after or s.after[0] != gate):
        return PlanMismatch(s.id, "after", f"does not wait for the previous gate {gate}")
    for a in s.after[1 if gate else 0:]:
        if steps[position[a]].kind is StepKind.GATE:
            return PlanMismatch(s.id, "after", f"waits for the earlier gate {a}")
    return None


# --- 3. the planner -------------------------------------------------------------------------


def _pinned(data: ReleaseData, hops: Sequence[KubeVersion]) -> ReleaseData:
    """`data` without the patches newer than the plan's intermediate hops: planning again then
    takes the plan's hops (the planner takes the newest patch of each intermediate minor, and
    the data may have grown since the plan was made)."""
    pins = {(h.major, h.minor): h for h in hops[:-1]}
    releases = tuple(
        replace(r, patches=tuple(p for p in r.patches if p.version <= pins[key]))
        if (key := (r.minor.major, r.minor.minor)) in pins else r
        for r in data.releases)
    return replace(data, releases=releases)


def replan(plan: Plan, baseline: ClusterState, data: ReleaseData) -> Plan:
    """The plan the planner gives `baseline` for `plan`'s own target, hops and options,
    without pods (UsageError when it refuses)."""
    hops = [parse_kube_version(h) for h in plan.hops]
    nodes_only = replace(baseline, pods=(), pdbs=(), databases=())
    return plan_upgrade(nodes_only, plan.to_version, _pinned(data, hops), plan.strategy)


def _against_planner(plan: Plan, baseline: ClusterState, data: ReleaseData, done: set[str]
                     ) -> PlanMismatch | None:
    """Steps not done yet against the planner's (done ones never run again)."""
    try:
        wanted = replan(plan, baseline, data)
    except UsageError as e:
        return PlanMismatch(None, "steps", f"planning again from the state the plan was made "
                                           f"from fails: {e}")
    for field, have, want in (("from", plan.from_version, wanted.from_version),
                              ("hops", plan.hops, wanted.hops)):
        if have != want:
            return PlanMismatch(None, field, f"{_show(have)}, the planner says {_show(want)}")
    by_id = {s.id: s for s in wanted.steps}
    drains = {s.id for s in wanted.steps if s.kind is StepKind.DRAIN}
    node_steps: dict[str, list[str]] = {}
    for i, s in enumerate(plan.steps):
        if s.id in done:
            continue
        want = by_id.get(s.id)
        if want is None:
            found = _extra_step(s, plan.steps, i, drains)
        elif s.kind is StepKind.GATE and want.kind is StepKind.GATE:
            found = _gate_hop(s, wanted)
        else:
            found = _compare(s, want)
        if found:
            return found
        if s.node and s.kind is not StepKind.SWITCHOVER:
            node_steps.setdefault(s.node, []).append(s.id)
    wanted_steps: dict[str, list[str]] = {}
    for s in wanted.steps:
        if s.node and s.id not in done:
            wanted_steps.setdefault(s.node, []).append(s.id)
    for node, want_ids in wanted_steps.items():
        have_ids = node_steps.get(node, [])
        missing = [x for x in want_ids if x not in set(have_ids)]
        if missing:
            return PlanMismatch(missing[0], "steps", f"missing: the planner gives node {node} "
                                                     f"this step")
        if have_ids != want_ids:
            k = next(k for k, (a, b) in enumerate(zip(have_ids, want_ids, strict=True)) if a != b)
            return PlanMismatch(have_ids[k], "order", f"comes where the planner runs "
                                                      f"{want_ids[k]} on node {node}")
    return None


def _show(value: object) -> str:
    return ", ".join(value) if isinstance(value, tuple) else str(value)


def _gate_hop(s: Step, wanted: Plan) -> PlanMismatch | None:
    want = wanted.step(s.id)
    if s.hop != want.hop:
        return PlanMismatch(s.id, "hop", f"{s.hop!r}, the planner says {want.hop!r}")
    return None


def _compare(s: Step, want: Step) -> PlanMismatch | None:
    fields: tuple[tuple[str, object, object], ...] = (
        ("kind", s.kind, want.kind), ("node", s.node, want.node), ("hop", s.hop, want.hop),
        ("commands", s.commands, want.commands), ("expect", dict(s.expect), dict(want.expect)),
        ("reason", s.reason, want.reason))
    for field, have, wanted in fields:
        if have != wanted:
            if field == "commands":
                return _command_difference(s, want)
            return PlanMismatch(s.id, field, f"{have!r}, the planner gives {wanted!r}")
    params, want_params = dict(s.params), dict(want.params)
    if s.kind is StepKind.DRAIN:  # pods decide these flags: judged against the cluster later
        if set(params) != set(want_params) or any(
                not isinstance(params[k], bool) for k in _DRAIN_FLAGS if k in params):
            return PlanMismatch(s.id, "params", f"{params!r}, the planner gives keys "
                                                f"{sorted(want_params)} with booleans")
        params = {k: v for k, v in params.items() if k not in _DRAIN_FLAGS}
        want_params = {k: v for k, v in want_params.items() if k not in _DRAIN_FLAGS}
    if params != want_params:
        return PlanMismatch(s.id, "params", f"{params!r}, the planner gives {want_params!r}")
    return None


def _command_difference(s: Step, want: Step) -> PlanMismatch:
    have, wanted = [c.line for c in s.commands], [c.line for c in want.commands]
    for k, line in enumerate(have):
        if k >= len(wanted):
            return PlanMismatch(s.id, f"commands[{k}]", f"{line!r} is not a command of a "
                                                        f"{s.kind} step")
        if line != wanted[k]:
            return PlanMismatch(s.id, f"commands[{k}]", f"{line!r}, the planner gives "
                                                        f"{wanted[k]!r}")
    return PlanMismatch(s.id, f"commands[{len(have)}]", f"missing {wanted[len(have)]!r}")


def _extra_step(s: Step, steps: Sequence[Step], i: int, drains: set[str]) -> PlanMismatch | None:
    """A step the planner did not give: a gate (waves follow pods) or a switchover (primaries
    follow pods) right before a drain the planner gives; nothing else."""
    if s.kind is StepKind.GATE:
        return None  # its shape was checked with the DAG
    if s.kind is not StepKind.SWITCHOVER:
        return PlanMismatch(s.id, "id", f"not a step the planner gives (a {s.kind} step)")
    drain = s.id.removesuffix("/switchover") + "/drain"
    nxt = next((t for t in steps[i + 1:] if t.node == s.node), None)
    if not s.id.endswith("/switchover") or drain not in drains or nxt is None or (
            nxt.id != drain):
        return PlanMismatch(s.id, "kind", "a switchover comes only right before a drain the "
                                          "planner gives")
    if s.commands:
        return PlanMismatch(s.id, "commands[0]", f"{s.commands[0].line!r} is not a command of "
                                                 f"a switchover step (it runs none)")
    if dict(s.expect) != _SWITCHOVER_EXPECT:
        return PlanMismatch(s.id, "expect", f"{dict(s.expect)!r}, a switchover expects "
                                            f"{_SWITCHOVER_EXPECT!r}")
    databases = s.params.get("databases")
    if set(s.params) != {"databases"} or not isinstance(databases, tuple) or not all(
            isinstance(d, str) for d in databases):
        return PlanMismatch(s.id, "params", "a switchover takes only `databases`, a list of "
                                            "namespace/name")
    if s.hop != nxt.hop or s.reason is not None:
        return PlanMismatch(s.id, "hop" if s.hop != nxt.hop else "reason",
                            "differs from the drain it comes before")
    return None


# --- drain flags and the re-simulation --------------------------------------------------


def _drain_flags(plan: Plan, observed: ClusterState, begun: set[str]) -> PlanMismatch | None:
    """A drain may delete emptyDir data or unmanaged pods only on a node that runs them. Not
    judged again where this run already began the node's steps of that hop: its switchover (or
    a drain cut short) may have moved those pods away before a resume."""
    index = WorkloadIndex(observed)
    touched = {(s.node, s.hop) for s in plan.steps if s.id in begun}
    for s in plan.steps:
        if s.kind is not StepKind.DRAIN or not s.node or (s.node, s.hop) in touched:
            continue
        load = index.load(s.node)
        needed = {"deleteEmptydirData": bool(load.empty_dir), "force": bool(load.bare)}
        for flag in _DRAIN_FLAGS:
            if s.params.get(flag) is True and not needed[flag]:
                what = "pods with emptyDir volumes" if flag == "deleteEmptydirData" else (
                    "pods without a controller")
                return PlanMismatch(s.id, f"params.{flag}", f"true, but node {s.node} runs no "
                                                            f"{what}")
    return None


def _simulate(plan: Plan, observed: ClusterState, done: set[str], begun: set[str]
              ) -> PlanMismatch | None:
    """The steps not done yet, replayed on `observed` through the simulator's invariants. Nodes
    the run cordoned (and did not uncordon yet) count as schedulable nodes it cordoned, not as
    nodes cordoned by hand: their capacity comes back at their uncordon. A node whose kubelet
    the run restarted counts as Ready, as the simulator has it after a restart (whether it
    comes back is the executor's to wait for: a NotReady node halts the run there again)."""
    steps = [s if not done.intersection(s.after) else
             replace(s, after=tuple(a for a in s.after if a not in done))
             for s in plan.steps if s.id not in done]
    if not steps:
        return None
    cordoned, drained = _left_by_run(plan.steps, done, begun)
    restarted = {s.node for s in plan.steps
                 if s.kind is StepKind.KUBELET_RESTART and s.id in done}
    view = replace(observed, nodes=tuple(
        replace(n, schedulable=n.schedulable or n.name in cordoned,
                ready=n.ready or n.name in restarted)
        if n.name in cordoned or n.name in restarted else n for n in observed.nodes))
    sim = SimState(view)
    sim.cordoned |= cordoned
    sim.drained |= drained
    for s in plan.steps:  # a node the plan cordons is the plan's to uncordon
        if s.kind is StepKind.CORDON and s.node:
            sim.precordoned.discard(s.node)
    index = WorkloadIndex(view)
    control_plane = {n.name for n in observed.control_plane_nodes}
    violations: list[Violation] = []
    slots = slot_ranges(steps, violations, control_plane)
    if slots is not None:
        check_concurrency(steps, slots, control_plane, plan.max_unavailable_nodes, index,
                          violations)
        sim.replay(steps, index, violations)
    if not violations:
        return None
    v = violations[0]
    return PlanMismatch(v.step, v.invariant, f"replayed on the cluster as observed now: "
                                             f"{v.message}")


def _left_by_run(steps: Sequence[Step], done: set[str], begun: set[str]
                 ) -> tuple[set[str], set[str]]:
    """Nodes the run's begun cordons left cordoned, and those its done drains left drained
    (no uncordon done since)."""
    cordoned: set[str] = set()
    drained: set[str] = set()
    for s in steps:
        if s.node is None:
            continue
        if s.kind is StepKind.CORDON and s.id in begun:
            cordoned.add(s.node)
        elif s.kind is StepKind.DRAIN and s.id in done:
            drained.add(s.node)
        elif s.kind is StepKind.UNCORDON and s.id in done:
            cordoned.discard(s.node)
            drained.discard(s.node)
    return cordoned, drained
