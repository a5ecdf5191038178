"""The lab's kube-scheduler: binds Pending pods to nodes, or leaves them Pending with a reason.

Pods that fit nowhere get `PodScheduled=False` (reason Unschedulable, the FailedScheduling
message) and a Warning Event, and are retried after a cluster change that could make room (a
node added, uncordoned, Ready or resized; a bound pod removed), at most once per
`timing.schedulerBackoff` lab seconds.
"""

from __future__ import annotations

import bisect
from typing import Any

from kubehop.lab.api.status import NotFoundStatus
from kubehop.lab.api.watches import Change
from kubehop.lab.controllers.placement import (
    NodeInfo,
    anti_affinity_penalty,
    anti_affinity_terms,
    failure_message,
    feasible_nodes_to_find,
    filter_node,
    gate_reason,
    least_allocated,
    node_affinity_free,
    pinned_node,
    requests,
    usage_of,
)
from kubehop.lab.controllers.runtime import Controller, Key, Obj, Runtime, key_of

SCHEDULER = "default-scheduler"


def _schedulable_facts(node: Obj) -> tuple[Any, ...]:
    """What about a node can change whether pods fit on it."""
    status = node.get("status") or {}
    ready = [c.get("status") for c in status.get("conditions") or () if c.get("type") == "Ready"]
    return (
        (node.get("spec") or {}).get("unschedulable"),
        repr((node.get("spec") or {}).get("taints")),
        repr(status.get("allocatable")),
        repr(node["metadata"].get("labels")),
        ready,
    )


def _wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (
        not spec.get("nodeName")
        and (spec.get("schedulerName") or SCHEDULER) == SCHEDULER
        and not pod["metadata"].get("deletionTimestamp")
        and (pod.get("status") or {}).get("phase") in (None, "", "Pending")
    )


def _counts(pod: Obj | None) -> str | None:
    """The node a pod takes room on (bound, not terminal), or None."""
    if pod is None:
        return None
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    return (pod.get("spec") or {}).get("nodeName") or None


