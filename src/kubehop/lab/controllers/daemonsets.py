"""The DaemonSet controller: one pod per eligible node, rolled one node at a time.

Eligibility follows `NodeShouldRunDaemonPod`: the node matches the template's node selector and
affinity and every NoSchedule/NoExecute taint is tolerated, counting the tolerations the
controller adds to its pods (not-ready and unreachable NoExecute; disk, memory and PID pressure,
unschedulable, and for host-network pods network-unavailable, all NoSchedule) — so a cordoned
node keeps and gets DaemonSet pods. A pod keeps running while its NoExecute taints are
tolerated. Pods are pinned with a required `metadata.name` node affinity and bound by the
scheduler. Work is keyed by (DaemonSet, node), so a node change costs one check per DaemonSet.
"""

from __future__ import annotations

from typing import Any

from kubehop.lab.api.status import StatusError
from kubehop.lab.api.watches import Change
from kubehop.lab.controllers import scheduler as pure
from kubehop.lab.controllers.disruption_arithmetic import is_pod_ready, scaled_value
from kubehop.lab.controllers.evictions import PodDeleter
from kubehop.lab.controllers.placement import pinned_node
from kubehop.lab.controllers.pods import (
    REVISION_LABEL,
    Revisions,
    is_available,
    pod_from_template,
)
from kubehop.lab.controllers.runtime import Controller, Key, Obj, Runtime, key_of
from kubehop.lab.controllers.workloads import create_pod, owner_key, pod_state, write_status

DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
NETWORK_UNAVAILABLE = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                       "effect": "NoSchedule"}


def daemon_tolerations(template: Obj) -> list[Obj]:
    """The tolerations the controller adds to its pods (those the template lacks)."""
    spec = template.get("spec") or {}
    have = spec.get("tolerations") or []
    extra = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        extra.append(NETWORK_UNAVAILABLE)
    return [t for t in extra if t not in have]


def should_run(ds: Obj, node: Obj) -> tuple[bool, bool]:
    """(should run a pod there, may keep running one) — NodeShouldRunDaemonPod."""
    template = (ds.get("spec") or {}).get("template") or {}
    spec = dict(template.get("spec") or {})
    tolerations = list(spec.get("tolerations") or []) + daemon_tolerations(template)
    spec["tolerations"] = tolerations
    if not pure._matches_affinity({"spec": spec}, node):
        return False, False
    run = keep = True
    for taint in pure.node_taints(node):
        effect = taint.get("effect")
        if effect in ("NoSchedule", "NoExecute") and not pure._tolerates(tolerations, taint):
            run = False
            keep = keep and effect != "NoExecute"
    return run, keep


def _node_facts(node: Obj | None) -> tuple[Any, ...]:
    if node is None:
        return ()
    ready = [c.get("status") for c in (node.get("status") or {}).get("conditions") or ()
             if c.get("type") == "Ready"]
    return (repr(node["metadata"].get("labels")), repr((node.get("spec") or {}).get("taints")),
            (node.get("spec") or {}).get("unschedulable"), ready)


def _target(pod: Obj) -> str | None:
    return (pod.get("spec") or {}).get("nodeName") or pinned_node(pod)


