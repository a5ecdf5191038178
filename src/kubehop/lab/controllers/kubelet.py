"""Every node's kubelet, as far as pods go: start bound pods, finish graceful deletions.

A pod bound to a Ready node shows ContainerCreating at once and is Running and Ready
`timing.podStart` lab seconds later. A pod being deleted is removed `min(grace,
timing.podStop)` lab seconds after its deletion began. Nothing happens on a node that is not
Ready (its pods stay Pending or Terminating until it is back), except what PodGC does: pods
bound to a node that no longer exists, and deleted pods that never ran, are removed at once.
"""

from __future__ import annotations

import contextlib

from kubehop.lab.addresses import DEFAULT_POD_CIDR, FALLBACK_HOST_IP
from kubehop.lab.api.status import NotFoundStatus
from kubehop.lab.api.watches import Change
from kubehop.lab.clock import parse_rfc3339
from kubehop.lab.controllers.recorder import node_ready
from kubehop.lab.controllers.runtime import Controller, Key, Obj, Runtime, key_of
from kubehop.lab.fixtures import objects

STARTED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


def _deleting(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _needs_kubelet(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return _deleting(pod) or (bool((pod.get("spec") or {}).get("nodeName"))
                              and phase in (None, "", "Pending"))


class KubeletController(Controller):
    """Pod lifecycle on the nodes; timers keyed by pod uid so a replaced pod is never touched."""

    resources = ("pods", "nodes")

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.starting: set[str] = set()
        self.stopping: set[str] = set()
        self.next_ip: dict[str, int] = {}
        self.ready_nodes: dict[str, bool] = {}
        self.deleted_at: dict[str, float] = {}  # uid → lab time its deletion was seen to begin

    def resync(self) -> None:
        for node in self.store.iter("nodes"):
            self.ready_nodes[node["metadata"]["name"]] = node_ready(node)
        for pod in self.store.iter("pods"):
            node = (pod.get("spec") or {}).get("nodeName")
            if _needs_kubelet(pod) or (node and node not in self.ready_nodes):
                self.mark(key_of(pod))

    def on_change(self, change: Change) -> None:
        obj = change.object
        if change.resource == "nodes":
            name = obj["metadata"]["name"]
            if change.type == "DELETED":
                self.ready_nodes.pop(name, None)
            else:
                ready = node_ready(obj)
                was = self.ready_nodes.get(name)
                self.ready_nodes[name] = ready
                if ready == was:
                    return
            for pod in self.store.by_index("pods", "spec.nodeName", name):
                if change.type == "DELETED" or _needs_kubelet(pod):
                    self.mark(key_of(pod))
            return
        if change.type == "DELETED":
            self.deleted_at.pop(obj["metadata"]["uid"], None)
        elif _needs_kubelet(obj):
            if _deleting(obj) and not (change.old and _deleting(change.old)):
                self.deleted_at[obj["metadata"]["uid"]] = self.rt.clock.now()
            self.mark(key_of(obj))

    def sync(self, key: Key) -> None:
        pod = self.store.peek("pods", *key)
        if pod is None:
            return
        node_name = (pod.get("spec") or {}).get("nodeName")
        terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if node_name and node_name not in self.ready_nodes:
            self._remove(key, pod["metadata"]["uid"])  # PodGC: the node is gone
            return
        if _deleting(pod) and (not node_name or terminal):
            self._remove(key, pod["metadata"]["uid"])
            return
        if not node_name or not self.ready_nodes.get(node_name):
            return
        uid = pod["metadata"]["uid"]
        if _deleting(pod):
            if uid in self.stopping:
                return
            self.stopping.add(uid)
            self.rt.at(self._stop_due(pod), lambda: self._finish_stop(key, uid))
            return
        if (pod.get("status") or {}).get("phase") in (None, "", "Pending") and \
                uid not in self.starting:
            self.starting.add(uid)
            self._creating(key, pod)
            self.rt.after(self.rt.timing.podStart, lambda: self._finish_start(key, uid))

    # --- transitions ------------------------------------------------------------------------

    def _current(self, key: Key, uid: str) -> Obj | None:
        pod = self.store.peek("pods", *key)
        return pod if pod is not None and pod["metadata"]["uid"] == uid else None

    def _remove(self, key: Key, uid: str) -> None:
        self.starting.discard(uid)
        self.stopping.discard(uid)
        with contextlib.suppress(NotFoundStatus):
            self.store.delete("pods", *key, uid=uid)

    def _finish_stop(self, key: Key, uid: str) -> None:
        self.stopping.discard(uid)
        pod = self._current(key, uid)
        if pod is None:
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if node and not self.ready_nodes.get(node):
            return  # the kubelet is away: the pod stays Terminating until it is back
        due = self._stop_due(pod)
        if due > self.rt.clock.now() + 1e-6:  # grace shortened or lengthened meanwhile
            self.stopping.add(uid)
            self.rt.at(due, lambda: self._finish_stop(key, uid))
            return
        self._remove(key, uid)

    def _stop_due(self, pod: Obj) -> float:
        """Lab time the pod's containers have stopped: min(grace, podStop) after deletion."""
        meta = pod["metadata"]
        grace = float(meta.get("deletionGracePeriodSeconds") or 0)
        began = self.deleted_at.get(meta["uid"])
        if began is None:  # seen late: derive it from the (whole-second) timestamp
            began = self.rt.clock.lab(parse_rfc3339(meta["deletionTimestamp"]) - grace)
        return began + min(grace, self.rt.timing.podStop)

    def _host_ip(self, node_name: str) -> str:
        node = self.store.peek("nodes", "", node_name) or {}
        for a in (node.get("status") or {}).get("addresses") or ():
            if a.get("type") == "InternalIP":
                return a["address"]
        return FALLBACK_HOST_IP

    def _pod_ip(self, node_name: str, pod: Obj) -> str:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self._host_ip(node_name)
        node = self.store.peek("nodes", "", node_name) or {}
        cidr = (node.get("spec") or {}).get("podCIDR") or DEFAULT_POD_CIDR
        base = cidr.split("/")[0].rsplit(".", 1)[0]
        i = self.next_ip.get(node_name, 1) % 253 + 1
        self.next_ip[node_name] = i
        return f"{base}.{i}"

    def _creating(self, key: Key, pod: Obj) -> None:
        """What the kubelet reports as soon as it admits the pod: ContainerCreating."""
        now = self.rt.clock.timestamp()
        host_ip = self._host_ip(pod["spec"]["nodeName"])

        def update(p: Obj) -> None:
            status = p.setdefault("status", {})
            status["phase"] = "Pending"
            status["hostIP"] = host_ip
            status["hostIPs"] = [{"ip": host_ip}]
            status.setdefault("startTime", now)
            names = [c["name"] for c in p["spec"].get("containers") or ()]
            unready = {"reason": "ContainersNotReady",
                       "message": f"containers with unready status: [{' '.join(names)}]"}
            scheduled = [c for c in status.get("conditions") or ()
                         if c.get("type") == "PodScheduled"]
            status["conditions"] = [
                objects.pod_condition("PodReadyToStartContainers", False, now),
                objects.pod_condition("Initialized", True, now),
                dict(objects.pod_condition("Ready", False, now), **unready),
                dict(objects.pod_condition("ContainersReady", False, now), **unready),
                *(scheduled or [objects.pod_condition("PodScheduled", True, now)]),
            ]
            status["containerStatuses"] = [
                objects.container_status(c, ready=False, started_at=now)
                for c in p["spec"].get("containers") or ()
            ]

        self.store.mutate("pods", *key, update)

    def _finish_start(self, key: Key, uid: str) -> None:
        self.starting.discard(uid)
        pod = self._current(key, uid)
        if pod is None or _deleting(pod):
            return
        node = pod["spec"].get("nodeName")
        if (pod.get("status") or {}).get("phase") not in (None, "", "Pending"):
            return
        if not node or not self.ready_nodes.get(node):
            return  # resumes when the node is Ready again
        now = self.rt.clock.timestamp()
        ip = self._pod_ip(node, pod)

        def update(p: Obj) -> None:
            status = p.setdefault("status", {})
            status["phase"] = "Running"
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
            conditions = [c for c in status.get("conditions") or ()
                          if c.get("type") not in STARTED_CONDITIONS]
            status["conditions"] = [objects.pod_condition(t, True, now)
                                    for t in STARTED_CONDITIONS] + conditions
            status["containerStatuses"] = [
                objects.container_status(c, ready=True, started_at=now)
                for c in p["spec"].get("containers") or ()
            ]

        self.store.mutate("pods", *key, update)

    # --- fault injection --------------------------------------------------------------------

    def set_ready(self, namespace: str, name: str, ready: bool) -> None:
        """Make a running pod's readiness probe pass or fail (Ready and ContainersReady)."""
        now = self.rt.clock.timestamp()

        def update(p: Obj) -> None:
            for c in (p.get("status") or {}).get("conditions") or ():
                if c.get("type") in ("Ready", "ContainersReady") and \
                        c.get("status") != ("True" if ready else "False"):
                    c["status"] = "True" if ready else "False"
                    c["lastTransitionTime"] = now
            for cs in (p.get("status") or {}).get("containerStatuses") or ():
                cs["ready"] = ready

        self.store.mutate("pods", namespace, name, update)
