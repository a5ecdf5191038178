"""`ClusterReader`: the one way kubehop reads the Kubernetes API (and makes the drain's writes).

    reader = ClusterReader(client)
    pods = await reader.pods(node="w1")                 # every page, as PodInfo
    endpoints = await reader.apiserver_endpoints()      # Endpoints + EndpointSlices
    async with reader.for_endpoint("127.77.0.1:6443") as direct:
        text = await direct.readyz()

observe, the executor's `KubeCluster` and the drain read through it: requests come from
`kubehop.shell.kube.requests`, answers are decoded with the structs of `kubehop.shell.kube.wire`,
failures are the typed errors of `kubehop.shell.kube.errors`. A list is read in pages; a page
token that expired (410) starts the list over. `kubehop.shell.kube.fake.FakeReader` is the
in-memory fake beside it, for unit tests of its users.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, Self, TypeVar

import msgspec

from kubehop.core.drain.rules import pod_from_dict
from kubehop.model.cluster import PdbInfo, PodInfo
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube import wire
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.errors import ApiError, Forbidden, NotFound
from kubehop.shell.kube.requests import Request

T = TypeVar("T")
DEFAULT_TIMEOUT = 60.0
_KUBERNETES_VERSION_RE = re.compile(r"^kubernetesVersion:\s*['\"]?([^'\"\s]+)", re.MULTILINE)
_pod_list = msgspec.json.Decoder(wire.ItemList[wire.PodWire])
_pdb_list = msgspec.json.Decoder(wire.ItemList[wire.PdbWire])


# --- converting wire objects -------------------------------------------------------------------


def pod_info(pod: wire.PodWire) -> PodInfo:
    """The drain's PodInfo of a pod (kubehop.core.drain.rules.pod_from_dict reads it)."""
    m, spec, status = pod.metadata, pod.spec, pod.status
    labels = bytes(m.labels)
    annotations = bytes(m.annotations)
    obj = {
        "metadata": {
            "namespace": m.namespace, "name": m.name, "uid": m.uid,
            "labels": wire.string_map.decode(labels) if labels != b"{}" else None,
            "annotations": wire.string_map.decode(annotations) if annotations != b"{}" else None,
            "ownerReferences": [msgspec.structs.asdict(o) for o in m.ownerReferences],
            "deletionTimestamp": m.deletionTimestamp,
        },
        "spec": {"nodeName": spec.nodeName,
                 "volumes": [{"emptyDir": v.emptyDir} if v.emptyDir is not None else {}
                             for v in wire.volumes.decode(bytes(spec.volumes))]},
        "status": {"phase": status.phase or None,
                   "conditions": [msgspec.structs.asdict(c) for c in status.conditions]},
    }
    return pod_from_dict(obj)


def pdb_status(pdb: wire.PdbWire) -> PdbInfo:
    """The drain's PdbInfo of a PDB: selector, status and generations (not its pods)."""
    m, st = pdb.metadata, pdb.status
    selector = pdb.spec.selector
    return PdbInfo(
        namespace=m.namespace, name=m.name,
        selector=None if selector is None else msgspec.to_builtins(selector),
        expected=st.expectedPods, desired_healthy=st.desiredHealthy,
        current_healthy=st.currentHealthy, disruptions_allowed=st.disruptionsAllowed,
        generation=m.generation,
        observed_generation=m.generation if st.observedGeneration is None
        else st.observedGeneration,
    )


def decode_pods(page: bytes) -> list[PodInfo]:
    return [pod_info(p) for p in _pod_list.decode(page).items]


def decode_pdbs(page: bytes) -> list[PdbInfo]:
    return [pdb_status(p) for p in _pdb_list.decode(page).items]


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def optional(coro: Awaitable[T], default: T,
                   absent: tuple[type[ApiError], ...] = (Forbidden, NotFound)) -> T:
    """`coro`'s result, or `default` when the API answers one of `absent` (by default: not
    served or not ours to read)."""
    try:
        return await coro
    except absent:
        return default


# --- the seam ----------------------------------------------------------------------------------


