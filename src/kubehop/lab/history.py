"""The lab history (DESIGN "Lab history (v1)") and a checker of the safety invariants.

`History` is the append-only log `GET /lab/v1/history` serves. `check_history` replays a
history from an empty world and reports every moment a DESIGN safety invariant broke, so tests
and benchmarks judge an upgrade from what the lab saw, never from kubehop's own report.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubehop.model.errors import VersionError
from kubehop.model.versions import KubeVersion, parse_kube_version

# type -> (required fields, optional fields), as the DESIGN table lists them. A pod event may
# also name the PDB covering the pod (`pdb`, `ns/name` or null), which invariant 2 needs.
EVENT_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "component": (frozenset({"node", "component", "version", "running"}), frozenset()),
    "node": (frozenset({"node", "ready", "schedulable", "roles"}), frozenset()),
    "pod": (
        frozenset({"namespace", "name", "uid", "node", "owner", "event"}),
        frozenset({"by", "pdb"}),
    ),
    "eviction-refused": (frozenset({"namespace", "name", "code", "pdb"}), frozenset()),
    "pdb": (
        frozenset(
            {"namespace", "name", "expected", "desired_healthy", "current_healthy"}
            | {"disruptions_allowed"}
        ),
        frozenset(),
    ),
    "kubelet-restart": (frozenset({"node", "from", "to", "evictable_pods"}), frozenset()),
    "command": (frozenset({"node", "argv", "exit_code"}), frozenset()),
}
POD_EVENTS = frozenset({"created", "scheduled", "ready", "unready", "deleted"})
DELETED_BY = frozenset({"eviction", "delete", "controller", "kubelet"})
CONTROL_PLANE_ROLES = frozenset({"control-plane", "master"})


class History:
    """An append-only event log; `seq` counts from 1."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []

    def record(self, type: str, t: float, **fields: Any) -> dict[str, Any]:
        """Append an event of a DESIGN type and return it (with its `seq`).

        Raises ValueError for an unknown type or fields the type does not have. Use
        `record("kubelet-restart", t, **{"from": a, "to": b, ...})` for the `from` field.
        """
        if type not in EVENT_FIELDS:
            raise ValueError(f"unknown history event type {type!r}")
        required, optional = EVENT_FIELDS[type]
        missing, unknown = required - fields.keys(), fields.keys() - required - optional
        if missing or unknown:
            raise ValueError(f"{type} event: missing {sorted(missing)}, unknown {sorted(unknown)}")
        if type == "pod":
            if fields["event"] not in POD_EVENTS:
                raise ValueError(
                    f"pod event {fields['event']!r} is not one of {sorted(POD_EVENTS)}"
                )
            if (fields["event"] == "deleted") != (fields.get("by") is not None):
                raise ValueError("pod events carry `by` exactly when the pod was deleted")
            if fields.get("by") is not None and fields["by"] not in DELETED_BY:
                raise ValueError(
                    f"pod deleted by {fields['by']!r}: not one of {sorted(DELETED_BY)}"
                )
        event = {"seq": len(self._events) + 1, "t": float(t), "type": type, **fields}
        self._events.append(event)
        return dict(event)

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        """Events with a sequence number greater than `seq` (all of them for 0), in order."""
        return [dict(e) for e in self._events[max(0, seq) :]]

    @property
    def last_seq(self) -> int:
        return len(self._events)

    def __len__(self) -> int:
        return len(self._events)


@dataclass(frozen=True, slots=True)
class HistoryViolation:
    """A safety invariant (DESIGN numbering) broken at lab time `t`, by the event `seq`."""

    invariant: int
    t: float
    seq: int
    message: str


# --- replay ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _version(text: Any) -> KubeVersion | None:
    try:
        return parse_kube_version(text) if isinstance(text, str) else None
    except VersionError:
        return None


def _minors_behind(older: KubeVersion, newer: KubeVersion) -> int:
    return newer.minor_version.minus(older.minor_version)


