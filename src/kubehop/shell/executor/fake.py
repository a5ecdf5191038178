"""`FakeCluster`: an in-memory `kubehop.shell.executor.cluster.Cluster` that records what it
was asked.

    cluster = FakeCluster([NodeView("w1", kubelet="v1.28.9", ready=True)])
    cluster.set_node("w1", kubelet="v1.29.15")          # what a kubelet restart would do
    cluster.actions                                      # [("cordon", "w1"), ("drain", "w1")]

Drains empty `pods[node]` (or raise `drain_error`); `hang` makes an action wait until released,
for tests of stopping and abandoning.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from kubehop.core.drain.explain import DrainEvent
from kubehop.core.drain.rules import DrainError, DrainOptions
from kubehop.shell.executor.cluster import NodeView, SystemPod


class FakeCluster:
    """A scripted cluster for executor unit tests (see the module docstring)."""

    def __init__(self, nodes: Iterable[NodeView] = (), *,
                 system_pods: Iterable[SystemPod] = ()) -> None:
        self._nodes = {n.name: n for n in nodes}
        self.pods: dict[str, list[str]] = {}  # node → evictable pods
        self.system = list(system_pods)
        self.version: str | None = None  # kubeadm-config kubernetesVersion
        self.primaries: dict[str, str] = {}  # database → node of its primary
        self.apiserver_errors: list[str] = []
        self.drain_error: dict[str, str] = {}  # node → message of a DrainError
        self.hang: dict[tuple[str, str], asyncio.Event] = {}  # (action, node) → release
        self.actions: list[tuple[str, str]] = []
        self.on_action: Callable[[str, str], None] | None = None
        self._changed = asyncio.Event()

    def set_node(self, name: str, **changes: Any) -> None:
        self._nodes[name] = dataclasses.replace(self._nodes[name], **changes)
        self._changed.set()

    async def _act(self, action: str, node: str) -> None:
        self.actions.append((action, node))
        if self.on_action is not None:
            self.on_action(action, node)
        release = self.hang.get((action, node))
        if release is not None:
            await release.wait()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def node(self, name: str) -> NodeView | None:
        return self._nodes.get(name)

    async def nodes(self) -> list[NodeView]:
        return list(self._nodes.values())

    async def evictable_pods(self, node: str) -> list[str]:
        return list(self.pods.get(node, []))

    async def system_pods(self) -> list[SystemPod]:
        return list(self.system)

    async def kubernetes_version(self) -> str | None:
        return self.version

    async def primaries_on(self, node: str, databases: tuple[str, ...]) -> list[str]:
        return [d for d in databases if self.primaries.get(d) == node]

    async def set_schedulable(self, node: str, schedulable: bool) -> bool:
        await self._act("uncordon" if schedulable else "cordon", node)
        changed = self._nodes[node].schedulable != schedulable
        self.set_node(node, schedulable=schedulable)
        return changed

    async def drain(self, node: str, options: DrainOptions,
                    on_event: Callable[[DrainEvent], None] | None) -> None:
        await self._act("drain", node)
        self.set_node(node, schedulable=False)
        if node in self.drain_error:
            raise DrainError(self.drain_error[node], node=node, left_cordoned=True)
        selector = options.pod_selector
        for db, where in list(self.primaries.items()):
            if where == node and (not selector or selector.endswith("=" + db.split("/")[1])):
                self.primaries[db] = "elsewhere"
        self.pods[node] = []
        if on_event is not None:
            on_event(DrainEvent("drained", node))

    async def apiserver_problems(self) -> list[str]:
        return list(self.apiserver_errors)

    async def changed(self, timeout: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