class Reader(Protocol):
    """What the drain, the executor and observe need of the API (ClusterReader, FakeReader)."""

    @property
    def server(self) -> str: ...
    async def close(self) -> None: ...
    def for_endpoint(self, endpoint: str) -> Reader: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def raw(self, request: Request, *, timeout: float | None = DEFAULT_TIMEOUT,
                  retry: bool = True) -> bytes: ...
    async def get(self, request: Request, kind: type[T]) -> T: ...
    async def items(self, request: Request, decode: Callable[[bytes], list[T]]) -> list[T]: ...
    async def page(self, request: Request, continue_: str = "") -> bytes: ...
    def watch(self, request: Request, resource_version: str,
              timeout_seconds: int) -> AsyncIterator[bytes]: ...
    async def node(self, name: str) -> wire.NodeWire: ...
    async def pods(self, namespace: str | None = None, *, node: str | None = None,
                   label_selector: str | None = None) -> list[PodInfo]: ...
    async def pdbs(self, namespace: str) -> list[PdbInfo]: ...
    async def daemonset_exists(self, namespace: str, name: str) -> bool: ...
    async def cnpg_cluster(self, namespace: str, name: str) -> wire.CnpgWire: ...
    async def pod(self, namespace: str, name: str) -> wire.PodWire: ...
    async def kubeadm_kubernetes_version(self) -> str | None: ...
    async def apiserver_endpoints(self) -> list[str]: ...
    async def readyz(self, timeout: float | None = DEFAULT_TIMEOUT) -> str: ...
    async def set_unschedulable(self, node: str, unschedulable: bool) -> None: ...
    async def evict(self, namespace: str, name: str, grace_period: int = -1) -> None: ...
    async def delete_pod(self, namespace: str, name: str, grace_period: int = -1) -> None: ...


