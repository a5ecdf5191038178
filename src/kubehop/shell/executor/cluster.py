"""The executor's view of the cluster API: the one seam between steps and Kubernetes.

`Cluster` is what the executor reads and changes; `KubeCluster` implements it over a
`KubeClient` (nodes and kube-system pods from list+watch caches, everything else read when
asked); `kubehop.shell.executor.fake.FakeCluster` is the in-memory fake for unit tests.

Apiservers are judged from where the operator sits: each address the `kubernetes` Service
Endpoints and EndpointSlices list (`ClusterReader.apiserver_endpoints`) is asked for `/readyz`;
one that refuses or times out (an advertise address
behind a load balancer, bastion or VPN) is judged the other way, by its kube-apiserver mirror
pod's Ready condition plus `/readyz` through the kubeconfig's server, and dialled again only
every `REDIAL` seconds. An address that answered earlier in the run and now refuses is an
apiserver restarting: not ready, until it has refused for `REDIAL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Protocol
from urllib.parse import urlsplit

from kubehop.core.drain.explain import DrainEvent
from kubehop.core.drain.rules import DrainOptions, drain_evicts
from kubehop.shell.drain.node import Drainer
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube import wire
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.errors import ApiError, NotFound, Unreachable
from kubehop.shell.kube.informer import Informer
from kubehop.shell.kube.reader import Reader, as_reader

READYZ_TIMEOUT = 5.0
REDIAL = 30.0  # seconds before an address that refused or timed out is dialled again
# kubeadm records each apiserver's advertise address on its mirror pod
# (kubernetes/kubernetes cmd/kubeadm/app/constants/constants.go KubeAPIServerAdvertiseAddress…).
ADVERTISE = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"


@dataclass(frozen=True, slots=True)
class NodeView:
    """What the executor needs to know about a node."""

    name: str
    kubelet: str | None = None
    ready: bool = False
    schedulable: bool = True
    os_image: str = ""
    internal_ip: str | None = None
    ready_message: str = ""  # the Ready condition's reason/message when not Ready


@dataclass(frozen=True, slots=True)
class SystemPod:
    """A kube-system pod: control-plane mirror pods and add-ons."""

    name: str
    node: str | None
    component: str | None  # the `component` label (mirror pods: kube-apiserver, ...)
    image: str
    ready: bool
    deleting: bool
    phase: str
    owner: str | None = None  # the controller's kind (DaemonSet, ReplicaSet, Node, ...)
    advertise: str | None = None  # kube-apiserver mirror pods: the advertised `host:port`

    @property
    def tag(self) -> str | None:
        tail = self.image.rsplit("/", 1)[-1]
        return tail.split(":", 1)[1].split("@", 1)[0] if ":" in tail else None


class Cluster(Protocol):
    """The cluster API as the executor uses it."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def node(self, name: str) -> NodeView | None: ...
    async def nodes(self) -> list[NodeView]: ...
    async def evictable_pods(self, node: str) -> list[str]: ...
    async def system_pods(self) -> list[SystemPod]: ...
    async def kubernetes_version(self) -> str | None: ...
    async def primaries_on(self, node: str, databases: tuple[str, ...]) -> list[str]: ...
    async def set_schedulable(self, node: str, schedulable: bool) -> bool: ...
    async def drain(self, node: str, options: DrainOptions,
                    on_event: Callable[[DrainEvent], None] | None) -> None: ...
    async def apiserver_problems(self) -> list[str]: ...
    async def changed(self, timeout: float) -> None: ...


# --- decoding --------------------------------------------------------------------------------

def node_view(n: wire.NodeWire) -> NodeView:
    ready = next((c for c in n.status.conditions if c.type == "Ready"), None)
    ip = next((a.address for a in n.status.addresses if a.type == "InternalIP"), None)
    message = "" if ready is None else f"{ready.reason}: {ready.message}".strip(": ")
    return NodeView(name=n.metadata.name, kubelet=n.status.nodeInfo.kubeletVersion or None,
                    ready=ready is not None and ready.status == "True",
                    schedulable=not n.spec.unschedulable, os_image=n.status.nodeInfo.osImage,
                    internal_ip=ip, ready_message=message if ready is None or
                    ready.status != "True" else "")


