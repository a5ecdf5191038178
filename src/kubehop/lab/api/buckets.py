"""All objects of one resource, with the indexes that keep lists cheap at 150k pods.

Objects are held three ways: by (namespace, name), by namespace, and by each secondary index
(pods by `spec.nodeName`); the sorted key list for all-namespace pages is rebuilt lazily after a
create or delete (updates keep the key set).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubehop.lab.api.selectors import FieldSelector

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)
IndexFn = Callable[[Obj], "str | None"]

# Secondary indexes: resource → {index name (a field path): function(obj) → value or None}.
DEFAULT_INDEXES: dict[str, dict[str, IndexFn]] = {
    "pods": {"spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName") or ""},
}


class Bucket:
    """The objects of one resource and their indexes."""

    __slots__ = ("by_ns", "index_fns", "indexes", "objects", "sorted_keys")

    def __init__(self, indexes: Mapping[str, IndexFn]) -> None:
        self.objects: dict[Key, Obj] = {}
        self.by_ns: dict[str, dict[str, Obj]] = {}
        self.index_fns: dict[str, IndexFn] = dict(indexes)
        self.indexes: dict[str, dict[str, dict[Key, Obj]]] = {name: {} for name in indexes}
        self.sorted_keys: list[Key] | None = None

    def add_index(self, name: str, fn: IndexFn) -> None:
        """Index by `fn(obj)` (None: not indexed); a field selector `name=value` then uses it."""
        self.index_fns[name] = fn
        idx: dict[str, dict[Key, Obj]] = {}
        for key, obj in self.objects.items():
            value = fn(obj)
            if value is not None:
                idx.setdefault(value, {})[key] = obj
        self.indexes[name] = idx

    def _unindex(self, key: Key, old: Obj) -> None:
        for name, fn in self.index_fns.items():
            ov = fn(old)
            idx = self.indexes[name]
            if ov is not None and (slot := idx.get(ov)) is not None:
                slot.pop(key, None)
                if not slot:
                    del idx[ov]

    def put(self, key: Key, obj: Obj, old: Obj | None) -> None:
        """Store `obj` under `key`, replacing `old` (None when new)."""
        if old is None:
            self.sorted_keys = None
        else:
            self._unindex(key, old)
        self.objects[key] = obj
        self.by_ns.setdefault(key[0], {})[key[1]] = obj
        for name, fn in self.index_fns.items():
            value = fn(obj)
            if value is not None:
                self.indexes[name].setdefault(value, {})[key] = obj

    def remove(self, key: Key, old: Obj) -> None:
        """Forget the object `old` stored under `key`."""
        self.sorted_keys = None
        del self.objects[key]
        ns = self.by_ns[key[0]]
        del ns[key[1]]
        if not ns:
            del self.by_ns[key[0]]
        self._unindex(key, old)

    def candidates(
        self, namespace: str | None, fields: FieldSelector
    ) -> tuple[Iterable[Key], dict[Key, Obj], bool]:
        """Keys to scan in order, where to look them up, and whether the scan is unfiltered
        (all namespaces, no index used)."""
        for name, idx in self.indexes.items():
            value = fields.equality_value(name)
            if value is not None:
                slot = idx.get(value, {})
                keys = sorted(k for k in slot if namespace is None or k[0] == namespace)
                return keys, slot, False
        if namespace is not None:
            names = self.by_ns.get(namespace, {})
            return [(namespace, n) for n in sorted(names)], self.objects, False
        if self.sorted_keys is None:
            self.sorted_keys = sorted(self.objects)
        return self.sorted_keys, self.objects, True
