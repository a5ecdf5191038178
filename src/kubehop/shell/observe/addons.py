"""Cluster-wide facts for `observe`: kubeadm's ClusterConfiguration, the `kubernetes` Service's
endpoints, the local kubectl, CoreDNS, kube-proxy and the CNI plugin (recognised by image), and
the small msgspec structs they are read with."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec

from kubehop.model.cluster import ApiServerInfo
from kubehop.model.versions import KubeVersion, image_kube_version
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.errors import ApiError
from kubehop.shell.observe.decode import image_repository, image_tag, kube_version_or_none

T = TypeVar("T")
KUBECTL_TIMEOUT = 10.0
KUBE_SYSTEM = "/api/v1/namespaces/kube-system"

# CNI plugins recognised by the repository of a DaemonSet's image.
CNI_IMAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(^|/)calico/node$"), "calico"),
    (re.compile(r"(^|/)cilium/cilium$"), "cilium"),
    (re.compile(r"(^|/)(flannel|flannelcni|coreos|flannel-io)/flannel$"), "flannel"),
    (re.compile(r"(^|/)weaveworks/weave-kube$"), "weave"),
    (re.compile(r"(^|/)antrea/antrea-(agent-)?ubuntu$|(^|/)antrea/antrea-agent"), "antrea"),
    (re.compile(r"(^|/)kindnetd$"), "kindnet"),
)


class Container(msgspec.Struct):
    name: str = ""
    image: str = ""


class _PodSpec(msgspec.Struct):
    containers: list[Container] = msgspec.field(default_factory=list)


class _Template(msgspec.Struct):
    spec: _PodSpec = msgspec.field(default_factory=_PodSpec)


class _WorkloadSpec(msgspec.Struct):
    template: _Template = msgspec.field(default_factory=_Template)


class _Meta(msgspec.Struct):
    name: str = ""
    namespace: str = ""
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class Workload(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    spec: _WorkloadSpec = msgspec.field(default_factory=_WorkloadSpec)


class WorkloadList(msgspec.Struct):
    items: list[Workload] = msgspec.field(default_factory=list)


class _Address(msgspec.Struct):
    ip: str = ""


class _Port(msgspec.Struct):
    port: int = 0
    name: str | None = None


class _Subset(msgspec.Struct):
    addresses: list[_Address] = msgspec.field(default_factory=list)
    ports: list[_Port] = msgspec.field(default_factory=list)


class _Endpoints(msgspec.Struct):
    subsets: list[_Subset] = msgspec.field(default_factory=list)


class _SliceEndpoint(msgspec.Struct):
    addresses: list[str] = msgspec.field(default_factory=list)


class _Slice(msgspec.Struct):
    endpoints: list[_SliceEndpoint] = msgspec.field(default_factory=list)
    ports: list[_Port] = msgspec.field(default_factory=list)


class _SliceList(msgspec.Struct):
    items: list[_Slice] = msgspec.field(default_factory=list)


class _CnpgSpec(msgspec.Struct):
    instances: int = 1


class _CnpgStatus(msgspec.Struct):
    currentPrimary: str | None = None


class Cnpg(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    spec: _CnpgSpec = msgspec.field(default_factory=_CnpgSpec)
    status: _CnpgStatus = msgspec.field(default_factory=_CnpgStatus)


class CnpgList(msgspec.Struct):
    items: list[Cnpg] = msgspec.field(default_factory=list)


class _ConfigMap(msgspec.Struct):
    data: dict[str, str] = msgspec.field(default_factory=dict)


class VersionInfo(msgspec.Struct):
    gitVersion: str = ""


class _PodCondition(msgspec.Struct):
    type: str = ""
    status: str = ""


class _MirrorStatus(msgspec.Struct):
    conditions: list[_PodCondition] = msgspec.field(default_factory=list)


class MirrorPod(msgspec.Struct):
    spec: _PodSpec = msgspec.field(default_factory=_PodSpec)
    status: _MirrorStatus = msgspec.field(default_factory=_MirrorStatus)


class _ClientVersion(msgspec.Struct):
    clientVersion: VersionInfo = msgspec.field(default_factory=VersionInfo)


_KUBERNETES_VERSION_RE = re.compile(r"^kubernetesVersion:\s*['\"]?([^'\"\s]+)", re.MULTILINE)


async def optional(coro: Awaitable[T], default: T, *,
                   statuses: tuple[int, ...] = (403, 404)) -> T:
    """`coro`'s result, or `default` when the API answers one of `statuses` (absent, forbidden)."""
    try:
        return await coro
    except ApiError as e:
        if e.status in statuses:
            return default
        raise


async def pages(client: KubeClient, path: str, params: dict[str, str] | None,
                decode: Callable[[bytes], list[T]]) -> list[T]:
    """Every item of a paged list, each page decoded by `decode`."""
    return await client.list_items(path, params, decode)


# --- cluster-wide facts ---------------------------------------------------------------------