def system_pod(p: wire.PodWire) -> SystemPod:
    labels = wire.string_map.decode(bytes(p.metadata.labels))
    annotations = wire.string_map.decode(bytes(p.metadata.annotations))
    containers = wire.containers.decode(bytes(p.spec.containers))
    return SystemPod(name=p.metadata.name, node=p.spec.nodeName,
                     component=labels.get("component"),
                     image=containers[0].image if containers else "",
                     ready=wire.is_true(p.status.conditions),
                     deleting=p.metadata.deletionTimestamp is not None,
                     phase=p.status.phase,
                     owner=next((o.kind for o in p.metadata.ownerReferences if o.controller),
                                None),
                     advertise=annotations.get(ADVERTISE))


def _node_cache(reader: Reader) -> Informer[wire.NodeWire, NodeView]:
    """A list+watch cache of the nodes."""
    return Informer(reader, rq.list_nodes(), wire.NodeWire, node_view, attrgetter("name"))


def _system_pod_cache(reader: Reader) -> Informer[wire.PodWire, SystemPod]:
    """A list+watch cache of the kube-system pods."""
    return Informer(reader, rq.list_pods(rq.KUBE_SYSTEM), wire.PodWire, system_pod,
                    attrgetter("name"))


class KubeCluster:
    """`Cluster` over the Kubernetes API (see the module docstring)."""

    def __init__(self, client: KubeClient | Reader, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.reader = as_reader(client)
        self._nodes = _node_cache(self.reader)
        self._pods = _system_pod_cache(self.reader)
        self._direct: dict[str, Reader] = {}
        self._unreachable: dict[str, tuple[float, float, str]] = {}  # → (since, dialled, why)
        self._answered: set[str] = set()  # endpoints that answered at least once
        self._monotonic = monotonic

    async def start(self) -> None:
        await self._nodes.start()
        await self._pods.start()

    async def close(self) -> None:
        await self._nodes.stop()
        await self._pods.stop()
        for direct in self._direct.values():
            await direct.close()
        self._direct.clear()

    async def node(self, name: str) -> NodeView | None:
        return self._nodes.items.get(name)

    async def nodes(self) -> list[NodeView]:
        return list(self._nodes.items.values())

    async def system_pods(self) -> list[SystemPod]:
        return list(self._pods.items.values())

    async def changed(self, timeout: float) -> None:
        """Return when the node or kube-system pod caches change, or after `timeout`."""
        marks = (self._nodes.changes, self._pods.changes)

        def moved() -> bool:
            return (self._nodes.changes, self._pods.changes) != marks

        waits = [asyncio.ensure_future(c.wait_for(moved, timeout))
                 for c in (self._nodes, self._pods)]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waits, return_exceptions=True)

    async def evictable_pods(self, node: str) -> list[str]:
        """Pods a drain evicts (kubehop.core.drain.rules.drain_evicts: terminating ones count, they
        are still on the node)."""
        pods = await self.reader.pods(node=node)
        return sorted(p.key for p in pods if drain_evicts(
            daemonset=p.daemonset, mirror=p.mirror, phase=p.phase))

    async def kubernetes_version(self) -> str | None:
        return await self.reader.kubeadm_kubernetes_version()

    async def primaries_on(self, node: str, databases: tuple[str, ...]) -> list[str]:
        """The CloudNativePG clusters (`ns/name`) whose current or target primary runs on
        `node`."""
        out = []
        for db in databases:
            ns, _, name = db.partition("/")
            try:
                status = (await self.reader.cnpg_cluster(ns, name)).status
            except NotFound:
                continue  # gone: nothing to switch over
            for pod in {status.currentPrimary, status.targetPrimary} - {None, ""}:
                try:
                    p = await self.reader.pod(ns, str(pod))
                except NotFound:
                    continue
                if p.spec.nodeName == node:
                    out.append(db)
                    break
        return out

    def _drainer(self, options: DrainOptions,
                 on_event: Callable[[DrainEvent], None] | None) -> Drainer:
        return Drainer(self.reader, options, on_event, monotonic=self._monotonic)

    async def set_schedulable(self, node: str, schedulable: bool) -> bool:
        return await self._drainer(DrainOptions(), None).set_unschedulable(node, not schedulable)

    async def drain(self, node: str, options: DrainOptions,
                    on_event: Callable[[DrainEvent], None] | None) -> None:
        await self._drainer(options, on_event).drain(node)

    # --- apiservers ----------------------------------------------------------------------------

    async def _endpoints(self) -> list[str]:
        """`host:port` of every apiserver the `kubernetes` Service's Endpoints and
        EndpointSlices list, else the kubeconfig's server."""
        try:
            found = await self.reader.apiserver_endpoints()
        except ApiError:
            found = []
        return found or [netloc(self.reader.server)]

    def _reader_for(self, endpoint: str) -> Reader:
        direct = self._direct.get(endpoint)
        if direct is None:
            direct = self._direct[endpoint] = self.reader.for_endpoint(endpoint)
        return direct

    async def apiserver_problems(self) -> list[str]:
        """One line per apiserver that is not ready: asked at its address when that answers,
        else judged by its mirror pod and `/readyz` through the kubeconfig's server."""
        endpoints = await self._endpoints()
        pods = list(self._pods.items.values())
        nodes = list(self._nodes.items.values())
        server = netloc(self.reader.server)
        through: list[str | None] = []  # `/readyz` through the kubeconfig's server, asked once

        async def ask(endpoint: str) -> str | None:
            now = self._monotonic()
            known = self._unreachable.get(endpoint)
            if known is None or endpoint in self._answered or now - known[1] >= REDIAL:
                try:
                    problem = await self._readyz(endpoint, raise_unreachable=True)
                except ApiError as e:
                    known = (known[0] if known else now, now, str(e))
                    self._unreachable[endpoint] = known
                else:
                    self._unreachable.pop(endpoint, None)
                    self._answered.add(endpoint)
                    return problem
            since, _, why = known
            if endpoint in self._answered and now - since < REDIAL:
                return f"apiserver {endpoint} is not ready: {why}"  # restarting, most likely
            if not through:
                through.append(await self._readyz(server))
            return judge_unreachable(endpoint, why, pods, nodes, through[0], server)

        answers = await asyncio.gather(*(ask(ep) for ep in endpoints))
        return [a for a in answers if a]

    def unreachable(self) -> dict[str, str]:
        """Endpoint → why it is judged the other way (it refused or timed out lately)."""
        return {ep: why for ep, (_, _, why) in self._unreachable.items()}

    async def _readyz(self, endpoint: str, *, raise_unreachable: bool = False) -> str | None:
        """None when `/readyz` at `endpoint` answers `ok`, else the problem; with
        `raise_unreachable` a connection that refused or timed out raises ApiError instead."""
        try:
            text = await self._reader_for(endpoint).readyz(timeout=READYZ_TIMEOUT)
        except ApiError as e:
            if isinstance(e, Unreachable) and raise_unreachable:
                raise
            return f"apiserver {endpoint} is not ready: {e}"
        return None if text == "ok" else f"apiserver {endpoint} /readyz: {text[:200]}"


