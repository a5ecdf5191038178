"""The StatefulSet controller: pods `<name>-0 … <name>-(N-1)`, each recreated with its name.

With the default OrderedReady policy, ordinal i is created only when every lower ordinal is
Running and Ready, a missing pod is recreated only after its predecessor is gone (names are
unique), scale-down removes the highest ordinal first, and a RollingUpdate replaces one pod at a
time from the highest ordinal down to `partition`. `Parallel` skips the waiting.
"""

from __future__ import annotations

import contextlib

from kubehop.lab.api.status import AlreadyExists, StatusError
from kubehop.lab.api.watches import Change
from kubehop.lab.controllers.disruption_arithmetic import is_pod_ready
from kubehop.lab.controllers.evictions import PodDeleter
from kubehop.lab.controllers.pods import REVISION_LABEL, Revisions, pod_from_template
from kubehop.lab.controllers.runtime import Controller, Key, Obj, Runtime, key_of
from kubehop.lab.controllers.workloads import owner_key, pod_state, write_status

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal(sts_name: str, pod: Obj) -> int | None:
    name = pod["metadata"]["name"]
    prefix, _, number = name.rpartition("-")
    if prefix != sts_name or not number.isdigit():
        return None
    return int(number)


def _healthy(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_pod_ready(pod) and \
        not pod["metadata"].get("deletionTimestamp")


class StatefulSets(Controller):
    resources = ("statefulsets.apps", "pods")

    def __init__(self, rt: Runtime, deleter: PodDeleter) -> None:
        super().__init__(rt)
        self.deleter = deleter
        self.revisions = Revisions()

    def resync(self) -> None:
        for sts in self.store.iter("statefulsets.apps"):
            self.mark(key_of(sts))

    def on_change(self, change: Change) -> None:
        if change.resource == "statefulsets.apps":
            if change.type == "DELETED":
                self.revisions.forget(change.object["metadata"]["uid"])
            else:
                self.mark(key_of(change.object))
            return
        new = None if change.type == "DELETED" else change.object
        if change.type == "MODIFIED" and pod_state(change.old) == pod_state(new):
            return
        for obj in (change.old, new):
            if (key := owner_key(obj, "StatefulSet")) is not None:
                self.mark(key)

    def sync(self, key: Key) -> None:
        sts = self.store.peek("statefulsets.apps", *key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        spec = sts.get("spec") or {}
        name = key[1]
        pods = {o: p for p in self.rt.owned("pods", sts["metadata"]["uid"])
                if (o := ordinal(name, p)) is not None}
        status = sts.get("status") or {}
        revision = self.revisions.current(sts, list(pods.values()), f"{name}-",
                                          status.get("updateRevision", ""))
        replicas = int(spec.get("replicas", 1))
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        blocked = False
        for i in range(replicas):
            pod = pods.get(i)
            if pod is None:
                self._create(sts, i, revision)
                blocked = True
            elif pod["metadata"].get("deletionTimestamp"):
                blocked = True
            elif (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
                self._delete(pod)
                blocked = True
            elif not _healthy(pod):
                blocked = True
            if blocked and ordered:
                break
        if not blocked or not ordered:
            condemned = sorted((o for o in pods if o >= replicas), reverse=True)
            for o in condemned:
                if not pods[o]["metadata"].get("deletionTimestamp"):
                    self._delete(pods[o])
                if ordered:
                    blocked = True
                    break
        if not blocked:
            self._roll(sts, pods, replicas, revision)
        self._status(sts, revision)

    def _create(self, sts: Obj, i: int, revision: str) -> None:
        name = f"{sts['metadata']['name']}-{i}"
        template = (sts.get("spec") or {}).get("template") or {}
        pod = pod_from_template(
            template, sts["metadata"]["namespace"], name, sts, created=self.rt.clock.timestamp(),
            labels={REVISION_LABEL: revision, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(i)},
        )
        pod["spec"]["hostname"] = name
        if sts["spec"].get("serviceName"):
            pod["spec"]["subdomain"] = sts["spec"]["serviceName"]
        with contextlib.suppress(AlreadyExists):  # its predecessor is still terminating
            self.store.create("pods", pod)

    def _delete(self, pod: Obj) -> None:
        with contextlib.suppress(StatusError):
            self.deleter.delete_pod(*key_of(pod), by="controller")

    def _roll(self, sts: Obj, pods: dict[int, Obj], replicas: int, revision: str) -> None:
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return  # OnDelete: pods take the new template when someone deletes them
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
        for i in range(replicas - 1, partition - 1, -1):
            pod = pods.get(i)
            if pod is not None and self.revisions.outdated(sts, pod, revision):
                self._delete(pod)
                return

    def _status(self, sts: Obj, revision: str) -> None:
        pods = [p for p in self.rt.owned("pods", sts["metadata"]["uid"])
                if not p["metadata"].get("deletionTimestamp")]
        current = [p for p in pods if not self.revisions.outdated(sts, p, revision)]
        ready = sum(is_pod_ready(p) for p in pods)
        status = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "currentReplicas": len(current),
            "updatedReplicas": len(current),
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
            "availableReplicas": ready,
        }
        write_status(self.rt, "statefulsets.apps", sts, status)
