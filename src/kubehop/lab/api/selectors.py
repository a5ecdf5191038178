"""Label and field selectors, parsed the way the Kubernetes API server parses them.

Label grammar (apimachinery `pkg/labels/selector.go`): comma-separated requirements, each one of
`key`, `!key`, `key=v`, `key==v`, `key!=v`, `key in (a,b)`, `key notin (a,b)`, `key>N`, `key<N`.
`!=` and `notin` match objects that lack the label. Field selectors support `=`, `==` and `!=` on
the fields each resource allows (`metadata.name`, `metadata.namespace` everywhere; per resource
extras such as pods' `spec.nodeName` and `status.phase`); a missing field reads as "".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_NAME_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class InvalidSelectorError(ValueError):
    """A selector the API would not accept: a `?labelSelector=` that does not parse (the API
    server answers 400 BadRequest with its message), or a metav1.LabelSelector with a bad
    operator or values (the disruption controller and eviction treat it as an error)."""


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if not name or len(name) > 63 or not _NAME_RE.match(name):
        raise InvalidSelectorError(f"unable to parse requirement: invalid label key {key!r}")
    if prefix and (len(prefix) > 253 or not _PREFIX_RE.match(prefix)):
        raise InvalidSelectorError(f"unable to parse requirement: invalid label key {key!r}")


def _check_value(value: str) -> None:
    if len(value) > 63 or not _NAME_RE.match(value):
        raise InvalidSelectorError(f"unable to parse requirement: invalid label value: {value!r}")


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    """One label requirement: `op` is one of =, !=, in, notin, exists, !, gt, lt."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and labels[self.key] in self.values
        if self.op in ("!=", "notin"):
            return not has or labels[self.key] not in self.values
        if not has:
            return False
        try:
            actual = int(labels[self.key])
        except ValueError:
            return False
        bound = int(self.values[0])
        return actual > bound if self.op == "gt" else actual < bound


@dataclass(frozen=True, slots=True)
class LabelQuery:
    """A conjunction of requirements; the empty selector matches everything."""

    requirements: tuple[LabelRequirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelQuery:
        """Parse a `labelSelector` query parameter."""
        if not text or not text.strip():
            return cls()
        return cls(tuple(_parse_requirement(part) for part in _split_top(text)))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def equality_value(self, key: str) -> str | None:
        """The value `key` must equal, if the selector pins it (used to pick an index)."""
        for r in self.requirements:
            if r.key == key and r.op == "=" and len(r.values) == 1:
                return r.values[0]
        return None


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


_SET_RE = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<vals>[^()]*)\)$")
_CMP_RE = re.compile(r"^(?P<key>[^=!<>\s]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<val>\S*)$")


def _parse_requirement(part: str) -> LabelRequirement:
    if not part:
        raise InvalidSelectorError("unable to parse requirement: found '', expected: identifier")
    if m := _SET_RE.match(part):
        key = m["key"]
        _check_key(key)
        values = tuple(v.strip() for v in m["vals"].split(",") if v.strip())
        for v in values:
            _check_value(v)
        return LabelRequirement(key, m["op"], tuple(sorted(set(values))))
    if m := _CMP_RE.match(part):
        key, op, val = m["key"], m["op"], m["val"]
        _check_key(key)
        if op in (">", "<"):
            if not val.lstrip("-").isdigit():
                raise InvalidSelectorError(
                    f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be "
                    f"an integer: {val!r}"
                )
            return LabelRequirement(key, "gt" if op == ">" else "lt", (val,))
        _check_value(val)
        return LabelRequirement(key, "!=" if op == "!=" else "=", (val,))
    if part.startswith("!"):
        key = part[1:].strip()
        _check_key(key)
        return LabelRequirement(key, "!")
    _check_key(part)
    return LabelRequirement(part, "exists")


# --- field selectors ---------------------------------------------------------------------

_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
# Fields each resource supports (pkg/registry/*/strategy.go `*ToSelectableFields`).
SELECTABLE_FIELDS: dict[str, frozenset[str]] = {
    "pods": frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "nodes": frozenset({"spec.unschedulable"}),
    "namespaces": frozenset({"status.phase"}),
    "secrets": frozenset({"type"}),
    "replicasets.apps": frozenset({"status.replicas"}),
    "events": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    ),
}


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form of a dotted field; absent reads "", booleans "true"/"false"."""
    cur: Any = obj
    for part in path.split("."):
        if cur.__class__ is not dict and not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
        if cur is None:
            return ""
    if cur.__class__ is str:
        return cur  # the common case, and str(cur) for any path
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if path == "source" and isinstance(cur, Mapping):
        return str(cur.get("component", ""))
    return str(cur)


def field_getter(path: str) -> Callable[[Mapping[str, Any]], str]:
    """`field_value` for one path, faster on plain dicts and string values (the common case:
    `spec.nodeName`); anything else goes through `field_value` itself."""
    parts = tuple(path.split("."))

    def get(obj: Mapping[str, Any]) -> str:
        cur: Any = obj
        for part in parts:
            if cur.__class__ is not dict:
                return field_value(obj, path)
            cur = cur.get(part)
            if cur is None:
                return ""
        return cur if cur.__class__ is str else field_value(obj, path)

    return get


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """`field` equals (or, with `negate`, differs from) `value`."""

    field: str
    value: str
    negate: bool = False

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (field_value(obj, self.field) == self.value) != self.negate


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of field requirements; the empty selector matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None, resource: str | None = None) -> FieldSelector:
        """Parse a `fieldSelector`; with `resource`, reject fields it does not support."""
        if not text or not text.strip():
            return cls()
        reqs = []
        for part in _split_top(text):
            m = re.match(r"^(?P<f>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<v>.*)$", part)
            if not m:
                raise InvalidSelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
            field = m["f"]
            if resource is not None:
                allowed = _COMMON_FIELDS | SELECTABLE_FIELDS.get(resource, frozenset())
                if field not in allowed:
                    raise InvalidSelectorError(f'field label not supported: {field}')
            reqs.append(FieldRequirement(field, m["v"].strip(), m["op"] == "!="))
        return cls(tuple(reqs))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def equality_value(self, field: str) -> str | None:
        """The value `field` must equal, if the selector pins it (used to pick an index)."""
        for r in self.requirements:
            if r.field == field and not r.negate:
                return r.value
        return None