class Scheduler(Controller):
    """Queue of pods to place; node usage kept current from pod events."""

    resources = ("pods", "nodes")

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.nodes: dict[str, NodeInfo] = {}
        self.names: list[str] = []  # sorted node names
        self._infos: list[NodeInfo] | None = None  # self.nodes in `names` order (built lazily)
        self.usage: dict[Key, tuple[str, tuple[int, int, int, int]]] = {}
        self.unschedulable: dict[Key, None] = {}
        self.next_start = 0
        self._retry_pending = False
        self._room_changed = False

    # --- cache ----------------------------------------------------------------------------

    def resync(self) -> None:
        for node in self.store.iter("nodes"):
            self._node_added(node)
        for pod in self.store.iter("pods"):
            self._account(None, pod)
            if _wants_scheduling(pod):
                self.mark(key_of(pod))

    def _node_added(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name, node)
            bisect.insort(self.names, name)
            self._infos = None
        info.refresh(node)

    def _account(self, old: Obj | None, new: Obj | None) -> None:
        key = key_of(new or old)  # type: ignore[arg-type]
        before = self.usage.get(key)
        where = _counts(new)
        if before is not None and (where is None or before[0] != where):
            info = self.nodes.get(before[0])
            if info is not None:
                info.add(before[1], -1)
            del self.usage[key]
            self._room_changed = True
            before = None
        if where is not None and before is None:
            usage = usage_of(new)  # type: ignore[arg-type]
            self.usage[key] = (where, usage)
            if (info := self.nodes.get(where)) is not None:
                info.add(usage)

    def on_change(self, change: Change) -> None:
        obj = change.object
        if change.resource == "nodes":
            name = obj["metadata"]["name"]
            if change.type == "DELETED":
                if self.nodes.pop(name, None) is not None:
                    self.names.remove(name)
                    self._infos = None
            elif change.old is None or _schedulable_facts(change.old) != _schedulable_facts(obj):
                self._node_added(obj)
                self._room_changed = True
            else:
                self.nodes[name].node = obj
            if self._room_changed:
                self._schedule_retry()
            return
        self._account(change.old, None if change.type == "DELETED" else obj)
        key = key_of(obj)
        if change.type != "DELETED" and _wants_scheduling(obj):
            if key not in self.unschedulable:
                self.mark(key)
        else:
            self.unschedulable.pop(key, None)
        if self._room_changed:
            self._schedule_retry()

    def _schedule_retry(self) -> None:
        self._room_changed = False
        if self.unschedulable and not self._retry_pending:
            self._retry_pending = True
            self.rt.after(self.rt.timing.schedulerBackoff, self._retry)

    def _retry(self) -> None:
        self._retry_pending = False
        for key in list(self.unschedulable):
            self.mark(key)
        self.unschedulable.clear()

    # --- scheduling one pod ---------------------------------------------------------------

    def sync(self, key: Key) -> None:
        pod = self.store.peek("pods", *key)
        if pod is None or not _wants_scheduling(pod):
            return
        node, message = self.place(pod)
        if node is not None:
            self._bind(pod, node)
        else:
            self.unschedulable[key] = None
            self._unschedulable(pod, message)

    def place(self, pod: Obj) -> tuple[str | None, str]:
        """The node to bind to, or None and the FailedScheduling message.

        Nodes are visited round-robin from where the previous pod stopped, until
        `feasible_nodes_to_find` of them fit (percentageOfNodesToScore); the best score wins,
        ties to the first name. A pod without node affinity, nodeSelector or pod anti-affinity
        on an open node (not cordoned, no NoSchedule/NoExecute taint: `NodeInfo.blocked`) only
        has the resource filter left, checked inline (its outcome and score memoized on the
        node until the node's usage changes: `NodeInfo.memo_key`); every other node goes
        through `filter_node`, which also words the reasons of a node that does not fit.
        Blocked nodes with equal taints pass or fail a pod alike: checked once per pod.
        """
        req = requests(pod)
        nz = requests(pod, non_zero=True)
        required, preferred = anti_affinity_terms(pod)
        pinned = pinned_node(pod)
        total = len(self.names)
        if pinned is not None:
            order = [self.nodes[pinned]] if pinned in self.nodes else []
            want, start = 1, 0
        else:
            if self._infos is None:
                self._infos = [self.nodes[name] for name in self.names]
            order, want, start = self._infos, feasible_nodes_to_find(total), self.next_start
        simple = not required and not preferred and node_affinity_free(pod)
        req_cpu, req_mem = req
        nz_cpu, nz_mem = nz
        memo_key = (req_cpu, req_mem, nz_cpu, nz_mem)
        best_score, best_name = -1, ""  # scores are >= 0 on the simple path
        found = 0
        best_general: tuple[int, str] | None = None
        gates: dict[tuple[Any, ...], str | None] = {}  # NodeInfo.gate → gate_reason
        reasons: dict[str, int] = {}
        resolvable: list[bool] = []
        n = len(order)
        processed = 0
        start = start % n if n else 0
        for info in order[start:] + order[:start] if start else order:
            processed += 1
            if info.blocked:
                gate = info.gate
                if gate in gates:
                    why = gates[gate]
                else:
                    why = gates[gate] = gate_reason(pod, info)
                if why is not None:  # what filter_node would answer, worded alike
                    resolvable.append(False)
                    reasons[why] = reasons.get(why, 0) + 1
                    continue
            elif simple:
                if info.memo_key == memo_key:
                    score = info.memo_score
                else:
                    score = -1
                    if info.count < info.pods and (
                        req_cpu <= 0 or req_cpu <= info.cpu - info.used_cpu
                    ) and (req_mem <= 0 or req_mem <= info.memory - info.used_memory):
                        # NodeResourcesFit LeastAllocated (`least_allocated`, inlined)
                        score = 0
                        cap = info.cpu
                        used = info.score_cpu + nz_cpu
                        if cap and used <= cap:
                            score += (cap - used) * 100 // cap
                        cap = info.memory
                        used = info.score_memory + nz_mem
                        if cap and used <= cap:
                            score += (cap - used) * 100 // cap
                        score //= 2
                    info.memo_key, info.memo_score = memo_key, score
                if score >= 0:
                    if score > best_score or (score == best_score and info.name < best_name):
                        best_score, best_name = score, info.name
                    found += 1
                    if found >= want:
                        break
                    continue
                # does not fit: filter_node words the reasons
            name = info.name
            on_node = self._pods_on(name) if required or preferred else []
            failed, can = filter_node(pod, req, info, required, on_node)
            if failed:
                resolvable.append(can)
                for r in failed:
                    reasons[r] = reasons.get(r, 0) + 1
                continue
            # NodeResourcesFit (weight 1) + InterPodAffinity (weight 2, normalized 0-100).
            score = least_allocated(info, nz)
            if preferred:
                score -= 2 * anti_affinity_penalty(pod, preferred, on_node)
            key = (-score, name)
            if best_general is None or key < best_general:
                best_general = key
            found += 1
            if found >= want:
                break
        if pinned is None and n:
            self.next_start = (start + processed) % n
        if best_name and (best_general is None or (-best_score, best_name) < best_general):
            return best_name, ""
        if best_general is not None:
            return best_general[1], ""
        if pinned is not None:
            other = total - len(order)
            if other:
                why = "node(s) didn't match Pod's node affinity/selector"
                reasons[why] = reasons.get(why, 0) + other
                resolvable += [False] * other
        return None, failure_message(pod, total, reasons, resolvable)

    def _pods_on(self, node: str) -> list[Obj]:
        return self.store.by_index("pods", "spec.nodeName", node)

    def _bind(self, pod: Obj, node: str) -> None:
        now = self.rt.clock.timestamp()

        def bind(p: Obj) -> None:
            p["spec"]["nodeName"] = node
            conditions = [c for c in p.setdefault("status", {}).get("conditions") or ()
                          if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": now})
            p["status"]["conditions"] = conditions

        try:
            self.store.mutate("pods", *key_of(pod), bind)
        except NotFoundStatus:
            return

    def _unschedulable(self, pod: Obj, message: str) -> None:
        now = self.rt.clock.timestamp()

        def mark(p: Obj) -> None:
            conditions = p.setdefault("status", {}).setdefault("conditions", [])
            for c in conditions:
                if c.get("type") == "PodScheduled":
                    if c.get("message") != message or c.get("status") != "False":
                        if c.get("status") != "False":
                            c["lastTransitionTime"] = now
                        c.update(status="False", reason="Unschedulable", message=message)
                    return
            conditions.append({"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                               "lastTransitionTime": now, "reason": "Unschedulable",
                               "message": message})

        try:
            self.store.mutate("pods", *key_of(pod), mark)
        except NotFoundStatus:
            return
        self._event(pod, message, now)

    def _event(self, pod: Obj, message: str, now: str) -> None:
        """A FailedScheduling Warning event, counted up when it repeats."""
        meta = pod["metadata"]
        name = f"{meta['name']}.failedscheduling"
        existing = self.store.peek("events", meta["namespace"], name)
        if existing is not None:
            def bump(e: Obj) -> None:
                e["count"] = e.get("count", 1) + 1
                e["lastTimestamp"] = now
                e["message"] = message
            self.store.mutate("events", meta["namespace"], name, bump)
            return
        self.store.create("events", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"], "creationTimestamp": now},
            "involvedObject": {"kind": "Pod", "namespace": meta["namespace"],
                               "name": meta["name"], "uid": meta.get("uid"),
                               "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion")},
            "reason": "FailedScheduling", "message": message, "type": "Warning",
            "source": {"component": SCHEDULER}, "reportingComponent": SCHEDULER,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        })
