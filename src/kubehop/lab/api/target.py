"""What a resource URL names (`ResourceTarget`, `parse_path`) and what the resource verbs need
of the server answering it (`ApiContext`).

Kept apart from `kubehop.lab.api.app` so the verbs, the eviction endpoint and the API faults
can name these types without importing the application that imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kubehop.lab.api import discovery
from kubehop.lab.api.store import Store

Obj = dict[str, Any]

# The hook the controllers own: (pod, grace seconds, by "delete"|"eviction") → None. The server
# has already marked the pod terminating (deletionTimestamp); the hook removes it in its time.
PodDeleteHook = Callable[[Obj, int, str], None]
# The controllers' eviction: (namespace, name, body, dryRun values) → (status, body, headers).
EvictHook = Callable[[str, str, Obj, list[str]], tuple[int, Obj, dict[str, str]]]


class ApiContext(Protocol):
    """The server as the verbs see it: its store, its time, its pod-deletion hook."""

    store: Store
    on_pod_delete: PodDeleteHook | None

    def now(self) -> datetime: ...


@dataclass(slots=True)
class ResourceTarget:
    """What a resource URL names."""

    rt: discovery.ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    legacy_watch: bool = False


def parse_path(path: str) -> ResourceTarget | None:
    """Map `/api/v1/...` or `/apis/G/V/...` to a target; None if it names no served resource."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = bool(rest) and rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    if len(rest) >= 3 and rest[0] == "namespaces" and (group, version, rest[2]) in \
            discovery.BY_PATH:
        rt = discovery.BY_PATH[(group, version, rest[2])]
        ns: str | None = rest[1]
        rest = rest[2:]
    else:
        rt = discovery.BY_PATH.get((group, version, rest[0])) if rest else None
        ns = None
    if rt is None or len(rest) > 3 or (ns is not None and not rt.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if rt.namespaced and ns is None and name is not None:
        return None
    if sub is not None and sub not in {s.name for s in rt.subresources}:
        return None
    return ResourceTarget(rt, ns, name, sub, legacy_watch)
