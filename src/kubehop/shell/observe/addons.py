"""Cluster-wide facts for `observe`: kubeadm's ClusterConfiguration, the local kubectl, CoreDNS,
kube-proxy and the CNI plugin (recognised by image), and apiservers whose address does not
answer from here. Everything is read through a `Reader` (kubehop.shell.kube.reader)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
from collections.abc import Callable
from typing import TypeVar

import msgspec

from kubehop.model.cluster import ApiServerInfo
from kubehop.model.versions import KubeVersion, image_kube_version
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube import wire
from kubehop.shell.kube.errors import ApiError, Forbidden, NotFound
from kubehop.shell.kube.reader import Reader
from kubehop.shell.kube.requests import Request
from kubehop.shell.kube.wire import WorkloadWire
from kubehop.shell.observe.decode import image_repository, image_tag, kube_version_or_none

T = TypeVar("T")
KUBECTL_TIMEOUT = 10.0

# CNI plugins recognised by the repository of a DaemonSet's image.
CNI_IMAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(^|/)calico/node$"), "calico"),
    (re.compile(r"(^|/)cilium/cilium$"), "cilium"),
    (re.compile(r"(^|/)(flannel|flannelcni|coreos|flannel-io)/flannel$"), "flannel"),
    (re.compile(r"(^|/)weaveworks/weave-kube$"), "weave"),
    (re.compile(r"(^|/)antrea/antrea-(agent-)?ubuntu$|(^|/)antrea/antrea-agent"), "antrea"),
    (re.compile(r"(^|/)kindnetd$"), "kindnet"),
)


async def pages(reader: Reader, request: Request, decode: Callable[[bytes], list[T]]) -> list[T]:
    """Every item of a paged list, each page decoded by `decode`."""
    return await reader.items(request, decode)


# --- cluster-wide facts ---------------------------------------------------------------------


async def kubeadm_config(reader: Reader) -> tuple[KubeVersion | None, bool]:
    """(ClusterConfiguration.kubernetesVersion, whether kubeadm-config is missing)."""
    try:
        text = await reader.kubeadm_kubernetes_version()
    except NotFound:
        return None, True
    except Forbidden:
        return None, False
    return kube_version_or_none(text), False


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
        doc = msgspec.json.decode(out, type=wire.ClientVersion)
    except msgspec.DecodeError:
        return None
    return kube_version_or_none(doc.clientVersion.gitVersion)


def recognise_cni(daemonsets: list[WorkloadWire]) -> tuple[tuple[str, str], ...]:
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


def first_tag(workload: WorkloadWire | None) -> str | None:
    if workload is None or not workload.spec.template.spec.containers:
        return None
    return image_tag(workload.spec.template.spec.containers[0].image)


def coredns_tag(deployments: list[WorkloadWire]) -> str | None:
    for d in deployments:
        for c in d.spec.template.spec.containers:
            if "coredns" in image_repository(c.image):
                return image_tag(c.image)
    return None


# --- apiservers whose address does not answer from here -------------------------------------

READYZ_TIMEOUT = 5.0


async def read_unreachable(reader: Reader, apiservers: tuple[ApiServerInfo, ...]
                           ) -> tuple[ApiServerInfo, ...]:
    """Each apiserver whose address did not answer `/version`, read the other way when its
    node is known: the version of its mirror pod's image, healthy when that pod is Ready (the
    kubelet probes its `/readyz`) and `/readyz` through the kubeconfig's server answers `ok`.
    Advertise addresses are often unreachable from the operator's machine (load balancer,
    bastion, VPN)."""
    if all(a.error is None or a.node is None for a in apiservers):
        return apiservers
    try:
        text = await reader.readyz(timeout=READYZ_TIMEOUT)
        through = None if text == "ok" else f"/readyz through {reader.server}: {text[:200]}"
    except ApiError as e:
        through = f"/readyz through {reader.server}: {e}"

    async def read(a: ApiServerInfo) -> ApiServerInfo:
        if a.error is None or a.node is None:
            return a
        try:
            pod = await reader.pod(rq.KUBE_SYSTEM, f"kube-apiserver-{a.node}")
        except ApiError:
            return a  # nothing better to say than the address's own error
        containers = wire.containers.decode(bytes(pod.spec.containers))
        image = containers[0].image if containers else ""
        ready = wire.is_true(pod.status.conditions)
        problem = through if ready else f"its mirror pod kube-apiserver-{a.node} is not Ready"
        return dataclasses.replace(a, version=image_kube_version(image) if image else None,
                                   error=problem, read_via="mirror-pod", address_error=a.error)

    return tuple(await asyncio.gather(*(read(a) for a in apiservers)))