def _kubelet_window(v: KubeVersion) -> int:
    """Skew policy: kubelet/kube-proxy may trail by 3 minors, 2 when older than 1.25."""
    return 2 if v.minor_version < parse_kube_version("v1.25.0").minor_version else 3


SKEWED = ("kubelet", "kube-proxy", "kube-controller-manager", "kube-scheduler",
          "cloud-controller-manager")


@dataclass
class _World:
    """The replayed state, with the invariants' current problems kept up to date incrementally
    (a 1,000-node history has 100,000s of events: nothing may rescan everything per event)."""

    versions: dict[tuple[str | None, str], KubeVersion] = field(default_factory=dict)
    apis: dict[str | None, KubeVersion] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    cordoned_from_start: set[str] = field(default_factory=set)
    cordoned: set[str] = field(default_factory=set)  # workers cordoned during the history
    down: dict[str, set[str]] = field(default_factory=dict)  # node → components not running
    skew: dict[Any, str] = field(default_factory=dict)  # invariant 1's current problems
    pod_pdb: dict[tuple[str, str], str | None] = field(default_factory=dict)
    pdb_healthy: dict[str, tuple[int, int]] = field(default_factory=dict)
    deletions: list[tuple[str, str | None, str]] = field(default_factory=list)  # ns, pdb, pod
    seen_deletions: dict[str, int] = field(default_factory=dict)  # PDB -> deletions considered
    active: dict[int, set[Any]] = field(default_factory=lambda: {1: set(), 3: set(), 5: set()})

    def is_control_plane(self, node: str | None) -> bool:
        return node is not None and bool(
            CONTROL_PLANE_ROLES & set(self.nodes.get(node, {}).get("roles") or [])
        )


def _component_problems(world: _World, kind: str, node: str | None) -> dict[Any, str]:
    """Invariant 1 for one component on one node, against the apiservers of the moment."""
    v = world.versions.get((node, kind))
    if v is None or not world.apis:
        return {}
    oldest = min(world.apis.items(), key=lambda nv: nv[1])
    newest = max(world.apis.items(), key=lambda nv: nv[1])
    problems: dict[Any, str] = {}
    if kind in ("kubelet", "kube-proxy"):
        if v.minor_version > oldest[1].minor_version:
            problems[(kind, node, "newer")] = (
                f"{kind} {v} on {node} is newer than kube-apiserver {oldest[1]} ({oldest[0]})"
            )
        if _minors_behind(v, newest[1]) > _kubelet_window(v):
            problems[(kind, node, "older")] = (
                f"{kind} {v} on {node} is {_minors_behind(v, newest[1])} minors older than "
                f"kube-apiserver {newest[1]} ({newest[0]})"
            )
        beside = world.versions.get((node, "kubelet"))
        if kind == "kube-proxy" and beside is not None:
            apart = abs(_minors_behind(v, beside))
            if apart > _kubelet_window(v):
                problems[(kind, node, "kubelet")] = (
                    f"kube-proxy {v} on {node} is {apart} minors from kubelet {beside}"
                )
        return problems
    # kubeadm points controller-manager and scheduler at the local kube-apiserver
    # (LocalAPIEndpoint, since 1.19); elsewhere they may reach any apiserver.
    if node in world.apis:
        low = high = (node, world.apis[node])
    else:
        low, high = oldest, newest
    if v.minor_version > low[1].minor_version:
        problems[(kind, node, "newer")] = (
            f"{kind} {v} on {node} is newer than kube-apiserver {low[1]} ({low[0]})"
        )
    if _minors_behind(v, high[1]) > 1:
        problems[(kind, node, "older")] = (
            f"{kind} {v} on {node} is more than one minor older than kube-apiserver "
            f"{high[1]} ({high[0]})"
        )
    return problems


