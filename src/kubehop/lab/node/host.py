"""What a command running on a simulated node can reach: `LabNode` (the node) and `Proc`
(one process: argv, stdin, stdout/stderr, privileges, working directory)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubehop.lab.api.store import Store
from kubehop.lab.clock import LabClock
from kubehop.lab.node.cluster import NodeFleet
from kubehop.lab.node.config import NodeSetup, NodeTiming, kube_version_of
from kubehop.lab.node.fs import NodeFS
from kubehop.lab.node.kubelet import KubeletService
from kubehop.lab.node.packages import PackageDB
from kubehop.model.releases import ReleaseData


class HistoryLike(Protocol):
    """The lab history (`kubehop.lab.history.History`): `record(type, t, **fields)`."""

    def record(self, type: str, t: float, **fields: Any) -> Any: ...


class Stdin(Protocol):
    async def read(self) -> str: ...


class TextStdin:
    """Standard input that is already known (a pipe, a here-string, nothing)."""

    def __init__(self, text: str = "") -> None:
        self.text = text

    async def read(self) -> str:
        text, self.text = self.text, ""
        return text


@dataclass(eq=False)
class LabNode:
    """One simulated node and the lab around it."""

    setup: NodeSetup
    fs: NodeFS
    db: PackageDB
    store: Store
    history: HistoryLike | None
    clock: LabClock
    timing: NodeTiming
    data: ReleaseData
    cluster: NodeFleet[LabNode]
    user: str
    kubelet: KubeletService = field(init=False)
    dpkg_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The commands this node knows, by name (`kubehop.lab.node.tools.TOOLS`, handed in by the
    # node agents so the tools that run commands themselves need not import the registry).
    tools: Mapping[str, Tool] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.setup.name

    def record(self, type: str, **fields: Any) -> None:
        if self.history is not None:
            self.history.record(type, self.clock.now(), **fields)

    def component(self, component: str, version: str | None, running: bool = True) -> None:
        """Record a `component` history event for this node."""
        self.record("component", node=self.name, component=component, version=version,
                    running=running)

    def package_changed(self, package: str) -> None:
        """After dpkg/rpm installed or removed `package`: record the client tools' versions (a
        kubelet package changes nothing until the service restarts)."""
        if package in ("kubeadm", "kubectl"):
            self.component(package, kube_version_of(self.db.version(package)), running=True)

    async def sleep(self, lab_seconds: float) -> None:
        """Wait `lab_seconds` of lab time (on a virtual clock: until a test advances it)."""
        await self.clock.sleep(lab_seconds)


@dataclass(eq=False)
class Proc:
    """One process: arguments, streams, whether it runs as root, its working directory."""

    host: LabNode
    argv: list[str]
    stdin: Stdin
    write_out: Callable[[str], None]
    write_err: Callable[[str], None]
    root: bool
    cwd: str = "/"

    def out(self, text: str) -> None:
        self.write_out(text)

    def err(self, text: str) -> None:
        self.write_err(text)

    def path(self, p: str) -> str:
        return self.host.fs.normalize(p, self.cwd)

    async def read_stdin(self) -> str:
        return await self.stdin.read()


Tool = Callable[[Proc], Awaitable[int]]
