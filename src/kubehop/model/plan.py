"""An upgrade plan: hops, waves and steps, each step with what must be true after it.

A plan is a DAG of steps (`after` lists the ids a step waits for). The executor walks it:

    done = journal.completed_ids()
    for step in plan.steps:                      # list order is a valid topological order
        if step.id in done:                      # resume: already recorded as done
            continue
        if step.expect and observed_matches(step.node, step.expect):
            record(step.id); continue            # happened before a crash: don't redo it
        wait_for(step.after)                     # or run independent steps concurrently
        if step.kind is StepKind.GATE: ...       # no-op barrier between waves
        elif step.commands: for c in step.commands: transport.run(step.node, c.argv,
                                                                  sudo=c.sudo, stdin=c.stdin)
        else: api_action(step.kind, step.node, step.params)   # cordon, drain, uncordon, ...
        verify(step.node, step.expect)           # still false after a success → failure

Steps with an empty `expect` have no observable after-state (gates, `kubeadm upgrade plan`,
`kubeadm upgrade node` on a worker): they are idempotent and simply run again on resume.

`expect` keys (`ExpectKey`; a plan file with another key does not load), values as Kubernetes
or the package manager write them:

| key | meaning |
|---|---|
| `kubelet` | the node's running kubelet (node status), `v1.29.15` |
| `ready`, `schedulable` | node condition Ready / not `spec.unschedulable` |
| `evictablePods` | number of pods on the node that a drain removes (0 after a drain) |
| `kube-apiserver`, `kube-controller-manager`, `kube-scheduler` | static pod image tag on the node |
| `kubernetesVersion` | kubeadm-config ClusterConfiguration.kubernetesVersion |
| `repoMinor` | minor of the node's pkgs.k8s.io repository, `1.29` |
| `kubeadm`, `kubeletPackage`, `kubectl` | installed package versions, `1.29.15-1.1` |
| `aptPins` | Kubernetes stanzas of the node's apt pin file, `FILE: kubelet=version 1.29.*@1000` |
| `primaryNotOnNode` | every CloudNativePG primary of `params["databases"]` is on another node |
| `etcdSnapshot` | path of a non-empty etcd snapshot file on the node |

Gate steps (`kind: gate`) close a wave: every step of the next wave comes after them. The
simulator relies on this to check "one control plane at a time" and "at most max-unavailable
workers cordoned" for every order an executor may choose, not just one.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kubehop.model.errors import UsageError

PLAN_FORMAT_VERSION = 1
WORKER_STRATEGIES = ("skip", "every-minor")
DRAIN_POLICIES = ("minor", "always")
_PERCENT_RE = re.compile(r"(\d{1,3})%")
_STDIN_PREFIX = ("printf", "%s")

ExpectValue = str | bool | int
ParamValue = str | bool | int | tuple[str, ...]


class StepKind(StrEnum):
    """What a step does; node steps carry commands, cluster steps are API actions."""

    REMEDIATE_DRIFT = "remediate-drift"  # node: restore a hand-edited static pod image
    REPO_SWITCH = "repo-switch"  # node: point apt/yum at the hop's minor
    KUBEADM_INSTALL = "kubeadm-install"  # node: unhold, install, hold kubeadm and kubectl
    KUBEADM_PLAN = "kubeadm-plan"  # node: `kubeadm upgrade plan vX`, a gate on kubeadm's checks
    ETCD_SNAPSHOT = "etcd-snapshot"  # node: save and verify an etcd snapshot before `apply`
    KUBEADM_APPLY = "kubeadm-apply"  # node: `kubeadm upgrade apply -y vX` (first control plane)
    KUBEADM_NODE = "kubeadm-node"  # node: `kubeadm upgrade node`
    CORDON = "cordon"  # api
    SWITCHOVER = "switchover"  # api: wait for CloudNativePG to move primaries off the node
    DRAIN = "drain"  # api: evict (Eviction API, PDBs honoured)
    KUBELET_INSTALL = "kubelet-install"  # node: unhold, install, hold kubelet
    KUBELET_RESTART = "kubelet-restart"  # node: daemon-reload, restart kubelet
    WAIT_READY = "wait-ready"  # api: node Ready at the new kubelet version
    UNCORDON = "uncordon"  # api
    GATE = "gate"  # nothing: a barrier closing a wave

    @property
    def on_node(self) -> bool:
        """Whether the step runs commands on its node (else an API action or a gate)."""
        return self in _NODE_KINDS


_NODE_KINDS = frozenset({
    StepKind.REMEDIATE_DRIFT, StepKind.REPO_SWITCH, StepKind.KUBEADM_INSTALL,
    StepKind.KUBEADM_PLAN, StepKind.KUBEADM_APPLY, StepKind.KUBEADM_NODE,
    StepKind.KUBELET_INSTALL, StepKind.KUBELET_RESTART, StepKind.ETCD_SNAPSHOT,
})


class ExpectKey(StrEnum):
    """A key of a step's `expect` (the table above); members equal their strings, so plan files
    keep the same JSON."""

    KUBELET = "kubelet"
    READY = "ready"
    SCHEDULABLE = "schedulable"
    EVICTABLE_PODS = "evictablePods"
    KUBE_APISERVER = "kube-apiserver"
    KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
    KUBE_SCHEDULER = "kube-scheduler"
    KUBERNETES_VERSION = "kubernetesVersion"
    REPO_MINOR = "repoMinor"
    KUBEADM = "kubeadm"
    KUBELET_PACKAGE = "kubeletPackage"
    KUBECTL = "kubectl"
    APT_PINS = "aptPins"
    PRIMARY_NOT_ON_NODE = "primaryNotOnNode"
    ETCD_SNAPSHOT = "etcdSnapshot"

    def __repr__(self) -> str:
        """As its string (`'kubelet'`): messages that show an `expect` mapping stay as they were."""
        return repr(self.value)


_EXPECT_KEYS: Mapping[str, ExpectKey] = {str(k): k for k in ExpectKey}


def expect_from_dict(step_id: object, data: Mapping[str, Any]) -> dict[ExpectKey, ExpectValue]:
    """A plan file's `expect` mapping, its keys as `ExpectKey`; UsageError (one line naming the
    step and the key) for a key kubehop does not know, so a bad plan fails when it is loaded,
    not halfway through a run."""
    out: dict[ExpectKey, ExpectValue] = {}
    for key, value in data.items():
        member = _EXPECT_KEYS.get(key) if isinstance(key, str) else None
        if member is None:
            raise UsageError(f"bad plan step {step_id!r}: unknown expect key {key!r} (known: "
                             f"{', '.join(_EXPECT_KEYS)})")
        out[member] = value
    return out


@dataclass(frozen=True, slots=True)
class Command:
    """One command for a node: argv (no shell), optional stdin, run as root unless `sudo` is off.

    `line` is the shell form used in JSON and runbooks (every value quoted); stdin becomes a
    `printf '%s' … |` prefix, so the line alone reproduces the command and parses back exactly.
    """

    argv: tuple[str, ...]
    stdin: str | None = None
    sudo: bool = True

    @property
    def line(self) -> str:
        text = ("sudo " if self.sudo else "") + shlex.join(self.argv)
        if self.stdin is not None:
            text = f"printf '%s' {shlex.quote(self.stdin)} | {text}"
        return text

    @classmethod
    def from_line(cls, line: str) -> Command:
        """Parse a `line` back (the inverse of `Command.line`)."""
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"bad command in plan: {line!r} ({e})") from None
        stdin = None
        if tuple(words[:2]) == _STDIN_PREFIX and len(words) > 4 and words[3] == "|":
            stdin, words = words[2], words[4:]
        sudo = bool(words) and words[0] == "sudo"
        argv = tuple(words[1:] if sudo else words)
        if not argv:
            raise UsageError(f"bad command in plan: {line!r} (empty)")
        return cls(argv, stdin, sudo)


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a plan. `hop` is the version the step works towards (`v1.29.15`)."""

    id: str
    kind: StepKind
    node: str | None
    hop: str
    after: tuple[str, ...] = ()
    commands: tuple[Command, ...] = ()
    expect: Mapping[ExpectKey, ExpectValue] = field(default_factory=dict, hash=False)
    params: Mapping[str, ParamValue] = field(default_factory=dict, hash=False)
    wave: int | None = None
    reason: str | None = None  # why (e.g. "kubelet changes minor: drain required")
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": str(self.kind),
            "node": self.node,
            "hop": self.hop,
            "after": list(self.after),
            "commands": [c.line for c in self.commands],
            "expect": {str(k): v for k, v in self.expect.items()},
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
            "wave": self.wave,
            "reason": self.reason,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        try:
            kind = StepKind(data["kind"])
        except (KeyError, ValueError):
            raise UsageError(f"bad plan step {data.get('id')!r}: unknown kind "
                             f"{data.get('kind')!r}") from None
        params = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in (data.get("params") or {}).items()}
        return cls(
            id=str(data["id"]),
            kind=kind,
            node=data.get("node"),
            hop=str(data.get("hop", "")),
            after=tuple(data.get("after") or ()),
            commands=tuple(Command.from_line(c) for c in data.get("commands") or ()),
            expect=expect_from_dict(data.get("id"), data.get("expect") or {}),
            params=params,
            wave=data.get("wave"),
            reason=data.get("reason"),
            description=data.get("description") or "",
        )


