"""A `ClusterState` as plain data (a state file for `plan --from-state`), and its fingerprint.

The shape follows the dataclasses field by field (driven by their type hints, so new fields
need no code here): camelCase keys, versions as components report them (`v1.28.9`, vendor
suffixes kept), minors as `1.29`, `(key, value)` pairs (labels, images) as mappings, resources
as integers (`cpuMilli`, `memory` bytes, `pods`). On input Kubernetes quantities are accepted
too (`cpu: 100m`, `memory: 8Gi`), and every field but a node's, pod's or PDB's name may be left
out.

The fingerprint hashes the version facts an upgrade plan depends on (nodes, roles, versions,
images, packages, cordons, kubeadm's kubernetesVersion) — not pods, which churn constantly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from collections.abc import Mapping
from enum import Enum
from functools import cache
from typing import Any

from kubehop.model.cluster import ClusterState, NodePackages, Resources
from kubehop.model.errors import UsageError
from kubehop.model.versions import (
    KubeVersion,
    MinorVersion,
    parse_kube_version,
    parse_minor_version,
)

STATE_API_VERSION = "kubehop.dev/v1"
STATE_KIND = "ClusterState"
_QUANTITY_RE = re.compile(r"(\d+(?:\.\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
_SUFFIX = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_PAIRS = tuple[tuple[str, str], ...]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


@cache
def _fields(cls: type) -> tuple[tuple[str, str, Any, bool], ...]:
    """(attribute, key, type hint, required) of a dataclass."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out.append((f.name, _camel(f.name), hints[f.name], required))
    return tuple(out)


# --- to plain data -------------------------------------------------------------------------


def _encode(value: Any, hint: Any = None) -> Any:
    if value is None or (isinstance(value, bool | int | float | str) and not isinstance(
            value, Enum)):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, KubeVersion):
        return value.full
    if isinstance(value, MinorVersion):
        return str(value)
    if isinstance(value, Resources):
        return {"cpuMilli": value.cpu_milli, "memory": value.memory, "pods": value.pods}
    if dataclasses.is_dataclass(value):
        return {key: _encode(getattr(value, name), h) for name, key, h, _ in _fields(type(value))}
    if isinstance(value, tuple):
        if _is_pairs(hint):
            return {k: v for k, v in value}
        return [_encode(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__}")


def _is_pairs(hint: Any) -> bool:
    return hint == _PAIRS or (typing.get_origin(hint) is tuple and typing.get_args(hint) == (
        tuple[str, str], ...))


def state_to_dict(state: ClusterState) -> dict[str, Any]:
    """`state` as JSON-ready data (the inverse of `state_from_dict`)."""
    return {"apiVersion": STATE_API_VERSION, "kind": STATE_KIND, **_encode(state)}


# --- from plain data -----------------------------------------------------------------------


def parse_quantity(value: Any, where: str, *, milli: bool = False) -> int:
    """A Kubernetes quantity (`100m`, `0.5`, `8Gi`, 4) as an int (millis when `milli`)."""
    if isinstance(value, bool):
        raise UsageError(f"{where}: not a quantity: {value!r}")
    if isinstance(value, int | float):
        return int(value * 1000) if milli and isinstance(value, float) else int(value)
    m = _QUANTITY_RE.fullmatch(str(value).strip())
    if not m:
        raise UsageError(f"{where}: not a quantity: {value!r} (expected e.g. 100m, 4, 8Gi)")
    number, suffix = float(m.group(1)), m.group(2)
    if suffix == "m":
        return int(number) if milli else int(number / 1000)
    return int(number * _SUFFIX[suffix] * (1000 if milli else 1))


def _resources(data: Any, where: str) -> Resources:
    if not isinstance(data, Mapping):
        raise UsageError(f"{where}: expected a mapping of resources")
    cpu = data.get("cpuMilli")
    cpu_milli = (parse_quantity(cpu, where) if cpu is not None
                 else parse_quantity(data.get("cpu", 0), where, milli=True))
    return Resources(cpu_milli, parse_quantity(data.get("memory", 0), where),
                     parse_quantity(data.get("pods", 0), where))


def _decode(hint: Any, data: Any, where: str) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if data is None else _decode(args[0], data, where)
    if data is None:
        raise UsageError(f"{where}: a value is required")
    if hint is KubeVersion:
        return _wrap(parse_kube_version, str(data), where)
    if hint is MinorVersion:
        return _wrap(parse_minor_version, str(data), where)
    if hint is Resources:
        return _resources(data, where)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(data)
        except ValueError:
            choices = ", ".join(str(e.value) for e in hint)
            raise UsageError(f"{where}: {data!r} is not one of {choices}") from None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint, data, where)
    if typing.get_origin(hint) is tuple:
        if _is_pairs(hint):
            items = data.items() if isinstance(data, Mapping) else data
            return tuple((str(k), str(v)) for k, v in items)
        (item, *_) = typing.get_args(hint)
        if not isinstance(data, list | tuple):
            raise UsageError(f"{where}: expected a list")
        return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(data))
    if hint is bool:
        if not isinstance(data, bool):
            raise UsageError(f"{where}: expected true or false, got {data!r}")
        return data
    if hint is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise UsageError(f"{where}: expected an integer, got {data!r}")
        return data
    if hint is str:
        if not isinstance(data, str | int | float) or isinstance(data, bool):
            raise UsageError(f"{where}: expected a string, got {data!r}")
        return str(data)
    raise UsageError(f"{where}: cannot read a {hint}")


