"""The four PATCH flavours of the API server, as pure functions on JSON objects.

- strategic merge (`application/strategic-merge-patch+json`): maps merge, `null` deletes, lists
  with a merge key (containers by name, conditions by type, ...) merge element-wise; directives
  `$patch: delete|replace|merge`, `$deleteFromPrimitiveList/<f>`, `$setElementOrder/<f>` and
  `$retainKeys` are understood (the last two only stripped);
- JSON merge patch (RFC 7386, `application/merge-patch+json`): lists replace;
- JSON patch (RFC 6902, `application/json-patch+json`): add/remove/replace/move/copy/test;
- server-side apply (`application/apply-patch+yaml`): a strategic merge without field ownership.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

Obj = dict[str, Any]

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE, STRATEGIC, APPLY)

# List fields that merge element-wise (k8s.io/api `patchMergeKey` tags), by field name.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "addresses": "type",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# Primitive lists with patchStrategy merge (a patch adds to them instead of replacing).
MERGE_PRIMITIVES = frozenset({"finalizers"})


class PatchError(ValueError):
    """A patch that cannot be decoded (code 400) or applied (code 422)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


def decode(body: bytes, content_type: str) -> Any:
    """Decode a patch body (JSON, or YAML for apply)."""
    try:
        if content_type == APPLY:
            return yaml.safe_load(body.decode())
        return json.loads(body)
    except (ValueError, yaml.YAMLError) as e:
        raise PatchError(f"error decoding patch: {e}", 400) from e


def apply_patch(original: Obj, body: bytes, content_type: str) -> Obj:
    """Apply a raw PATCH body of `content_type` to `original` (not modified); the new object."""
    patch = decode(body, content_type)
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise PatchError("json patch must be a list of operations", 400)
        return json_patch(original, patch)
    if not isinstance(patch, dict):
        raise PatchError("patch must be a JSON object", 400)
    if content_type == MERGE:
        return merge_patch(original, patch)
    if content_type == STRATEGIC:
        return strategic_merge(original, patch)
    if content_type == APPLY:
        return server_side_apply(original, patch)
    raise PatchError(f"unsupported patch type {content_type!r}", 415)


# --- RFC 7386 ------------------------------------------------------------------------------

def merge_patch(original: Any, patch: Any) -> Any:
    """JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# --- strategic merge -----------------------------------------------------------------------

def strategic_merge(original: Any, patch: Any, *, apply: bool = False) -> Any:
    """Strategic merge of `patch` into `original`; with `apply`, nulls are values, not deletes."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [x for x in result[field] if x not in (v or [])]
            continue
        if v is None and not apply:
            result.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge(result.get(k), v, apply=apply)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            result[k] = _merge_list(k, result.get(k), v, apply=apply)
        else:
            result[k] = copy.deepcopy(v)
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((x for x in items if isinstance(x, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def _merge_list(field: str, original: Any, patch: list[Any], *, apply: bool) -> list[Any]:
    original = original if isinstance(original, list) else []
    if field in MERGE_PRIMITIVES:
        out = list(original)
        out += [x for x in patch if x not in out]
        return out
    key = _merge_key(field, patch + original)
    if key is None or not all(isinstance(x, dict) for x in patch):
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [x for x in patch if not (isinstance(x, dict) and "$patch" in x)]
        return copy.deepcopy(patch)
    if any(x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if "$patch" not in x]
    out = copy.deepcopy(original)
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}", 400)
        idx = next((i for i, x in enumerate(out)
                    if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(strategic_merge({}, item, apply=apply))
        else:
            out[idx] = strategic_merge(out[idx], item, apply=apply)
    return out


def server_side_apply(original: Obj | None, patch: Obj) -> Obj:
    """Apply without managed fields: the applied configuration merged over the live object."""
    return strategic_merge(original or {}, patch, apply=True)


# --- RFC 6902 ------------------------------------------------------------------------------

def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, insert: bool) -> int:
    if token == "-" and insert:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"invalid array index {token!r}")
    i = int(token)
    if i > len(container) or (i == len(container) and not insert):
        raise PatchError(f"array index {i} out of bounds")
    return i


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list):
            cur = cur[_index(cur, p, insert=False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return cur


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing path: {path!r}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, insert=False)]
    raise PatchError(f"doc is missing path: {path!r}")


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[parts[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, parts[-1], insert=True), value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, parts, path)
    if isinstance(parent, dict):
        if parts[-1] not in parent:
            raise PatchError(f"unable to remove nonexistent key: {parts[-1]}: missing value")
        del parent[parts[-1]]
    elif isinstance(parent, list):
        del parent[_index(parent, parts[-1], insert=False)]
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def json_patch(original: Any, ops: list[Any]) -> Any:
    """Apply RFC 6902 operations in order to a copy of `original`."""
    doc = copy.deepcopy(original)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}", 400)
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _remove(doc, path) if _pointer(path) else doc
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            value = copy.deepcopy(_get(doc, op.get("from", "")))
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}", 400)
    return doc
