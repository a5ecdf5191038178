"""Observe a cluster: build the `ClusterState` that `versions`, `check` and `plan` judge.

    async with await KubeClient.connect() as client:
        state = await observe(client, workloads=False)

Reads, concurrently: nodes; kube-system control-plane (mirror) pods and kube-proxy pods (by
label, not every kube-system pod); every apiserver's own `/version`, queried directly at the
endpoints that the `default/kubernetes` Endpoints/EndpointSlices and the kube-apiserver pods'
advertise-address annotations name (with the kubeconfig's credentials and CA, short timeouts;
an unreachable one is recorded with its error); CoreDNS, kube-proxy and CNI images; kubeadm's
ClusterConfiguration; the local kubectl's version. `workloads=True` adds every pod (pages of 500
decoded with msgspec), PDBs and CloudNativePG clusters; `apis=True` the API versions in use
(`observe_apis`); a `node_runner` the package facts of each node (`observe_nodes`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

import msgspec

from kubehop.model.cluster import (
    Addons,
    ApiServerInfo,
    ClusterState,
    DatabaseInfo,
    DeprecatedApiUse,
    ManifestObject,
    NodePackages,
    NodeState,
    PdbInfo,
    PodInfo,
)
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube import wire
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.errors import ApiError
from kubehop.shell.kube.reader import Reader, as_reader, optional
from kubehop.shell.kube.wire import CnpgWire, WorkloadWire
from kubehop.shell.observe import apis as observe_apis
from kubehop.shell.observe.addons import (
    coredns_tag,
    first_tag,
    kubeadm_config,
    kubectl_client_version,
    pages,
    read_unreachable,
    recognise_cni,
)
from kubehop.shell.observe.decode import (
    PodDecoder,
    decode_nodes,
    decode_pdbs,
    image_tag,
    kube_version_or_none,
    pdb_info,
)
from kubehop.shell.observe.nodes import NodeRunner, gather_node_facts

ADVERTISE = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"
ENDPOINT_TIMEOUT = 3.0  # seconds for each direct apiserver query: a dead one must not stall us

# --- apiservers -----------------------------------------------------------------------------


async def _query_apiserver(reader: Reader, endpoint: str, node: str | None,
                           metrics: bool) -> tuple[ApiServerInfo, list[DeprecatedApiUse] | None]:
    """/version (and /metrics) of one apiserver asked directly; errors recorded, not raised."""
    async with reader.for_endpoint(endpoint) as direct:
        try:
            raw = await direct.raw(rq.version(), timeout=ENDPOINT_TIMEOUT)
            doc = msgspec.json.decode(raw, type=wire.VersionInfo)
            version = kube_version_or_none(doc.gitVersion)
            info = ApiServerInfo(endpoint, node, version,
                                 None if version else f"bad gitVersion {doc.gitVersion!r}")
        except (ApiError, msgspec.DecodeError) as e:
            return ApiServerInfo(endpoint, node, None, str(e)), None
        uses = None
        if metrics:
            try:
                text = await direct.raw(rq.metrics(), timeout=ENDPOINT_TIMEOUT * 3)
                uses = observe_apis.parse_deprecated_apis(text.decode("utf-8", "replace"),
                                                          endpoint)
            except ApiError:
                uses = None
        return info, uses


def _apiserver_endpoints(listed: list[str], advertised: dict[str, str],
                         nodes: tuple[NodeState, ...]) -> list[tuple[str, str | None]]:
    """(endpoint, node) pairs: advertised by a kube-apiserver pod, or listed by the Service."""
    by_endpoint = {ep: node for node, ep in sorted(advertised.items())}
    by_ip = {n.internal_ip: n.name for n in nodes if n.internal_ip}
    out = list(by_endpoint.items())
    for ep in listed:
        if ep not in by_endpoint:
            host = ep.rsplit(":", 1)[0].strip("[]")
            out.append((ep, by_ip.get(host)))
    return out


# --- the whole picture ----------------------------------------------------------------------


async def observe(client: KubeClient, *, workloads: bool, node_runner: NodeRunner | None = None,
                  apis: bool = False, kubectl: bool = True) -> ClusterState:
    """Everything kubehop needs to know about the cluster `client` talks to, at one moment."""
    reader = as_reader(client)
    pods = PodDecoder()
    ds_decoder = msgspec.json.Decoder(wire.ItemList[WorkloadWire])
    cnpg_decoder = msgspec.json.Decoder(wire.ItemList[CnpgWire])
    tasks: dict[str, asyncio.Task[Any]] = {}
    async with asyncio.TaskGroup() as tg:
        def start(name: str, coro: Awaitable[Any]) -> None:
            tasks[name] = tg.create_task(coro)  # type: ignore[arg-type]

        start("nodes", pages(reader, rq.list_nodes(), decode_nodes))
        for name, selector in (("cp", "tier=control-plane"), ("proxy", "k8s-app=kube-proxy")):
            start(name, pages(reader, rq.list_pods(rq.KUBE_SYSTEM, label_selector=selector),
                              pods.decode_images))
        start("ds", optional(pages(reader, rq.list_workloads("daemonsets"),
                                   lambda b: ds_decoder.decode(b).items), []))
        start("dns", optional(pages(reader, rq.list_workloads("deployments", rq.KUBE_SYSTEM,
                                                              "k8s-app=kube-dns"),
                                    lambda b: ds_decoder.decode(b).items), []))
        start("kubeadm", kubeadm_config(reader))
        start("endpoints", reader.apiserver_endpoints())
        if kubectl:
            start("kubectl", kubectl_client_version())
        if workloads:
            start("pods", pages(reader, rq.list_pods(), pods.decode))
            start("pdbs", pages(reader, rq.list_pdbs(), decode_pdbs))
            start("cnpg", optional(pages(reader, rq.list_cnpg_clusters(),
                                         lambda b: cnpg_decoder.decode(b).items), []))
        if apis:
            start("applied", observe_apis.last_applied(reader))
            start("helm", optional(observe_apis.helm_releases(reader), []))

    nodes: list[NodeState] = tasks["nodes"].result()
    images: dict[str, dict[str, str]] = defaultdict(dict)
    advertised: dict[str, str] = {}
    for pod, containers, raw_annotations in tasks["cp"].result():
        component = dict(pod.labels).get("component")
        if pod.node and component and containers:
            images[pod.node][component] = containers[0]
            if component == "kube-apiserver" and ADVERTISE.encode() in raw_annotations:
                endpoint = msgspec.json.decode(raw_annotations, type=dict[str, str]).get(ADVERTISE)
                if endpoint:
                    advertised[pod.node] = endpoint
    proxies = {pod.node: containers[0] for pod, containers, _ in tasks["proxy"].result()
               if pod.node and containers}
    nodes = [_with_images(n, images.get(n.name, {}), proxies.get(n.name)) for n in nodes]

    endpoints = _apiserver_endpoints(tasks["endpoints"].result(), advertised, tuple(nodes))
    if not endpoints:
        endpoints = [(urlsplit(client.server).netloc, None)]
    answers = await asyncio.gather(*(_query_apiserver(reader, ep, node, apis)
                                     for ep, node in endpoints))
    apiservers = await read_unreachable(reader, tuple(info for info, _ in answers))
    deprecated = tuple(u for _, uses in answers for u in uses or ())
    unreadable = tuple(info.endpoint for info, uses in answers if apis and uses is None)

    errors: dict[str, str] = {}
    fallbacks: list[tuple[str, str]] = []
    if node_runner is not None:
        prepare = getattr(node_runner, "prepare", None)
        if callable(prepare):  # nodes the SSH inventory does not name: at their InternalIP
            fallbacks = prepare(nodes)
        facts, errors = await gather_node_facts(node_runner, nodes)
        nodes = [_with_packages(n, facts.get(n.name)) for n in nodes]

    daemonsets: list[WorkloadWire] = tasks["ds"].result()
    proxy_ds = next((d for d in daemonsets if d.metadata.namespace == "kube-system"
                     and d.metadata.name == "kube-proxy"), None)
    version, missing = tasks["kubeadm"].result()
    state = ClusterState(
        apiservers=apiservers,
        nodes=tuple(nodes),
        addons=Addons(
            coredns=coredns_tag(tasks["dns"].result()),
            kube_proxy=first_tag(proxy_ds),
            cni=recognise_cni([d for d in daemonsets if d is not proxy_ds]),
        ),
        kubeadm_kubernetes_version=version,
        kubectl=tasks["kubectl"].result() if kubectl else None,
        kubeconfig_server=urlsplit(client.server).netloc or None,
        kubeadm_config_missing=missing,
        deprecated_api_uses=deprecated,
        metrics_unreadable=unreadable,
        apis_observed=apis,
        nodes_observed=node_runner is not None,
        node_errors=tuple(sorted(errors.items())),
        address_fallbacks=tuple(sorted(fallbacks)),
    )
    if apis:
        manifests: list[ManifestObject] = tasks["applied"].result() + tasks["helm"].result()
        state = dataclasses.replace(state, manifests=tuple(manifests))
    if workloads:
        state = _with_workloads(state, tasks["pods"].result(), tasks["pdbs"].result(),
                                tasks["cnpg"].result())
    return state


def _with_images(node: NodeState, images: dict[str, str], proxy_image: str | None) -> NodeState:
    return dataclasses.replace(
        node,
        control_plane_images=tuple(sorted(images.items())),
        kube_proxy=kube_version_or_none(image_tag(proxy_image)) if proxy_image else None,
    )


def _with_packages(node: NodeState, packages: NodePackages | None) -> NodeState:
    return dataclasses.replace(node, packages=packages) if packages is not None else node


def _with_workloads(state: ClusterState, pods: list[PodInfo], raw_pdbs: list[Any],
                    clusters: list[CnpgWire]) -> ClusterState:
    by_ns: dict[str, list[PodInfo]] = defaultdict(list)
    for p in pods:
        by_ns[p.namespace].append(p)
    pdbs: list[PdbInfo] = [pdb_info(p, by_ns.get(p.metadata.namespace, ()))
                           for p in raw_pdbs]
    primaries = {(c.metadata.namespace, c.status.currentPrimary) for c in clusters}
    where = {(p.namespace, p.name): p.node for p in pods if (p.namespace, p.name) in primaries}
    databases = tuple(
        DatabaseInfo(namespace=c.metadata.namespace, name=c.metadata.name,
                     instances=c.spec.instances, primary_pod=c.status.currentPrimary,
                     primary_node=where.get((c.metadata.namespace, c.status.currentPrimary or "")))
        for c in clusters
    )
    return dataclasses.replace(state, pods=tuple(pods), pdbs=tuple(pdbs), databases=databases,
                               workloads_observed=True)
