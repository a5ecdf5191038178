"""Deployment → ReplicaSet → Pod controllers and the garbage collector.

ReplicaSets keep `spec.replicas` active pods (a pod being deleted no longer counts, so a
replacement starts as soon as an eviction begins), named `<rs>-<5 chars>`, deleting surplus
pods in `controller.ActivePods` order. Deployments own one ReplicaSet per pod template
(`<deployment>-<pod-template-hash>`, templates compared ignoring the hash as upstream's
EqualIgnoreHash) and roll from old to new within maxSurge/maxUnavailable
(`rolloutRolling`), or scale old to zero first (`Recreate`).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from kubehop.lab.api.status import AlreadyExists, NotFoundStatus, StatusError
from kubehop.lab.api.watches import Change
from kubehop.lab.controllers.disruption_arithmetic import is_pod_ready, scaled_value
from kubehop.lab.controllers.evictions import PodDeleter
from kubehop.lab.controllers.pods import (
    deletion_rank,
    is_active,
    owner_ref,
    pod_from_template,
    random_suffix,
    template_hash,
)
from kubehop.lab.controllers.runtime import Controller, Key, Obj, Runtime, controller_uid, key_of

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def owner_key(obj: Obj | None, kind: str) -> Key | None:
    """(namespace, name) of the object's controller when it is of `kind`."""
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == kind:
            return obj["metadata"].get("namespace") or "", ref["name"]  # type: ignore[index]
    return None


def pod_state(pod: Obj | None) -> tuple[Any, ...]:
    """What about a pod its controller's counts depend on."""
    if pod is None:
        return ()
    return (is_active(pod), is_pod_ready(pod), (pod.get("status") or {}).get("phase"),
            bool(pod["metadata"].get("deletionTimestamp")), (pod.get("spec") or {}).get("nodeName"))


def write_status(rt: Runtime, resource: str, obj: Obj, status: Obj) -> None:
    """Store `status` unless it equals the current one; condition times move only on change."""
    old = obj.get("status") or {}
    conditions = status.get("conditions") or ()
    previous = {c.get("type"): c for c in old.get("conditions") or ()} if conditions else {}
    now = rt.clock.timestamp() if conditions else ""
    for c in conditions:
        prev = previous.get(c.get("type")) or {}
        same = prev.get("status") == c.get("status")
        if resource == "deployments.apps":
            unchanged = same and (prev.get("reason"), prev.get("message")) == (
                c.get("reason"), c.get("message"))
            c["lastUpdateTime"] = prev.get("lastUpdateTime", now) if unchanged else now
        c["lastTransitionTime"] = prev.get("lastTransitionTime", now) if same else now
    if status == old:
        return
    with contextlib.suppress(NotFoundStatus):
        rt.store.mutate(resource, *key_of(obj), lambda o: o.update(status=status))


def create_pod(rt: Runtime, pod: Obj, prefix: str) -> Obj | None:
    """Create a generateName pod, retrying on a name clash."""
    for _ in range(10):
        pod["metadata"]["name"] = prefix + random_suffix(rt.rand)
        try:
            return rt.store.create("pods", pod)
        except AlreadyExists:
            continue
    return None


def _labels(obj: Obj | None) -> Any:
    return ((obj or {}).get("metadata") or {}).get("labels")


class _Counts:
    """A ReplicaSet's pods as its status counts them, kept pod change by pod change."""

    __slots__ = ("active", "labeled", "labels", "ready")

    def __init__(self, labels: dict[str, Any]) -> None:
        self.labels = labels  # the template labels `labeled` is counted against
        self.active = 0  # controller.IsPodActive
        self.ready = 0  # active and Ready (then also available: active pods are not deleting)
        self.labeled = 0  # active and carrying every template label

    def add(self, pod: Obj, sign: int = 1) -> None:
        if not is_active(pod):
            return
        self.active += sign
        self.ready += sign * is_pod_ready(pod)
        mine = pod["metadata"].get("labels") or {}
        for k, v in self.labels.items():
            if mine.get(k) != v:
                break
        else:
            self.labeled += sign


