"""The cluster as the node agents see it: every node, which apiservers answer, background work.

`NodeFleet` is what a node-side command uses to reach beyond its own node (kubeadm listing
control-plane nodes, asking an apiserver for `/version`), and what the lab's API server consults
through `NodeAgents` (`apiserver_version`, `apiserver_available`, `on_apiserver_change`).

It also holds the scenario's injected faults: `faults` has a (kind, node) pair per fault (what
`node-never-ready` checks), `fault_options` each one's extra fields (`package` of
`package-install-fails`, `component` of `static-pod-never-ready`); `inject` adds one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Generic, Protocol, TypeVar

from kubehop.lab.addresses import DEFAULT_NODE_IP
from kubehop.lab.node.config import NodeSetup
from kubehop.lab.node.kubelet import KubeletService
from kubehop.model.versions import image_kube_version


class FleetNode(Protocol):
    """What the fleet reads of each of its nodes (`kubehop.lab.node.host.LabNode`)."""

    setup: NodeSetup
    kubelet: KubeletService

    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=FleetNode)


class NodeFleet(Generic[N]):
    """All simulated nodes, their apiserver endpoints, and the tasks that run on lab time."""

    def __init__(self, *, load_balancer: bool = False) -> None:
        self.hosts: dict[str, N] = {}
        self.load_balancer = load_balancer
        self.listeners: list[Callable[[str], None]] = []
        # Injected faults of the scenario, as (kind, node) pairs (e.g. "node-never-ready"), and
        # the options of each (a kind may be injected more than once on a node).
        self.faults: set[tuple[str, str]] = set()
        self.fault_options: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._forever: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, forever: bool = False
              ) -> asyncio.Task[Any]:
        """Run `coro` in the background; `stop()` cancels what is still running. A `forever`
        task (a container that keeps crashing) is not waited for by `idle()`."""
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self._forever if forever else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    # --- faults ------------------------------------------------------------------------------

    def inject(self, kind: str, node: str, options: Mapping[str, str] | None = None) -> None:
        """Inject a fault of `kind` on `node` with its scenario options."""
        self.faults.add((kind, node))
        self.fault_options.setdefault((kind, node), []).append(dict(options or {}))

    def _fault_matches(self, kind: str, node: str, key: str, value: str) -> bool:
        """Whether a `kind` fault on `node` applies to `value` of option `key` (an empty or
        missing option, or a fault injected without options, applies to every value)."""
        if (kind, node) not in self.faults:
            return False
        return any(o.get(key, "") in ("", value) for o in self.fault_options.get((kind, node))
                   or [{}])

    def package_install_fails(self, node: str, package: str) -> bool:
        """Fault `package-install-fails`: downloading `package` on `node` fails."""
        return self._fault_matches("package-install-fails", node, "package", package)

    def static_pod_never_ready(self, node: str, component: str) -> bool:
        """Fault `static-pod-never-ready`: `component`'s static pod on `node`, once its manifest
        changed, keeps crashing."""
        return self._fault_matches("static-pod-never-ready", node, "component", component)

    async def idle(self) -> None:
        """Until no restart is pending (tests and benchmarks wait for the lab to settle)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._forever]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def control_planes(self) -> list[N]:
        return [h for _, h in sorted(self.hosts.items()) if h.setup.control_plane]

    def apiserver_image(self, node: str) -> str | None:
        host = self.hosts.get(node)
        pod = host.kubelet.static.running.get("kube-apiserver") if host else None
        return pod.image if pod else None

    def apiserver_version(self, node: str) -> str | None:
        """What `/version` on `node`'s apiserver answers (`v1.28.9`), or None without one."""
        image = self.apiserver_image(node)
        version = image_kube_version(image) if image else None
        return version.full if version else None

    def apiserver_available(self, node: str) -> bool:
        """Whether `node`'s apiserver endpoint answers now (False while its static pod restarts)."""
        host = self.hosts.get(node)
        pod = host.kubelet.static.running.get("kube-apiserver") if host else None
        return bool(pod and pod.running and pod.image)

    def answering(self, node: str) -> str | None:
        """The node whose apiserver a kubeconfig on `node` reaches: its own on a control-plane
        node (any through a load balancer), otherwise the first one that answers."""
        host = self.hosts.get(node)
        if host is not None and host.setup.control_plane and not self.load_balancer:
            return node if self.apiserver_available(node) else None
        return next((h.name for h in self.control_planes() if self.apiserver_available(h.name)),
                    None)

    def endpoint_ip(self, node: str) -> str:
        host = self.hosts.get(node)
        if host is not None and host.setup.control_plane:
            return host.setup.internal_ip
        cps = self.control_planes()
        return cps[0].setup.internal_ip if cps else DEFAULT_NODE_IP

    def notify(self, node: str) -> None:
        for listener in list(self.listeners):
            listener(node)