def netloc(server: str) -> str:
    """`host:port` of a server URL."""
    return urlsplit(server).netloc


def apiserver_node(endpoint: str, pods: list[SystemPod], nodes: list[NodeView]) -> str | None:
    """The node whose kube-apiserver `endpoint` is: by its mirror pod's advertise-address
    annotation, else by the node's InternalIP."""
    for p in pods:
        if p.component == "kube-apiserver" and p.advertise == endpoint and not p.deleting:
            return p.node
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    return next((n.name for n in nodes if n.internal_ip == host), None)


def judge_unreachable(endpoint: str, why: str, pods: list[SystemPod], nodes: list[NodeView],
                      server_problem: str | None, server: str) -> str | None:
    """The problem with an apiserver whose address did not answer from here (None: healthy):
    its mirror pod must be Ready (kubeadm's manifest probes `/readyz` there) and `/readyz`
    through the kubeconfig's `server` must answer `ok`."""
    node = apiserver_node(endpoint, pods, nodes)
    pod = next((p for p in pods if p.component == "kube-apiserver" and p.node == node
                and not p.deleting), None) if node else None
    where = f"its address {endpoint} did not answer from here: {why}"
    if pod is None:
        return (f"apiserver {endpoint} did not answer from here ({why}) and no kube-apiserver "
                "mirror pod names it; check that it runs and is reachable")
    if not pod.ready:
        return f"kube-apiserver on {node} is not Ready ({where})"
    if server_problem is not None:
        return f"{server_problem} (through the kubeconfig's server {server}; {where})"
    return None