class ReplicaSets(Controller):
    """Keeps each ReplicaSet's active pod count at spec.replicas.

    Each ReplicaSet's counts (active, Ready, fully labeled pods) are taken once by walking its
    pods, then kept exact from every pod change (the store delivers each change, with the
    state before it, synchronously and in order), so a sync is O(1) unless it deletes pods.
    """

    resources = ("replicasets.apps", "pods")

    def __init__(self, rt: Runtime, deleter: PodDeleter) -> None:
        super().__init__(rt)
        self.deleter = deleter
        self.counts: dict[str, _Counts] = {}  # ReplicaSet uid → counts of the pods it controls

    def resync(self) -> None:
        for rs in self.store.iter("replicasets.apps"):
            self.mark(key_of(rs))

    def on_change(self, change: Change) -> None:
        if change.resource == "replicasets.apps":
            if change.type != "DELETED":
                self.mark(key_of(change.object))
            else:
                self.counts.pop(change.object["metadata"].get("uid", ""), None)
            return
        new = None if change.type == "DELETED" else change.object
        old = change.object if change.type == "DELETED" and change.old is None else change.old
        if self.counts:
            for pod, sign in ((old, -1), (new, 1)):
                uid = controller_uid(pod)
                if pod is not None and uid is not None and (
                        counts := self.counts.get(uid)) is not None:
                    counts.add(pod, sign)
        if change.type == "MODIFIED" and pod_state(change.old) == pod_state(new) and (
                _labels(change.old) == _labels(new)):
            return
        for obj in (change.old, new):
            if (key := owner_key(obj, "ReplicaSet")) is not None:
                self.mark(key)

    def _counts(self, rs: Obj) -> _Counts:
        uid = rs["metadata"]["uid"]
        labels = ((rs.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
            "labels") or {}
        counts = self.counts.get(uid)
        if counts is None or counts.labels != labels:
            counts = self.counts[uid] = _Counts(dict(labels))
            for pod in self.rt.owned("pods", uid):
                counts.add(pod)
        return counts

    def sync(self, key: Key) -> None:
        rs = self.store.peek("replicasets.apps", *key)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        counts = self._counts(rs)
        want = int((rs.get("spec") or {}).get("replicas", 1))
        if counts.active < want:
            template = (rs.get("spec") or {}).get("template") or {}
            for _ in range(want - counts.active):
                pod = pod_from_template(template, key[0], "", rs,
                                        created=self.rt.clock.timestamp(),
                                        generate_name=f"{key[1]}-")
                create_pod(self.rt, pod, f"{key[1]}-")  # counted as the store reports it
        elif counts.active > want:
            active = [p for p in self.rt.owned("pods", rs["metadata"]["uid"]) if is_active(p)]
            for pod in sorted(active, key=deletion_rank)[: len(active) - want]:
                try:
                    self.deleter.delete_pod(*key_of(pod), by="controller")
                except StatusError:
                    continue
        status = {
            "replicas": counts.active,
            "fullyLabeledReplicas": counts.labeled,
            "readyReplicas": counts.ready,
            "availableReplicas": counts.ready,  # is_available: Ready and not being deleted
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        write_status(self.rt, "replicasets.apps", rs, status)


def _without_hash(template: Obj) -> Obj:
    """The template without its pod-template-hash label, for comparisons only (shares the
    unchanged parts with `template`)."""
    meta = template.get("metadata")
    labels = (meta or {}).get("labels")
    if not labels or HASH_LABEL not in labels:
        return template
    return {**template, "metadata": {**meta, "labels": {
        k: v for k, v in labels.items() if k != HASH_LABEL}}}


def _replicas(obj: Obj) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


class Deployments(Controller):
    """Creates, scales and rolls each Deployment's ReplicaSets."""

    resources = ("deployments.apps", "replicasets.apps")

    def resync(self) -> None:
        for d in self.store.iter("deployments.apps"):
            self.mark(key_of(d))

    def on_change(self, change: Change) -> None:
        if change.resource == "deployments.apps":
            if change.type != "DELETED":
                self.mark(key_of(change.object))
            return
        for obj in (change.old, change.object):
            if (key := owner_key(obj, "Deployment")) is not None:
                self.mark(key)

    def sync(self, key: Key) -> None:
        d = self.store.peek("deployments.apps", *key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        spec = d.get("spec") or {}
        rss = sorted(self.rt.owned("replicasets.apps", d["metadata"]["uid"]),
                     key=lambda r: (r["metadata"].get("creationTimestamp", ""),
                                    r["metadata"]["name"]))
        template = _without_hash(spec.get("template") or {})
        new = next((r for r in rss if _without_hash(r["spec"].get("template") or {}) == template),
                   None)
        olds = [r for r in rss if r is not new]
        replicas = _replicas(d)
        if not spec.get("paused"):
            strategy = spec.get("strategy") or {}
            if strategy.get("type") == "Recreate":
                new = self._recreate(d, new, olds, replicas)
            else:
                new = self._rolling(d, new, olds, replicas, strategy.get("rollingUpdate") or {})
        self._status(d, new, olds, replicas)

    # --- strategies -----------------------------------------------------------------------

    def _scale(self, rs: Obj, replicas: int) -> Obj:
        if _replicas(rs) == replicas:
            return rs
        def update(r: Obj) -> None:
            r["spec"]["replicas"] = replicas
        return self.store.mutate("replicasets.apps", *key_of(rs), update)

    def _new_rs(self, d: Obj, olds: list[Obj], replicas: int) -> Obj:
        template = copy.deepcopy(d["spec"].get("template") or {})
        collisions = int((d.get("status") or {}).get("collisionCount", 0))
        h = template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(d["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        revision = 1 + max((int((r["metadata"].get("annotations") or {}).get(REVISION, 0))
                            for r in olds), default=0)
        rs = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{h}", "namespace": d["metadata"]["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {REVISION: str(revision),
                                "deployment.kubernetes.io/desired-replicas": str(_replicas(d))},
                "ownerReferences": [owner_ref(d)],
                "creationTimestamp": self.rt.clock.timestamp(),
            },
            "spec": {"replicas": replicas, "selector": selector, "template": template},
            "status": {"replicas": 0},
        }
        return self.store.create("replicasets.apps", rs)

    def _recreate(self, d: Obj, new: Obj | None, olds: list[Obj], replicas: int) -> Obj | None:
        running = False
        for rs in olds:
            self._scale(rs, 0)
            running = running or any(self.rt.owned("pods", rs["metadata"]["uid"]))
        if running:
            return new
        if new is None:
            return self._new_rs(d, olds, replicas)
        return self._scale(new, replicas)

    def _rolling(
        self, d: Obj, new: Obj | None, olds: list[Obj], replicas: int, ru: Obj
    ) -> Obj | None:
        surge = scaled_value(ru.get("maxSurge", "25%"), replicas, True)
        unavailable = scaled_value(ru.get("maxUnavailable", "25%"), replicas, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        current = sum(_replicas(r) for r in olds) + (_replicas(new) if new else 0)
        if new is None:
            count = replicas if not olds else max(0, min(replicas, replicas + surge - current))
            new = self._new_rs(d, olds, count)
        elif _replicas(new) > replicas:
            new = self._scale(new, replicas)
        elif _replicas(new) < replicas:
            room = replicas + surge - current
            if room > 0:
                new = self._scale(new, _replicas(new) + min(room, replicas - _replicas(new)))
        olds = [r for r in olds if _replicas(r) > 0]
        if not olds:
            return new
        all_pods = sum(_replicas(r) for r in olds) + _replicas(new)
        min_available = replicas - unavailable
        new_unavailable = _replicas(new) - int((new.get("status") or {}).get(
            "availableReplicas", 0))
        max_down = all_pods - min_available - new_unavailable
        if max_down <= 0:
            return new
        done = 0
        for i, rs in enumerate(olds):  # cleanupUnhealthyReplicas
            avail = int((rs.get("status") or {}).get("availableReplicas", 0))
            if done >= max_down or _replicas(rs) <= avail:
                continue
            down = min(max_down - done, _replicas(rs) - avail)
            olds[i] = self._scale(rs, _replicas(rs) - down)
            done += down
        available = sum(int((r.get("status") or {}).get("availableReplicas", 0))
                        for r in [*olds, new])
        budget = available - min_available
        for rs in olds:  # scaleDownOldReplicaSetsForRollingUpdate
            if budget <= 0:
                break
            down = min(_replicas(rs), budget)
            if down:
                self._scale(rs, _replicas(rs) - down)
                budget -= down
        return new

    def _status(self, d: Obj, new: Obj | None, olds: list[Obj], replicas: int) -> None:
        every = [*olds, new] if new is not None else olds

        def total(field: str, rss: list[Obj]) -> int:
            return sum(int((r.get("status") or {}).get(field, 0)) for r in rss)

        available = total("availableReplicas", every)
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = scaled_value(ru.get("maxUnavailable", "25%"), replicas, False)
        complete = new is not None and _replicas(new) == replicas and not any(
            _replicas(r) for r in olds) and total("availableReplicas", [new]) == replicas
        status: Obj = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": total("replicas", every),
            "updatedReplicas": total("replicas", [new]) if new is not None else 0,
            "readyReplicas": total("readyReplicas", every),
            "availableReplicas": available,
            "conditions": [
                {"type": "Available",
                 "status": "True" if available >= replicas - max_unavailable else "False",
                 "reason": "MinimumReplicasAvailable" if available >= replicas - max_unavailable
                 else "MinimumReplicasUnavailable",
                 "message": "Deployment has minimum availability." if available >= replicas
                 - max_unavailable else "Deployment does not have minimum availability."},
                {"type": "Progressing", "status": "True",
                 "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                 "message": f'ReplicaSet "{new["metadata"]["name"]}" '
                 + ("has successfully progressed." if complete else "is progressing.")
                 if new is not None else "Deployment is progressing."},
            ],
        }
        if replicas - available > 0:
            status["unavailableReplicas"] = replicas - available
        if (d.get("status") or {}).get("collisionCount"):
            status["collisionCount"] = d["status"]["collisionCount"]
        write_status(self.rt, "deployments.apps", d, status)


OWNER_RESOURCES = ("deployments.apps", "replicasets.apps", "statefulsets.apps",
                   "daemonsets.apps", "clusters.postgresql.cnpg.io", "nodes")


class GarbageCollector(Controller):
    """Deletes the dependents of a deleted owner (background propagation)."""

    resources = OWNER_RESOURCES

    def __init__(self, rt: Runtime, deleter: PodDeleter) -> None:
        super().__init__(rt)
        self.deleter = deleter

    def on_change(self, change: Change) -> None:
        if change.type == "DELETED" and change.resource != "nodes":
            self.mark(change.object["metadata"]["uid"])

    def sync(self, uid: str) -> None:
        for rs in self.rt.owned("replicasets.apps", uid):
            self.store.delete("replicasets.apps", *key_of(rs))
        for pdb in self.rt.owned("poddisruptionbudgets.policy", uid):
            self.store.delete("poddisruptionbudgets.policy", *key_of(pdb))
        for pod in self.rt.owned("pods", uid):
            if controller_uid(pod) == uid:
                try:
                    self.deleter.delete_pod(*key_of(pod), by="controller")
                except StatusError:
                    continue