async def kubeadm_config(client: KubeClient) -> tuple[KubeVersion | None, bool]:
    """(ClusterConfiguration.kubernetesVersion, whether kubeadm-config is missing)."""
    try:
        raw = await client.request("GET", f"{KUBE_SYSTEM}/configmaps/kubeadm-config")
    except ApiError as e:
        if e.status == 404:
            return None, True
        if e.status == 403:
            return None, False
        raise
    text = msgspec.json.decode(raw, type=_ConfigMap).data.get("ClusterConfiguration", "")
    m = _KUBERNETES_VERSION_RE.search(text)
    return (kube_version_or_none(m.group(1)) if m else None), False


async def service_endpoints(client: KubeClient) -> list[str]:
    """`host:port` of each apiserver the `kubernetes` Service's Endpoints and slices list."""
    found: list[str] = []

    async def endpoints() -> None:
        raw = await client.request("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
        for s in msgspec.json.decode(raw, type=_Endpoints).subsets:
            found.extend(join_host_port(a.ip, p.port) for a in s.addresses for p in s.ports
                         if p.name in (None, "https"))

    async def slices() -> None:
        raw = await client.request("GET", "/apis/discovery.k8s.io/v1/namespaces/default/"
                                   "endpointslices",
                                   params={"labelSelector": "kubernetes.io/service-name="
                                                            "kubernetes"})
        for sl in msgspec.json.decode(raw, type=_SliceList).items:
            found.extend(join_host_port(a, p.port) for e in sl.endpoints for a in e.addresses
                         for p in sl.ports if p.name in (None, "https"))

    await asyncio.gather(optional(endpoints(), None), optional(slices(), None))
    return list(dict.fromkeys(found))


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def kubectl_client_version() -> KubeVersion | None:
    """`kubectl version --client` of the kubectl on PATH; None without one (or if it fails)."""
    path = shutil.which("kubectl")
    if path is None:
        return None
    try:
        proc = await asyncio.create_subprocess_exec(
            path, "version", "--client", "-o", "json", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), KUBECTL_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    try:
        doc = msgspec.json.decode(out, type=_ClientVersion)
    except msgspec.DecodeError:
        return None
    return kube_version_or_none(doc.clientVersion.gitVersion)


def recognise_cni(daemonsets: list[Workload]) -> tuple[tuple[str, str], ...]:
    """(name, version) of each CNI plugin recognised by its DaemonSet's image; when none is,
    (image repository, tag) of each kube-system DaemonSet but kube-proxy."""
    known: dict[str, str] = {}
    for ds in daemonsets:
        for c in ds.spec.template.spec.containers:
            repo = image_repository(c.image)
            name = next((n for rx, n in CNI_IMAGES if rx.search(repo)), None)
            if name is not None and name not in known:
                known[name] = image_tag(c.image) or ""
    if known:
        return tuple(known.items())
    return tuple(
        (image_repository(c.image), image_tag(c.image) or "")
        for ds in daemonsets
        if ds.metadata.namespace == "kube-system" and ds.metadata.name != "kube-proxy"
        for c in ds.spec.template.spec.containers[:1]
    )


def first_tag(workload: Workload | None) -> str | None:
    if workload is None or not workload.spec.template.spec.containers:
        return None
    return image_tag(workload.spec.template.spec.containers[0].image)


def coredns_tag(deployments: list[Workload]) -> str | None:
    for d in deployments:
        for c in d.spec.template.spec.containers:
            if "coredns" in image_repository(c.image):
                return image_tag(c.image)
    return None


# --- apiservers whose address does not answer from here -------------------------------------

READYZ_TIMEOUT = 5.0


async def read_unreachable(client: KubeClient, apiservers: tuple[ApiServerInfo, ...]
                           ) -> tuple[ApiServerInfo, ...]:
    """Each apiserver whose address did not answer `/version`, read the other way when its
    node is known: the version of its mirror pod's image, healthy when that pod is Ready (the
    kubelet probes its `/readyz`) and `/readyz` through the kubeconfig's server answers `ok`.
    Advertise addresses are often unreachable from the operator's machine (load balancer,
    bastion, VPN)."""
    if all(a.error is None or a.node is None for a in apiservers):
        return apiservers
    try:
        body = await client.request("GET", "/readyz", accept="text/plain",
                                    timeout=READYZ_TIMEOUT)
        text = body.decode("utf-8", "replace").strip()
        through = None if text == "ok" else f"/readyz through {client.server}: {text[:200]}"
    except ApiError as e:
        through = f"/readyz through {client.server}: {e}"

    async def read(a: ApiServerInfo) -> ApiServerInfo:
        if a.error is None or a.node is None:
            return a
        try:
            raw = await client.request("GET", f"{KUBE_SYSTEM}/pods/kube-apiserver-{a.node}")
        except ApiError:
            return a  # nothing better to say than the address's own error
        pod = msgspec.json.decode(raw, type=MirrorPod)
        image = pod.spec.containers[0].image if pod.spec.containers else ""
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
        problem = through if ready else f"its mirror pod kube-apiserver-{a.node} is not Ready"
        return dataclasses.replace(a, version=image_kube_version(image) if image else None,
                                   error=problem, read_via="mirror-pod", address_error=a.error)

    return tuple(await asyncio.gather(*(read(a) for a in apiservers)))
