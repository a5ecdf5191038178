"""Which PodDisruptionBudgets select a pod, in O(labels) rather than O(PDBs in the namespace).

Each selector is filed under one of its matchLabels pairs (a pod it selects must carry that
pair); selectors without matchLabels are checked for every pod of their namespace. Candidates
are then confirmed with the upstream selector semantics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubehop.lab.api.selectors import InvalidSelectorError
from kubehop.lab.controllers.disruption_arithmetic import labels_match


class SelectorIndex:
    """Label selectors by (namespace, name)."""

    def __init__(self) -> None:
        self.selectors: dict[str, dict[str, Any]] = {}  # namespace → name → selector
        self._by_pair: dict[str, dict[tuple[str, str], set[str]]] = {}
        self._unkeyed: dict[str, set[str]] = {}
        self._filed: dict[tuple[str, str], tuple[str, str] | None] = {}

    def set(self, namespace: str, name: str, selector: Any) -> None:
        self.remove(namespace, name)
        self.selectors.setdefault(namespace, {})[name] = selector
        labels = (selector or {}).get("matchLabels") if isinstance(selector, dict) else None
        if labels:
            pair = min((str(k), str(v)) for k, v in labels.items())
            self._by_pair.setdefault(namespace, {}).setdefault(pair, set()).add(name)
            self._filed[(namespace, name)] = pair
        else:
            self._unkeyed.setdefault(namespace, set()).add(name)
            self._filed[(namespace, name)] = None

    def remove(self, namespace: str, name: str) -> None:
        if (namespace, name) not in self._filed:
            return
        pair = self._filed.pop((namespace, name))
        self.selectors.get(namespace, {}).pop(name, None)
        if pair is None:
            self._unkeyed.get(namespace, set()).discard(name)
        else:
            self._by_pair.get(namespace, {}).get(pair, set()).discard(name)

    def names(self, namespace: str) -> list[str]:
        return list(self.selectors.get(namespace, {}))

    def matching(self, namespace: str, labels: Mapping[str, str] | None) -> list[str]:
        """Names of the selectors in `namespace` that select these labels, sorted."""
        if namespace not in self.selectors:
            return []
        candidates = set(self._unkeyed.get(namespace, ()))
        by_pair = self._by_pair.get(namespace, {})
        for pair in (labels or {}).items():
            if (names := by_pair.get(pair)) is not None:
                candidates |= names
        if not candidates:
            return []
        selectors = self.selectors[namespace]
        found = []
        for name in sorted(candidates):
            try:
                if labels_match(selectors[name], labels):
                    found.append(name)
            except InvalidSelectorError:
                continue
        return found
