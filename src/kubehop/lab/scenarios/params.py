"""Parameters of built-in scenarios: `large:nodes=5000,pods=30`.

A built-in that takes parameters has an entry in `PARAMETERS` and a function in `_APPLY` that
rewrites its YAML document (before validation) for the values asked for. Only built-ins take
parameters; a scenario file says everything itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubehop.model.errors import UsageError


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    default: int
    minimum: int
    maximum: int
    help: str


MAX_APPLICATION_PODS = 300_000  # twice bench/lab_scale.py's 150k pods: memory grows with each
PARAMETERS: Mapping[str, tuple[Parameter, ...]] = {
    "large": (
        Parameter("nodes", 1000, 4, 20000, "nodes in all, 3 of them control plane"),
        Parameter("pods", 30, 0, 500, "application pods per worker node (DaemonSet pods extra)"),
    ),
}


def describe(name: str) -> str:
    """`nodes=1000,pods=30` (the defaults), or "" for a scenario without parameters."""
    return ",".join(f"{p.name}={p.default}" for p in PARAMETERS.get(name, ()))


def parse(name: str, text: str) -> dict[str, int]:
    """Every parameter of built-in `name`: defaults overridden by `text` (`nodes=50,pods=10`)."""
    known = {p.name: p for p in PARAMETERS.get(name, ())}
    if text and not known:
        raise UsageError(f"scenario {name}: takes no parameters (got {text!r})")
    values = {p.name: p.default for p in known.values()}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if key not in known:
            raise UsageError(f"scenario {name}: unknown parameter {key!r} "
                             f"(known: {', '.join(known)}; e.g. {name}:{describe(name)})")
        p = known[key]
        try:
            value = int(raw.strip()) if sep else None
        except ValueError:
            value = None
        if value is None or not p.minimum <= value <= p.maximum:
            raise UsageError(f"scenario {name}: parameter {key} must be an integer from "
                             f"{p.minimum} to {p.maximum} ({p.help}), got {raw.strip()!r}")
        values[key] = value
    return values


def apply(name: str, doc: Any, values: Mapping[str, int]) -> Any:
    """`doc` (the built-in's YAML document) rewritten for `values`."""
    fn = _APPLY.get(name)
    return fn(doc, values) if fn and isinstance(doc, dict) else doc


def _large(doc: dict[str, Any], values: Mapping[str, int]) -> dict[str, Any]:
    """Workers fill `nodes`; generated Deployments `team-K/app-I` bring every worker to `pods`
    application pods (the scenario's own workloads count towards them)."""
    nodes = doc.get("nodes") or []
    control = sum(int(n.get("count", 1)) for n in nodes
                  if "control-plane" in (n.get("roles") or ()))
    workers = values["nodes"] - control
    if workers * values["pods"] > MAX_APPLICATION_PODS:
        raise UsageError(f"scenario large: nodes={values['nodes']},pods={values['pods']} makes "
                         f"{workers * values['pods']:,} pods; the lab holds at most "
                         f"{MAX_APPLICATION_PODS:,} (lower nodes or pods)")
    for n in nodes:
        if n.get("name") == "worker":
            n["count"] = workers
            capacity = n.setdefault("capacity", {})
            capacity["pods"] = max(int(capacity.get("pods", 110)), values["pods"] + 20)
    workloads = doc.setdefault("workloads", [])
    fixed = sum(int(w.get("replicas", w.get("instances", 1))) for w in workloads
                if w.get("kind") != "DaemonSet")
    remaining = max(0, workers * values["pods"] - fixed)
    count = min(150, math.ceil(remaining / 200))
    for i in range(count):
        replicas = remaining // count + (1 if i < remaining % count else 0)
        w: dict[str, Any] = {"kind": "Deployment", "namespace": f"team-{i % 30}",
                             "name": f"app-{i + 1}", "replicas": replicas,
                             "requests": {"cpu": "50m", "memory": "64Mi"}}
        if i % 3 == 0:
            w["pdb"] = {"maxUnavailable": "25%"}
        elif i % 3 == 1:
            w["pdb"] = {"minAvailable": "50%"}
        workloads.append(w)
    return doc


_APPLY: Mapping[str, Callable[[dict[str, Any], Mapping[str, int]], dict[str, Any]]] = {
    "large": _large,
}
