"""Progress visible from the cluster: annotations and Events on the Nodes kubehop works on.

While a run works on a node, the Node carries

    kubehop.dev/phase    the step kind running there (`drain`, `kubelet-restart`, …; `halted`)
    kubehop.dev/target   the version the step works towards (`v1.30.14`)
    kubehop.dev/run      the run id (`kubehop status --run ID`)

as annotations and, because `kubectl get nodes -L KEY` shows labels only, as labels with the
same keys and values (valid label values: step kinds, versions, run ids), so `kubectl get
nodes -L kubehop.dev/phase,kubehop.dev/target` shows what kubehop does. Drains, kubelet
restarts and halts also become Events on the Node (`kubectl describe node`): namespace
`default`, `involvedObject.uid` = the node's name, as the kubelet's node reference has it
(kubernetes/kubernetes pkg/kubelet/kubelet.go `nodeRef`), because kubectl's NodeDescriber
searches events with `ref.UID = types.UID(ref.Name)` (kubernetes/kubectl
pkg/describe/describe.go).

When the run finishes, the labels and annotations are removed and the Events deleted; after a
halt they stay (they say where it stopped). API errors are warnings: progress display never
stops a run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubehop.shell.executor.background import InOrder
from kubehop.shell.executor.events import ProgressEvent
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube.errors import ApiError, NotFound
from kubehop.shell.kube.requests import Request

PHASE = "kubehop.dev/phase"
TARGET = "kubehop.dev/target"
RUN = "kubehop.dev/run"
EVENT_NAMESPACE = "default"
_EVENTS = {"drain": ("Normal", "KubehopDrain", "kubehop drains the node for its upgrade to {hop}"),
           "kubelet-restart": ("Normal", "KubehopKubeletRestart",
                               "kubehop restarts the kubelet at {hop}")}
CLOSE_TIMEOUT = 30.0


class ClusterProgress:
    """Receives executor events; writes annotations and Events in order, from one task."""

    def __init__(self, client: Any, run_id: str, *, warn: Callable[[str], None],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self.run_id = run_id
        self.warn = warn
        self.now = now
        self.annotated: dict[str, tuple[str, str]] = {}  # node → (phase, target) written
        self.events: list[str] = []  # names of the Events written (namespace default)
        self._out: InOrder[tuple[str, tuple[Any, ...]]] = InOrder(
            self._do, timeout=CLOSE_TIMEOUT, warn=warn,
            gave_up="progress annotations and Events not all written: gave up after "
                    f"{CLOSE_TIMEOUT:g} s")
        self._seq = 0

    def __call__(self, e: ProgressEvent) -> None:
        if e.kind == "step-started" and e.node and e.step_kind:
            self._put("annotate", (e.node, e.step_kind, e.hop or ""))
            if e.step_kind in _EVENTS:
                kind, reason, text = _EVENTS[e.step_kind]
                self._put("event", (e.node, kind, reason, text.format(hop=e.hop)))
        elif e.kind == "step-failed" and e.node:
            self._put("annotate", (e.node, "halted", e.hop or ""))
            self._put("event", (e.node, "Warning", "KubehopHalted",
                                f"kubehop halted at step {e.step}: {e.message}"[:1000]))
        elif e.kind == "run-finished":
            self._put("cleanup", ())

    def _put(self, what: str, args: tuple[Any, ...]) -> None:
        self._out.put((what, args))

    async def _do(self, item: tuple[str, tuple[Any, ...]]) -> None:
        what, args = item
        try:
            await getattr(self, f"_{what}")(*args)
        except ApiError as e:
            self.warn(f"cannot show progress on the cluster ({what}): {e}"[:300])

    async def _annotate(self, node: str, phase: str, target: str) -> None:
        if self.annotated.get(node) == (phase, target):
            return
        values = {PHASE: phase, TARGET: target, RUN: self.run_id}
        body = {"metadata": {"labels": values, "annotations": values}}
        await self.client.send(rq.patch_node(node, body))
        self.annotated[node] = (phase, target)

    async def _event(self, node: str, kind: str, reason: str, message: str) -> None:
        self._seq += 1
        now = self.now()
        name = f"{node}.kubehop.{int(now.timestamp() * 1e9):x}.{self._seq}"
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": EVENT_NAMESPACE,
                             "labels": {RUN: self.run_id}},
                "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": node,
                                   "uid": node},
                "reason": reason, "message": message, "type": kind,
                "source": {"component": "kubehop"}, "reportingComponent": "kubehop",
                "reportingInstance": "kubehop", "firstTimestamp": stamp,
                "lastTimestamp": stamp, "count": 1}
        await self.client.send(rq.create_event(EVENT_NAMESPACE, body))
        self.events.append(name)

    async def _cleanup(self) -> None:
        """Every Node and Event marked with this run (an earlier, halted process of the run
        marked some too): found by the `kubehop.dev/run` label."""
        selector = f"{RUN}={self.run_id}"
        nodes = await self.client.get_json(rq.list_nodes(selector))
        gone = {PHASE: None, TARGET: None, RUN: None}
        for item in nodes.get("items") or ():
            name = item["metadata"]["name"]
            await self._ignore_missing(
                rq.patch_node(name, {"metadata": {"labels": gone, "annotations": gone}}))
        self.annotated.clear()
        events = await self.client.get_json(rq.list_events(EVENT_NAMESPACE, selector))
        for item in events.get("items") or ():
            name = item["metadata"]["name"]
            await self._ignore_missing(rq.delete_event(EVENT_NAMESPACE, name))
        self.events.clear()

    async def _ignore_missing(self, request: Request) -> None:
        with contextlib.suppress(NotFound):
            await self.client.send(request)

    async def close(self) -> None:
        """Finish what is queued (at most CLOSE_TIMEOUT seconds)."""
        await self._out.close()