class ClusterReader:
    """Reads (and the drain's few writes) over one `KubeClient`; see the module docstring."""

    def __init__(self, client: KubeClient, *, owns_client: bool = False) -> None:
        self.client = client
        self._owns = owns_client

    @property
    def server(self) -> str:
        return self.client.server

    async def close(self) -> None:
        """Close the client if this reader made it (`for_endpoint`)."""
        if self._owns:
            await self.client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def for_endpoint(self, endpoint: str) -> ClusterReader:
        """A reader of one apiserver (`host:port`) with the same credentials, one attempt per
        request; close it (or use `async with`)."""
        return ClusterReader(self.client.for_endpoint(endpoint), owns_client=True)

    # --- generic -------------------------------------------------------------------------------

    async def raw(self, request: Request, *, timeout: float | None = DEFAULT_TIMEOUT,
                  retry: bool = True) -> bytes:
        """The raw body of `request`'s answer."""
        return await self.client.send(request, timeout=timeout, retry=retry)

    async def get(self, request: Request, kind: type[T]) -> T:
        """`request`'s answer decoded into `kind` (a wire struct)."""
        return msgspec.json.decode(await self.raw(request), type=kind)

    async def items(self, request: Request, decode: Callable[[bytes], list[T]]) -> list[T]:
        """Every item of a list, page by page, each page decoded by `decode`."""
        return await self.client.list_items(request, None, decode)

    async def page(self, request: Request, continue_: str = "") -> bytes:
        """One raw page of a list (for informers, which keep its resourceVersion)."""
        return await self.raw(rq.page(request, continue_))

    def watch(self, request: Request, resource_version: str,
              timeout_seconds: int) -> AsyncIterator[bytes]:
        """The event lines of a watch of `request`'s list from `resource_version`."""
        return self.client.watch(rq.watch(request, resource_version, timeout_seconds),
                                 timeout=timeout_seconds + 30)

    # --- objects -------------------------------------------------------------------------------

    async def node(self, name: str) -> wire.NodeWire:
        return await self.get(rq.get_node(name), wire.NodeWire)

    async def pods(self, namespace: str | None = None, *, node: str | None = None,
                   label_selector: str | None = None) -> list[PodInfo]:
        """Every pod (of a namespace, on a node, matching a selector), as the drain sees it."""
        return await self.items(rq.list_pods(namespace, node=node,
                                             label_selector=label_selector), decode_pods)

    async def pdbs(self, namespace: str) -> list[PdbInfo]:
        """The PodDisruptionBudgets of one namespace (selector and status)."""
        return decode_pdbs(await self.raw(rq.list_pdbs(namespace)))

    async def daemonset_exists(self, namespace: str, name: str) -> bool:
        try:
            await self.raw(rq.get_daemonset(namespace, name))
        except NotFound:
            return False
        return True

    async def cnpg_cluster(self, namespace: str, name: str) -> wire.CnpgWire:
        return await self.get(rq.get_cnpg_cluster(namespace, name), wire.CnpgWire)

    async def pod(self, namespace: str, name: str) -> wire.PodWire:
        return await self.get(rq.get_pod(namespace, name), wire.PodWire)

    async def kubeadm_kubernetes_version(self) -> str | None:
        """kubernetesVersion of kubeadm's ClusterConfiguration (NotFound: no kubeadm-config)."""
        data = (await self.get(rq.kubeadm_config(), wire.ConfigMapWire)).data
        m = _KUBERNETES_VERSION_RE.search(data.get("ClusterConfiguration", ""))
        return m.group(1) if m else None

    async def apiserver_endpoints(self) -> list[str]:
        """`host:port` of each apiserver the `kubernetes` Service's Endpoints and
        EndpointSlices list (https ports), in order, once each; either may be absent or not
        readable (kubernetes/kubernetes pkg/controlplane/reconcilers keeps both)."""
        found: list[str] = []

        async def endpoints() -> None:
            doc = await self.get(rq.kubernetes_endpoints(), wire.EndpointsWire)
            found.extend(join_host_port(a.ip, p.port) for s in doc.subsets
                         for a in s.addresses for p in s.ports if p.name in (None, "https"))

        async def slices() -> None:
            doc = await self.get(rq.kubernetes_endpoint_slices(),
                                 wire.ItemList[wire.EndpointSliceWire])
            found.extend(join_host_port(a, p.port) for sl in doc.items for e in sl.endpoints
                         for a in e.addresses for p in sl.ports if p.name in (None, "https"))

        await asyncio.gather(optional(endpoints(), None), optional(slices(), None))
        return list(dict.fromkeys(found))

    async def readyz(self, timeout: float | None = DEFAULT_TIMEOUT) -> str:
        """The text `/readyz` answers (`ok` when ready)."""
        body = await self.raw(rq.readyz(), timeout=timeout)
        return body.decode("utf-8", "replace").strip()

    # --- the drain's writes --------------------------------------------------------------------

    async def set_unschedulable(self, node: str, unschedulable: bool) -> None:
        await self.raw(rq.set_unschedulable(node, unschedulable))

    async def evict(self, namespace: str, name: str, grace_period: int = -1) -> None:
        """POST a policy/v1 Eviction, once: a 429 is a PDB saying no (TooManyRequests), for
        the caller to wait on, not a throttle to retry here."""
        await self.raw(rq.evict_pod(namespace, name, grace_period), retry=False)

    async def delete_pod(self, namespace: str, name: str, grace_period: int = -1) -> None:
        await self.raw(rq.delete_pod(namespace, name, grace_period))


_READERS: weakref.WeakKeyDictionary[KubeClient, ClusterReader] = weakref.WeakKeyDictionary()


def as_reader(source: KubeClient | Reader) -> Reader:
    """A reader for `source`: the reader itself, or the one ClusterReader of a KubeClient (one
    per client, so that drains on one client share their PDB watches)."""
    if isinstance(source, KubeClient):
        reader = _READERS.get(source)
        if reader is None:
            reader = _READERS[source] = ClusterReader(source)
        return reader
    return source


__all__ = ["ClusterReader", "Reader", "as_reader", "decode_pdbs", "decode_pods",
           "join_host_port", "optional", "pdb_status", "pod_info"]
