"""The disruption controller: keeps every PodDisruptionBudget's status current.

Each PDB's matching pods are tracked incrementally from pod events, and a PDB is re-synced
(with `kubehop.lab.disruption.sync_pdb`, the upstream arithmetic) only when one of its pods,
its spec, or the scale of a controller in its namespace changes, or when a `disruptedPods`
entry expires (upstream's re-queue after DeletionTimeout).
"""

from __future__ import annotations

from typing import Any

from kubehop.lab.controllers.pdbindex import SelectorIndex
from kubehop.lab.controllers.runtime import Controller, Key, Obj, Runtime, key_of
from kubehop.lab.disruption import scale_resolver, sync_pdb
from kubehop.lab.status import NotFound
from kubehop.lab.store import Change

PDB = "poddisruptionbudgets.policy"
SCALED = {
    "ReplicaSet": "replicasets.apps",
    "Deployment": "deployments.apps",
    "StatefulSet": "statefulsets.apps",
    "DaemonSet": "daemonsets.apps",
    "ReplicationController": "replicationcontrollers",
    "Job": "jobs.batch",
    "Cluster": "clusters.postgresql.cnpg.io",
}
WORKLOADS = ("deployments.apps", "replicasets.apps", "statefulsets.apps",
             "clusters.postgresql.cnpg.io")


def _pod_facts(pod: Obj | None) -> tuple[Any, ...]:
    if pod is None:
        return ()
    meta = pod["metadata"]
    ready = [c.get("status") for c in (pod.get("status") or {}).get("conditions") or ()
             if c.get("type") == "Ready"]
    return (repr(meta.get("labels")), bool(meta.get("deletionTimestamp")), ready,
            repr(meta.get("ownerReferences")))


def _scale(obj: Obj | None) -> Any:
    spec = (obj or {}).get("spec") or {}
    return spec.get("replicas", spec.get("instances"))


class Disruption(Controller):
    """PDB keys; pod → PDB membership kept per namespace."""

    resources = (PDB, "pods", *WORKLOADS)

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.selectors = SelectorIndex()
        self.members: dict[Key, dict[Key, None]] = {}  # PDB → matching pods
        self.rechecks: dict[Key, float] = {}
        self._writing = False

    def resync(self) -> None:
        for pdb in self.store.iter(PDB):
            ns, name = key_of(pdb)
            self.selectors.set(ns, name, (pdb.get("spec") or {}).get("selector"))
            self.members[(ns, name)] = {}
            self.mark((ns, name))
        for pod in self.store.iter("pods"):
            ns = pod["metadata"].get("namespace", "")
            for name in self.selectors.matching(ns, pod["metadata"].get("labels")):
                self.members[(ns, name)][key_of(pod)] = None

    def _set_pdb(self, pdb: Obj) -> None:
        ns, name = key_of(pdb)
        self.selectors.set(ns, name, (pdb.get("spec") or {}).get("selector"))
        self.members[(ns, name)] = {
            key_of(p): None for p in self.store.iter("pods", ns)
            if name in self.selectors.matching(ns, p["metadata"].get("labels"))}

    def on_change(self, change: Change) -> None:
        obj, res = change.object, change.resource
        if res == PDB:
            key = key_of(obj)
            if change.type == "DELETED":
                self.selectors.remove(*key)
                self.members.pop(key, None)
                return
            if change.old is None or (change.old.get("spec") or {}).get("selector") != (
                    obj.get("spec") or {}).get("selector"):
                self._set_pdb(obj)
            if not self._writing:
                self.mark(key)
        elif res == "pods":
            new = None if change.type == "DELETED" else obj
            if change.type == "MODIFIED" and _pod_facts(change.old) == _pod_facts(new):
                return
            ns, pod_key = obj["metadata"].get("namespace", ""), key_of(obj)
            was = set(self.selectors.matching(ns, (change.old or {}).get("metadata", {}).get(
                "labels"))) if change.old is not None else set()
            now = set(self.selectors.matching(ns, new["metadata"].get("labels"))) \
                if new is not None else set()
            for name in was | now:
                members = self.members.setdefault((ns, name), {})
                if name in now:
                    members[pod_key] = None
                else:
                    members.pop(pod_key, None)
                self.mark((ns, name))
        elif change.type != "MODIFIED" or _scale(change.old) != _scale(obj):
            for name in self.selectors.names(obj["metadata"].get("namespace", "")):
                self.mark((obj["metadata"]["namespace"], name))

    def _owners(self, pods: list[Obj]) -> list[Obj]:
        """The controllers (and their controllers) of these pods: what the scale lookups read."""
        found: dict[tuple[str, str, str], Obj] = {}
        todo = list(pods)
        while todo:
            obj = todo.pop()
            ns = obj["metadata"].get("namespace", "")
            for ref in obj["metadata"].get("ownerReferences") or ():
                res = SCALED.get(ref.get("kind", ""))
                if not ref.get("controller") or res is None:
                    continue
                k = (res, ns, ref.get("name", ""))
                if k not in found and (owner := self.store.peek(res, ns, k[2])) is not None:
                    found[k] = owner
                    todo.append(owner)
        return list(found.values())

    def sync(self, key: Key) -> None:
        pdb = self.store.peek(PDB, *key)
        if pdb is None:
            return
        pods = [p for k in self.members.get(key, {}) if (p := self.store.peek("pods", *k))]
        result = sync_pdb(pdb, pods, scale_resolver(self._owners(pods)), self.rt.clock.wall())
        if result.changed:
            status = result.status
            self._writing = True
            try:
                self.store.mutate(PDB, *key, lambda p: p.update(status=status))
            except NotFound:
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
