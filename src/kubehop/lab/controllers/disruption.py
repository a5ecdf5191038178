"""The disruption controller: keeps every PodDisruptionBudget's status current.

Each PDB's matching pods are tallied incrementally from pod events (`PodTally`: readiness,
deletion and controller of each), and a PDB is re-synced (with
`kubehop.lab.controllers.disruption_arithmetic.sync_pdb_tally`, the upstream arithmetic over that
tally, so a sync
costs O(controllers + disruptedPods) rather than O(pods)) only when one of its pods, its spec,
or the scale of a controller in its namespace changes, or when a `disruptedPods` entry expires
(upstream's re-queue after DeletionTimeout).
"""

from __future__ import annotations

from typing import Any

from kubehop.lab.api.status import NotFoundStatus
from kubehop.lab.api.watches import Change
from kubehop.lab.controllers.disruption_arithmetic import (
    PodTally,
    kind_resource,
    lookup_resolver,
    sync_pdb_tally,
)
from kubehop.lab.controllers.pdbindex import SelectorIndex
from kubehop.lab.controllers.runtime import Controller, Key, Obj, Runtime, key_of

PDB = "poddisruptionbudgets.policy"
WORKLOADS = ("deployments.apps", "replicasets.apps", "statefulsets.apps",
             "clusters.postgresql.cnpg.io")


def _ready(pod: Obj) -> Any:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status")
    return None


def _same_facts(old: Obj | None, new: Obj | None) -> bool:
    """Whether a pod change leaves everything a PDB sync reads of it unchanged."""
    if old is None or new is None:
        return old is new
    a, b = old["metadata"], new["metadata"]
    return (bool(a.get("deletionTimestamp")) == bool(b.get("deletionTimestamp"))
            and _ready(old) == _ready(new) and a.get("labels") == b.get("labels")
            and a.get("ownerReferences") == b.get("ownerReferences"))


def _scale(obj: Obj | None) -> Any:
    spec = (obj or {}).get("spec") or {}
    return spec.get("replicas", spec.get("instances"))


class Disruption(Controller):
    """PDB keys; each PDB's matching pods kept as a tally."""

    resources = (PDB, "pods", *WORKLOADS)

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.selectors = SelectorIndex()
        self.tallies: dict[Key, PodTally] = {}  # PDB → its matching pods
        self.rechecks: dict[Key, float] = {}
        self._writing = False

    def resync(self) -> None:
        for pdb in self.store.iter(PDB):
            ns, name = key_of(pdb)
            self.selectors.set(ns, name, (pdb.get("spec") or {}).get("selector"))
            self.tallies[(ns, name)] = PodTally(ns)
            self.mark((ns, name))
        for pod in self.store.iter("pods"):
            ns = pod["metadata"].get("namespace", "")
            for name in self.selectors.matching(ns, pod["metadata"].get("labels")):
                self.tallies[(ns, name)].add(pod)

    def _set_pdb(self, pdb: Obj) -> None:
        ns, name = key_of(pdb)
        self.selectors.set(ns, name, (pdb.get("spec") or {}).get("selector"))
        self.tallies[(ns, name)] = PodTally.of(ns, (
            p for p in self.store.iter("pods", ns)
            if name in self.selectors.matching(ns, p["metadata"].get("labels"))))

    def on_change(self, change: Change) -> None:
        obj, res = change.object, change.resource
        if res == PDB:
            key = key_of(obj)
            if change.type == "DELETED":
                self.selectors.remove(*key)
                self.tallies.pop(key, None)
                return
            if change.old is None or (change.old.get("spec") or {}).get("selector") != (
                    obj.get("spec") or {}).get("selector"):
                self._set_pdb(obj)
            if not self._writing:
                self.mark(key)
        elif res == "pods":
            new = None if change.type == "DELETED" else obj
            if change.type == "MODIFIED" and _same_facts(change.old, new):
                return
            ns, pod_name = key_of(obj)
            was = set(self.selectors.matching(ns, (change.old or {}).get("metadata", {}).get(
                "labels"))) if change.old is not None else set()
            now = set(self.selectors.matching(ns, new["metadata"].get("labels"))) \
                if new is not None else set()
            for name in was | now:
                tally = self.tallies.get((ns, name))
                if tally is None:
                    tally = self.tallies[(ns, name)] = PodTally(ns)
                if new is not None and name in now:
                    tally.add(new)
                else:
                    tally.discard(pod_name)
                self.mark((ns, name))
        elif change.type != "MODIFIED" or _scale(change.old) != _scale(obj):
            for name in self.selectors.names(obj["metadata"].get("namespace", "")):
                self.mark((obj["metadata"]["namespace"], name))

    def _lookup(self, group: str, kind: str, namespace: str, name: str) -> Obj | None:
        """What the scale finders read: workload objects straight from the store."""
        resource = kind_resource(group, kind)
        return None if resource is None else self.store.peek(resource, namespace, name)

    def sync(self, key: Key) -> None:
        pdb = self.store.peek(PDB, *key)
        if pdb is None:
            return
        tally = self.tallies.get(key) or PodTally(key[0])
        result = sync_pdb_tally(pdb, tally, lookup_resolver(self._lookup), self.rt.clock.wall())
        if result.changed:
            status = result.status
            self._writing = True
            try:
                self.store.mutate(PDB, *key, lambda p: p.update(status=status))
            except NotFoundStatus:
                return
            finally:
                self._writing = False
        if result.recheck_at is not None:
            due = self.rt.clock.lab(result.recheck_at) + 0.001
            if self.rechecks.get(key, float("inf")) > due:
                self.rechecks[key] = due
                self.rt.at(due, lambda: self._recheck(key, due))

    def _recheck(self, key: Key, due: float) -> None:
        if self.rechecks.get(key) == due:
            del self.rechecks[key]
        self.mark(key)