def _all_skew_problems(world: _World) -> dict[Any, str]:
    """Invariant 1 for every component: after an apiserver changed."""
    problems: dict[Any, str] = {}
    if world.apis:
        oldest = min(world.apis.items(), key=lambda nv: nv[1])
        newest = max(world.apis.items(), key=lambda nv: nv[1])
        if _minors_behind(oldest[1], newest[1]) > 1:
            problems[("apiservers",)] = (
                f"kube-apiservers {oldest[1]} ({oldest[0]}) and {newest[1]} ({newest[0]}) "
                "are more than one minor apart"
            )
    for node, kind in world.versions:
        if kind in SKEWED:
            problems.update(_component_problems(world, kind, node))
    return problems


def _on_component(world: _World, event: Mapping[str, Any]) -> set[int]:
    """Apply a component event; return the invariants whose problems may have changed."""
    node, kind = event["node"], event["component"]
    v = _version(event["version"])
    if v is None:
        world.versions.pop((node, kind), None)
    else:
        world.versions[(node, kind)] = v
    touched: set[int] = set()
    if kind == "kube-apiserver":
        if v is None:
            world.apis.pop(node, None)
        elif world.apis.get(node) != v:
            world.apis[node] = v
            world.skew = _all_skew_problems(world)
            touched.add(1)
    elif kind in SKEWED:
        stale = [k for k in world.skew if k[1:2] == (node,) and k[0] == kind]
        if kind == "kubelet":
            stale += [k for k in world.skew if k == ("kube-proxy", node, "kubelet")]
            world.skew.update(_component_problems(world, "kube-proxy", node))
        for k in stale:
            world.skew.pop(k, None)
        world.skew.update(_component_problems(world, kind, node))
        if kind == "kubelet":
            world.skew.update(_component_problems(world, "kube-proxy", node))
        touched.add(1)
    if node is not None:
        was_down = bool(world.down.get(node))
        if event["running"]:
            world.down.get(node, set()).discard(kind)
        else:
            world.down.setdefault(node, set()).add(kind)
        if was_down != bool(world.down.get(node)) and world.is_control_plane(node):
            touched.add(3)
    return touched


def _report_new(
    world: _World, number: int, problems: dict[Any, str], event: Mapping[str, Any]
) -> list[HistoryViolation]:
    """Violations for problems that were not already active (one report per breach)."""
    new = [
        HistoryViolation(number, event["t"], event["seq"], msg)
        for key, msg in problems.items()
        if key not in world.active[number]
    ]
    world.active[number] = set(problems)
    return new


def _pdb_key(event: Mapping[str, Any]) -> str:
    return f"{event['namespace']}/{event['name']}"


def _on_pod(world: _World, event: Mapping[str, Any],
            plain_delete_allowed: bool) -> list[HistoryViolation]:
    key = (event["namespace"], event["name"])
    if "pdb" in event:
        world.pod_pdb[key] = event["pdb"]
    if event["event"] != "deleted":
        return []
    pdb = world.pod_pdb.pop(key, None)
    pod = f"{event['namespace']}/{event['name']}"
    if event["by"] in ("eviction", "delete"):
        world.deletions.append((event["namespace"], pdb, pod))
    if event["by"] == "delete" and pdb and not plain_delete_allowed:
        return [
            HistoryViolation(
                2,
                event["t"],
                event["seq"],
                f"pod {pod} was deleted with a plain DELETE while PodDisruptionBudget {pdb} "
                "covered it (the Eviction API was bypassed)",
            )
        ]
    return []


def _on_pdb(world: _World, event: Mapping[str, Any]) -> list[HistoryViolation]:
    key = _pdb_key(event)
    current, desired = event["current_healthy"], event["desired_healthy"]
    before = world.pdb_healthy.get(key)
    world.pdb_healthy[key] = (current, desired)
    # Deletions since this PDB's last status that could have touched it: covered pods, or pods
    # of its namespace whose coverage the history did not record.
    culprits = [
        pod
        for ns, pdb, pod in world.deletions[world.seen_deletions.get(key, 0) :]
        if pdb == key or (pdb is None and ns == event["namespace"])
    ]
    world.seen_deletions[key] = len(world.deletions)
    if before is None or current >= desired or before[0] < before[1] or not culprits:
        return []
    return [
        HistoryViolation(
            2,
            event["t"],
            event["seq"],
            f"PodDisruptionBudget {key} fell to {current} healthy pods, below the {desired} it "
            f"needs, right after {', '.join(culprits)} was removed",
        )
    ]