def _wrap(parse: Any, text: str, where: str) -> Any:
    try:
        return parse(text)
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None


def _dataclass(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise UsageError(f"{where}: expected a mapping")
    known = {key for _, key, _, _ in _fields(cls)}
    unknown = sorted(set(data) - known - {"apiVersion", "kind"})
    if unknown:
        raise UsageError(f"{where}: unknown field {unknown[0]!r}")
    kwargs = {}
    for name, key, hint, required in _fields(cls):
        if key in data:
            kwargs[name] = _decode(hint, data[key], f"{where}.{key}" if where else key)
        elif required:
            raise UsageError(f"{where or cls.__name__}: {key} is required")
    return cls(**kwargs)


def state_from_dict(data: Any) -> ClusterState:
    """A `ClusterState` from `state_to_dict`'s shape; UsageError names the bad field."""
    if not isinstance(data, Mapping):
        raise UsageError("not a cluster state: expected a mapping at the top level")
    kind = data.get("kind", STATE_KIND)
    if kind != STATE_KIND:
        raise UsageError(f"not a cluster state: kind {kind!r} (expected {STATE_KIND})")
    state: ClusterState = _dataclass(ClusterState, data, "")
    if "workloadsObserved" not in data and state.pods:
        state = dataclasses.replace(state, workloads_observed=True)
    return state


# --- fingerprint ---------------------------------------------------------------------------


@cache
def _packages(p: NodePackages | None) -> str:
    # The trial refresh says whether the repository answered just now, not what the plan is
    # made of: `plan` tries it, `apply` does not. etcd's free space and database size change
    # with every write (the snapshot step measures them again when it runs).
    if p is not None and p.host is not None:
        p = dataclasses.replace(p, host=dataclasses.replace(p.host, etcd_free=None,
                                                            etcd_db=None))
    return json.dumps(_encode(dataclasses.replace(p, trial=None)), sort_keys=True) if p else ""


def state_fingerprint(state: ClusterState) -> str:
    """`sha256:<16 hex>` of the facts a plan depends on; equal states give equal fingerprints.

    Apiservers count by node and version, not by endpoint: a twin of the cluster (`kubehop
    rehearse`) serves the same apiservers at other addresses and ports, and its plan must carry
    the live cluster's fingerprint."""
    v = _encode
    facts = (
        v(state.kubeadm_kubernetes_version),
        sorted((a.node or "", v(a.version) or "") for a in state.apiservers),
        sorted((n.name, n.is_control_plane, v(n.kubelet) or "", v(n.kube_proxy) or "",
                n.schedulable, sorted(n.control_plane_images), _packages(n.packages))
               for n in state.nodes),
    )
    digest = hashlib.sha256(repr(facts).encode()).hexdigest()
    return f"sha256:{digest[:16]}"