class DaemonSets(Controller):
    """Keys: `(namespace, name)` for a DaemonSet's rollout and status, `(ns, name, node)` for
    its pod on one node."""

    resources = ("daemonsets.apps", "nodes", "pods")

    def __init__(self, rt: Runtime, deleter: PodDeleter) -> None:
        super().__init__(rt)
        self.deleter = deleter
        self.revisions = Revisions()
        self.daemonsets: dict[Key, str] = {}  # key → uid
        self.pods: dict[tuple[str, str], dict[Key, None]] = {}  # (ds uid, node) → pod keys
        self.eligible: dict[str, dict[str, bool]] = {}  # ds uid → node → should run

    def resync(self) -> None:
        for ds in self.store.iter("daemonsets.apps"):
            self.daemonsets[key_of(ds)] = ds["metadata"]["uid"]
        for pod in self.store.iter("pods"):
            self._index(None, pod)
        for key in self.daemonsets:
            self._all_nodes(key)

    def _all_nodes(self, key: Key) -> None:
        for node in self.store.iter("nodes"):
            self.mark((*key, node["metadata"]["name"]))
        self.dirty.pop(key, None)
        self.mark(key)  # after the nodes: the rollout and status need their eligibility

    def _index(self, old: Obj | None, new: Obj | None) -> None:
        for obj, add in ((old, False), (new, True)):
            if obj is None or owner_key(obj, "DaemonSet") is None:
                continue
            uid = next(r["uid"] for r in obj["metadata"]["ownerReferences"] if r.get("controller"))
            slot = (uid, _target(obj) or "")
            if add:
                self.pods.setdefault(slot, {})[key_of(obj)] = None
            elif (pods := self.pods.get(slot)) is not None:
                pods.pop(key_of(obj), None)

    def on_change(self, change: Change) -> None:
        obj = change.object
        if change.resource == "daemonsets.apps":
            key = key_of(obj)
            if change.type == "DELETED":
                uid = self.daemonsets.pop(key, None)
                self.eligible.pop(uid or "", None)
                self.revisions.forget(uid or "")
            else:
                self.daemonsets[key] = obj["metadata"]["uid"]
                if change.old is None or change.old.get("spec") != obj.get("spec"):
                    self._all_nodes(key)
                else:
                    self.mark(key)
        elif change.resource == "nodes":
            if change.type == "MODIFIED" and _node_facts(change.old) == _node_facts(obj):
                return
            for key in self.daemonsets:
                self.mark((*key, obj["metadata"]["name"]))
        else:
            new = None if change.type == "DELETED" else obj
            self._index(change.old, new)
            if change.type == "MODIFIED" and pod_state(change.old) == pod_state(new):
                return
            for p in (change.old, new):
                if p is not None and (key := owner_key(p, "DaemonSet")) is not None:
                    self.mark(key)
                    self.mark((*key, _target(p) or ""))

    def sync(self, key: tuple[str, ...]) -> None:
        ds = self.store.peek("daemonsets.apps", key[0], key[1])
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        if len(key) == 3:
            self._sync_node(ds, key[2])
        else:
            self._rollout(ds)

    # --- one node -------------------------------------------------------------------------

    def _pods_on(self, ds: Obj, node: str) -> list[Obj]:
        keys = self.pods.get((ds["metadata"]["uid"], node)) or {}
        found = (self.store.peek("pods", *k) for k in list(keys))
        return [p for p in found if p is not None]

    def _sync_node(self, ds: Obj, node_name: str) -> None:
        uid = ds["metadata"]["uid"]
        node = self.store.peek("nodes", "", node_name) if node_name else None
        pods = [p for p in self._pods_on(ds, node_name)
                if not p["metadata"].get("deletionTimestamp")]
        run, keep = should_run(ds, node) if node is not None else (False, False)
        if node is not None:
            self.eligible.setdefault(uid, {})[node_name] = run
        else:
            self.eligible.get(uid, {}).pop(node_name, None)
        failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        doomed = failed
        alive = [p for p in pods if p not in failed]
        if not keep:
            doomed += alive
            alive = []
        elif len(alive) > 1:  # keep the oldest
            alive.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""),
                                      p["metadata"]["name"]))
            doomed += alive[1:]
            alive = alive[:1]
        for pod in doomed:
            try:
                self.deleter.delete_pod(*key_of(pod), by="controller")
            except StatusError:
                continue
        if run and not alive and node is not None:
            self._create(ds, node_name)

    def _create(self, ds: Obj, node_name: str) -> None:
        template = (ds.get("spec") or {}).get("template") or {}
        name = ds["metadata"]["name"]
        revision = self.revisions.current(ds, self._all_pods(ds))
        generation = str(ds["metadata"].get("generation", 1))
        pod = pod_from_template(
            template, ds["metadata"]["namespace"], "", ds, created=self.rt.clock.timestamp(),
            labels={REVISION_LABEL: revision, "pod-template-generation": generation},
            generate_name=f"{name}-", node_affinity=node_name,
            tolerations=daemon_tolerations(template),
        )
        create_pod(self.rt, pod, f"{name}-")

    # --- rollout and status ---------------------------------------------------------------

    def _all_pods(self, ds: Obj) -> list[Obj]:
        return self.rt.owned("pods", ds["metadata"]["uid"])

    def _rollout(self, ds: Obj) -> None:
        uid = ds["metadata"]["uid"]
        pods = [p for p in self._all_pods(ds) if not p["metadata"].get("deletionTimestamp")]
        revision = self.revisions.current(ds, pods)
        eligible = self.eligible.get(uid, {})
        desired = sum(eligible.values())
        by_node: dict[str, list[Obj]] = {}
        for p in pods:
            by_node.setdefault(_target(p) or "", []).append(p)
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            ru = strategy.get("rollingUpdate") or {}
            budget = scaled_value(ru.get("maxUnavailable", 1), desired, True) or 1
            unavailable = sum(1 for n, run in eligible.items()
                              if run and not any(is_available(p) for p in by_node.get(n, [])))
            old = sorted((p for p in pods if self.revisions.outdated(ds, p, revision)),
                         key=lambda p: (is_available(p), _target(p) or ""))
            for pod in old:
                if is_available(pod):
                    if unavailable >= budget:
                        break
                    unavailable += 1
                try:
                    self.deleter.delete_pod(*key_of(pod), by="controller")
                except StatusError:
                    continue
        scheduled = [n for n, run in eligible.items() if run and by_node.get(n)]
        status = {
            "currentNumberScheduled": len(scheduled),
            "numberMisscheduled": sum(1 for n in by_node if n and not eligible.get(n, False)),
            "desiredNumberScheduled": desired,
            "numberReady": sum(1 for n in scheduled if any(is_pod_ready(p) for p in by_node[n])),
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": sum(1 for n in scheduled if any(
                not self.revisions.outdated(ds, p, revision) for p in by_node[n])),
            "numberAvailable": sum(1 for n in scheduled
                                   if any(is_available(p) for p in by_node[n])),
        }
        if desired - status["numberAvailable"] > 0:
            status["numberUnavailable"] = desired - status["numberAvailable"]
        write_status(self.rt, "daemonsets.apps", ds, status)
