"""The node lifecycle controller: condition taints, pods marked NotReady, taint-based eviction.

As kube-controller-manager's nodelifecycle controller does: a cordoned node gets the
`node.kubernetes.io/unschedulable:NoSchedule` taint; a node whose Ready condition is False gets
`node.kubernetes.io/not-ready` (NoSchedule and NoExecute), Unknown gets
`node.kubernetes.io/unreachable`. When a node stops being Ready its pods' Ready condition is set
False (MarkPodsNotReady); the kubelet reports them Ready again when it is back. Pods that do not
tolerate a NoExecute taint are deleted, at once or after their `tolerationSeconds`.
"""

from __future__ import annotations

from kubehop.lab.api.status import StatusError
from kubehop.lab.api.watches import Change
from kubehop.lab.controllers import scheduler as pure
from kubehop.lab.controllers.evictions import PodDeleter
from kubehop.lab.controllers.runtime import Controller, Obj, Runtime, key_of

UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
MANAGED = frozenset({UNSCHEDULABLE, NOT_READY, UNREACHABLE})


def ready_status(node: Obj) -> str:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return str(c.get("status") or "Unknown")
    return "Unknown"


def wanted_taints(node: Obj) -> set[tuple[str, str]]:
    """The (key, effect) condition taints the controller keeps on this node."""
    wanted: set[tuple[str, str]] = set()
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.add((UNSCHEDULABLE, "NoSchedule"))
    status = ready_status(node)
    if status != "True":
        key = NOT_READY if status == "False" else UNREACHABLE
        wanted |= {(key, "NoSchedule"), (key, "NoExecute")}
    return wanted


def toleration_seconds(pod: Obj, taints: list[Obj]) -> float | None:
    """How long a pod may stay on a node with these NoExecute taints: 0 (not tolerated), the
    shortest tolerationSeconds of the tolerations used, or None (forever)."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    shortest: float | None = None
    for taint in taints:
        used = [t for t in tolerations if pure._tolerates([t], taint)]
        if not used:
            return 0.0
        for t in used:
            if t.get("tolerationSeconds") is not None:
                s = max(0.0, float(t["tolerationSeconds"]))
                shortest = s if shortest is None else min(shortest, s)
    return shortest


class NodeLifecycle(Controller):
    """Reacts to node changes by name."""

    resources = ("nodes",)

    def __init__(self, rt: Runtime, deleter: PodDeleter) -> None:
        super().__init__(rt)
        self.deleter = deleter
        self.ready: dict[str, str] = {}
        self.marked: dict[str, set[str]] = {}  # node → uids of pods we marked NotReady
        self.evicting: dict[str, float] = {}  # pod uid → lab time of its taint eviction

    def resync(self) -> None:
        for node in self.store.iter("nodes"):
            self.mark(node["metadata"]["name"])

    def on_change(self, change: Change) -> None:
        name = change.object["metadata"]["name"]
        if change.type == "DELETED":
            self.ready.pop(name, None)
            self.marked.pop(name, None)
            return
        self.mark(name)

    def sync(self, name: str) -> None:
        node = self.store.peek("nodes", "", name)
        if node is None:
            return
        node = self._taint(node)
        status = ready_status(node)
        before = self.ready.get(name)
        self.ready[name] = status
        if status != "True" and before != status:
            self._mark_not_ready(name)
        elif status == "True" and before not in (None, "True"):
            self._restore(name)
        self._no_execute(node)

    def _taint(self, node: Obj) -> Obj:
        taints = (node.get("spec") or {}).get("taints") or []
        have = {(t.get("key"), t.get("effect")) for t in taints if t.get("key") in MANAGED}
        wanted = wanted_taints(node)
        if have == wanted:
            return node
        now = self.rt.clock.timestamp()
        kept = [t for t in taints if t.get("key") not in MANAGED
                or (t.get("key"), t.get("effect")) in wanted]
        for key, effect in sorted(wanted - have):
            taint: Obj = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = now
            kept.append(taint)

        def update(n: Obj) -> None:
            if kept:
                n.setdefault("spec", {})["taints"] = kept
            else:
                n.setdefault("spec", {}).pop("taints", None)

        return self.store.mutate("nodes", "", node["metadata"]["name"], update)

    def _mark_not_ready(self, name: str) -> None:
        now = self.rt.clock.timestamp()
        marked = self.marked.setdefault(name, set())
        for pod in self.store.by_index("pods", "spec.nodeName", name):
            for c in (pod.get("status") or {}).get("conditions") or ():
                if c.get("type") == "Ready" and c.get("status") == "True":
                    marked.add(pod["metadata"]["uid"])
                    self._set_ready(pod, False, now)

    def _restore(self, name: str) -> None:
        now = self.rt.clock.timestamp()
        uids = self.marked.pop(name, set())
        for pod in self.store.by_index("pods", "spec.nodeName", name):
            if pod["metadata"]["uid"] in uids and not pod["metadata"].get("deletionTimestamp") \
                    and (pod.get("status") or {}).get("phase") == "Running":
                self._set_ready(pod, True, now)

    def _set_ready(self, pod: Obj, ready: bool, now: str) -> None:
        value = "True" if ready else "False"

        def update(p: Obj) -> None:
            for c in (p.get("status") or {}).get("conditions") or ():
                if c.get("type") == "Ready" and c.get("status") != value:
                    c["status"] = value
                    c["lastTransitionTime"] = now

        self.store.mutate("pods", *key_of(pod), update)

    def _no_execute(self, node: Obj) -> None:
        taints = [t for t in (node.get("spec") or {}).get("taints") or ()
                  if t.get("effect") == "NoExecute"]
        if not taints:
            return
        name = node["metadata"]["name"]
        for pod in self.store.by_index("pods", "spec.nodeName", name):
            uid = pod["metadata"]["uid"]
            if uid in self.evicting or pod["metadata"].get("deletionTimestamp"):
                continue
            seconds = toleration_seconds(pod, taints)
            if seconds is None:
                continue
            self.evicting[uid] = self.rt.clock.now() + seconds
            key = key_of(pod)
            self.rt.after(seconds, lambda key=key, uid=uid: self._evict(key, uid))

    def _evict(self, key: tuple[str, str], uid: str) -> None:
        """Taint-based eviction (a plain delete by the controller) if still not tolerated."""
        self.evicting.pop(uid, None)
        pod = self.store.peek("pods", *key)
        if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
            return
        node = self.store.peek("nodes", "", pod["spec"].get("nodeName", ""))
        taints = [t for t in ((node or {}).get("spec") or {}).get("taints") or ()
                  if t.get("effect") == "NoExecute"]
        if not taints or toleration_seconds(pod, taints) is None:
            return
        try:
            self.deleter.delete_pod(*key, by="controller", uid=uid)
        except StatusError:
            return
