"""kubernetes-asyncio's typed client against the lab: lists deserialize, watches stream, patches
and evictions work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from kubehop.lab.api.server import LabServer
from kubehop.lab.fixtures.specs import oldversion_spec


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[LabServer, client.ApiClient]]:
    async with LabServer(oldversion_spec(), tls=True, state_dir=tmp_path / "lab") as lab:
        kubeconfig = lab.write_kubeconfig(tmp_path / "kubeconfig")
        cfg = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        async with client.ApiClient(cfg) as api_client:
            yield lab, api_client


async def test_list_nodes_deserializes(api: tuple[LabServer, client.ApiClient]) -> None:
    _, c = api
    nodes = await client.CoreV1Api(c).list_node()
    assert [n.metadata.name for n in nodes.items] == ["oldversion1", "oldversion2", "oldversion3"]
    info = nodes.items[0].status.node_info
    assert info.architecture == "amd64"
    assert info.kubelet_version == "v1.28.9"
    assert info.kube_proxy_version == "v1.28.9"
    pods = await client.CoreV1Api(c).list_pod_for_all_namespaces(limit=5)
    assert len(pods.items) == 5
    assert pods.metadata._continue
    assert pods.items[0].status.container_statuses[0].ready is True
    deployments = await client.AppsV1Api(c).list_deployment_for_all_namespaces()
    assert {d.metadata.name for d in deployments.items} == {"coredns", "frontend"}
    pdbs = await client.PolicyV1Api(c).list_pod_disruption_budget_for_all_namespaces()
    assert {p.metadata.name for p in pdbs.items} == {"frontend", "pg"}


async def test_watch_sees_a_patch(api: tuple[LabServer, client.ApiClient]) -> None:
    _, c = api
    v1 = client.CoreV1Api(c)
    pods = await v1.list_namespaced_pod("web")
    name = pods.items[0].metadata.name
    events: list[tuple[str, str, dict[str, str]]] = []

    async def consume() -> None:
        w = watch.Watch()
        async with w.stream(v1.list_namespaced_pod, "web", timeout_seconds=10,
                            resource_version=pods.metadata.resource_version) as stream:
            async for event in stream:
                obj = event["object"]
                events.append((event["type"], obj.metadata.name, obj.metadata.labels))
                if event["type"] == "MODIFIED":
                    w.stop()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    await v1.patch_namespaced_pod(name, "web", {"metadata": {"labels": {"seen": "yes"}}})
    await asyncio.wait_for(task, 10)
    assert events[-1][:2] == ("MODIFIED", name)
    assert events[-1][2]["seen"] == "yes"


async def test_patch_node(api: tuple[LabServer, client.ApiClient]) -> None:
    lab, c = api
    v1 = client.CoreV1Api(c)
    node = await v1.patch_node("oldversion3", {"spec": {"unschedulable": True}})
    assert node.spec.unschedulable is True
    assert lab.store.get("nodes", "", "oldversion3")["spec"]["unschedulable"] is True
    node = await v1.patch_node("oldversion3", {"spec": {"unschedulable": None}})
    assert node.spec.unschedulable is None


async def test_eviction_respects_the_pdb(api: tuple[LabServer, client.ApiClient]) -> None:
    lab, c = api
    v1 = client.CoreV1Api(c)
    pods = (await v1.list_namespaced_pod("web")).items
    first, second = pods[0].metadata.name, pods[1].metadata.name

    def eviction(name: str) -> client.V1Eviction:
        return client.V1Eviction(api_version="policy/v1", kind="Eviction",
                                 metadata=client.V1ObjectMeta(name=name, namespace="web"))

    await v1.create_namespaced_pod_eviction(first, "web", eviction(first))
    assert lab.store.peek("pods", "web", first) is None
    # frontend allowed one disruption; nothing recomputed it, so the next one is refused
    with pytest.raises(ApiException) as refused:
        await v1.create_namespaced_pod_eviction(second, "web", eviction(second))
    assert refused.value.status == 429
    assert "disruption budget" in refused.value.body
    assert lab.store.peek("pods", "web", second) is not None
    with pytest.raises(ApiException) as missing:
        await v1.create_namespaced_pod_eviction("nope", "web", eviction("nope"))
    assert missing.value.status == 404
    with pytest.raises(ApiException) as mismatch:
        await v1.create_namespaced_pod_eviction(second, "web", eviction(first))
    assert mismatch.value.status == 400