@dataclass(frozen=True, slots=True)
class Wave:
    """Steps that may run at the same time; `kind` is drift, control-plane,
    control-plane-kubelet, prepare (kubeadm on workers, no drain) or workers."""

    index: int
    hop: str
    kind: str
    nodes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "hop": self.hop, "kind": self.kind, "nodes": list(self.nodes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Wave:
        return cls(int(data["index"]), str(data["hop"]), str(data["kind"]),
                   tuple(data.get("nodes") or ()))


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """How to upgrade.

    max_unavailable: worker nodes cordoned at once, an int or a percentage of the workers
        (`"10%"`, rounded down, at least 1). Control-plane nodes always go alone.
    worker_strategy: `skip` (workers upgraded once, straight to the newest minor the skew
        policy allows at that point) or `every-minor` (the upstream guide: every hop).
    drain_policy: `minor` (drain before a kubelet changes minor; a patch restart skips it)
        or `always`.
    allow_unknown_version: accept a target patch the release data does not know.
    ignore_findings: ids of blocking findings to plan despite.
    strict_kubeadm_skew: refuse a worker whose kubeadm would jump more than one minor past the
        one that last managed it (the letter of kubeadm's documented skew; its code allows it).
    """

    max_unavailable: int | str = 1
    worker_strategy: str = "skip"
    drain_policy: str = "minor"
    allow_unknown_version: bool = False
    ignore_findings: tuple[str, ...] = ()
    strict_kubeadm_skew: bool = False

    def __post_init__(self) -> None:
        if self.worker_strategy not in WORKER_STRATEGIES:
            raise UsageError(f"bad worker strategy {self.worker_strategy!r} "
                             f"(expected one of {', '.join(WORKER_STRATEGIES)})")
        if self.drain_policy not in DRAIN_POLICIES:
            raise UsageError(f"bad drain policy {self.drain_policy!r} "
                             f"(expected one of {', '.join(DRAIN_POLICIES)})")
        parse_max_unavailable(self.max_unavailable)

    def max_unavailable_nodes(self, workers: int) -> int:
        """`max_unavailable` as a number of worker nodes (at least 1)."""
        value, percent = parse_max_unavailable(self.max_unavailable)
        return max(1, workers * value // 100) if percent else value

    def to_dict(self) -> dict[str, Any]:
        return {
            "maxUnavailable": self.max_unavailable,
            "workerStrategy": self.worker_strategy,
            "drain": self.drain_policy,
            "allowUnknownVersion": self.allow_unknown_version,
            "ignoreFindings": list(self.ignore_findings),
            "strictKubeadmSkew": self.strict_kubeadm_skew,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanOptions:
        return cls(
            max_unavailable=data.get("maxUnavailable", 1),
            worker_strategy=data.get("workerStrategy", "skip"),
            drain_policy=data.get("drain", "minor"),
            allow_unknown_version=bool(data.get("allowUnknownVersion", False)),
            ignore_findings=tuple(data.get("ignoreFindings") or ()),
            strict_kubeadm_skew=bool(data.get("strictKubeadmSkew", False)),
        )


def parse_max_unavailable(value: int | str) -> tuple[int, bool]:
    """(number, is_percentage) of `1`, `"3"` or `"10%"`; UsageError otherwise."""
    if isinstance(value, bool):
        raise UsageError(f"bad --max-unavailable {value!r}: expected N or P% (e.g. 2 or 10%)")
    if isinstance(value, int):
        if value >= 1:
            return value, False
    else:
        text = value.strip()
        m = _PERCENT_RE.fullmatch(text)
        if m and 1 <= int(m.group(1)) <= 100:
            return int(m.group(1)), True
        if text.isascii() and text.isdigit() and int(text) >= 1:
            return int(text), False
    raise UsageError(f"bad --max-unavailable {value!r}: expected N >= 1 or P% with 1 <= P <= 100")


@dataclass(frozen=True, slots=True)
class Plan:
    """A complete upgrade plan; `fingerprint` identifies the observed state it was made from
    (`apply` refuses a plan whose fingerprint no longer matches the cluster)."""

    from_version: str
    to_version: str
    hops: tuple[str, ...]
    strategy: PlanOptions
    max_unavailable_nodes: int
    steps: tuple[Step, ...]
    waves: tuple[Wave, ...] = ()
    estimate_seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    fingerprint: str = ""
    version: int = PLAN_FORMAT_VERSION

    def step(self, step_id: str) -> Step:
        """The step called `step_id` (KeyError when there is none)."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "from": self.from_version,
            "to": self.to_version,
            "hops": list(self.hops),
            "strategy": {**self.strategy.to_dict(),
                         "maxUnavailableNodes": self.max_unavailable_nodes},
            "fingerprint": self.fingerprint,
            "estimate_seconds": self.estimate_seconds,
            "warnings": list(self.warnings),
            "waves": [w.to_dict() for w in self.waves],
            "steps": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """Read a plan written by `to_dict` (JSON or YAML); UsageError names what is wrong."""
        if not isinstance(data, Mapping):
            raise UsageError("not a kubehop plan: expected a mapping at the top level")
        version = data.get("version")
        if version != PLAN_FORMAT_VERSION:
            raise UsageError(f"unsupported plan format version {version!r} (this kubehop "
                             f"reads version {PLAN_FORMAT_VERSION}); plan again")
        try:
            strategy = dict(data.get("strategy") or {})
            nodes = strategy.pop("maxUnavailableNodes", 1)
            return cls(
                from_version=str(data["from"]),
                to_version=str(data["to"]),
                hops=tuple(str(h) for h in data.get("hops") or ()),
                strategy=PlanOptions.from_dict(strategy),
                max_unavailable_nodes=int(nodes),
                steps=tuple(Step.from_dict(s) for s in data.get("steps") or ()),
                waves=tuple(Wave.from_dict(w) for w in data.get("waves") or ()),
                estimate_seconds=float(data.get("estimate_seconds", 0.0)),
                warnings=tuple(data.get("warnings") or ()),
                fingerprint=str(data.get("fingerprint", "")),
                version=version,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"not a kubehop plan: {type(e).__name__}: {e}") from None


def steps_by_node(steps: Sequence[Step]) -> dict[str | None, list[Step]]:
    """Steps grouped by node, in plan order (None: gates)."""
    out: dict[str | None, list[Step]] = {}
    for s in steps:
        out.setdefault(s.node, []).append(s)
    return out