def _control_plane_down(world: _World) -> dict[Any, str]:
    """Invariant 3: control-plane nodes with some component not running."""
    down = {n: c for n, c in world.down.items() if c and world.is_control_plane(n)}
    if len(down) < 2:
        return {}
    text = "; ".join(f"{n}: {', '.join(sorted(c))}" for n, c in sorted(down.items()))
    return {tuple(sorted(down)): f"control-plane nodes restart at once ({text})"}


def _too_many_cordoned(world: _World, max_unavailable: int | None) -> dict[Any, str]:
    """Invariant 5: worker nodes cordoned (not counting ones cordoned before anything ran)."""
    if max_unavailable is None:
        return {}
    cordoned = sorted(world.cordoned)
    if len(cordoned) <= max_unavailable:
        return {}
    return {
        tuple(cordoned): f"{len(cordoned)} worker nodes cordoned at once ({', '.join(cordoned)}), "
        f"more than --max-unavailable {max_unavailable}"
    }


def _on_kubelet_restart(event: Mapping[str, Any]) -> list[HistoryViolation]:
    """Invariant 4: a kubelet that changes minor must find no evictable pod on its node."""
    old, new = _version(event["from"]), _version(event["to"])
    if old is not None and new is not None:
        changed = old.minor_version != new.minor_version
    else:
        changed = event["from"] != event["to"]
    if not (changed and event["evictable_pods"]):
        return []
    return [HistoryViolation(
        4, event["t"], event["seq"],
        f"kubelet on {event['node']} went from {event['from']} to {event['to']} "
        f"while it still ran {', '.join(event['evictable_pods'])} (drain first)",
    )]


def check_history(
    events: Iterable[Mapping[str, Any]],
    *,
    max_unavailable: int | None = None,
    plain_delete_allowed: bool = False,
) -> list[HistoryViolation]:
    """Replay `events` from an empty world; return every breach of invariants 1-5, in order.

    `max_unavailable` enables invariant 5; `plain_delete_allowed` is the user's explicit choice
    to remove pods without the Eviction API (invariant 2's exception).
    """
    world = _World()
    found: list[HistoryViolation] = []
    ordered = sorted(events, key=lambda e: e["seq"])
    # Invariants 1, 3 and 5 are judged on the state at each instant: after the last event of
    # every lab time, not after each event (the initial state alone is 100,000s of events).
    dirty: set[int] = set()
    for i, event in enumerate(ordered):
        kind = event["type"]
        if kind == "component":
            dirty |= _on_component(world, event)
        elif kind == "node":
            name = event["node"]
            if name not in world.nodes and not event["schedulable"]:
                world.cordoned_from_start.add(name)
            elif event["schedulable"]:
                world.cordoned_from_start.discard(name)
            world.nodes[name] = {"schedulable": bool(event["schedulable"]), "roles": event["roles"]}
            counted = (not event["schedulable"] and name not in world.cordoned_from_start
                       and not world.is_control_plane(name))
            if counted != (name in world.cordoned):
                (world.cordoned.add if counted else world.cordoned.discard)(name)
                dirty.add(5)
            dirty.add(3)
        elif kind == "pod":
            found += _on_pod(world, event, plain_delete_allowed)
        elif kind == "pdb":
            found += _on_pdb(world, event)
        elif kind == "kubelet-restart":
            found += _on_kubelet_restart(event)
        last_of_instant = i + 1 == len(ordered) or ordered[i + 1]["t"] != event["t"]
        if dirty and last_of_instant:
            if 1 in dirty:
                found += _report_new(world, 1, world.skew, event)
            if 3 in dirty:
                found += _report_new(world, 3, _control_plane_down(world), event)
            if 5 in dirty:
                found += _report_new(world, 5, _too_many_cordoned(world, max_unavailable), event)
            dirty = set()
    return found
