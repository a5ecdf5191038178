"""Many drains at once on one client: watches never starve the requests (evictions) of
connections, and the drains share one PodDisruptionBudget watch per namespace."""

from __future__ import annotations

import asyncio

from kubernetes_asyncio.client import ApiClient

from kubehop.core.drain.rules import DrainOptions
from kubehop.lab.history import check_history
from kubehop.shell.drain.budgets import Budgets
from kubehop.shell.drain.node import Drainer
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.config import load_configuration
from tests.integration.drain.conftest import node_schedulable, pods_on, scenario, start_labs

POOL = 3  # request connections: fewer than the watches four drains open
WORKLOADS = "".join(
    f"  - {{kind: Deployment, namespace: team-{i}, name: app, replicas: 8,\n"
    f"     requests: {{cpu: 10m, memory: 16Mi}}, pdb: {{maxUnavailable: 2}}}}\n"
    for i in range(3))


async def small_pool_client(lab) -> KubeClient:
    cfg = await load_configuration(str(lab.kubeconfig_path), None)
    cfg.connection_pool_maxsize = POOL
    return KubeClient(ApiClient(configuration=cfg))


async def test_four_drains_with_more_watches_than_pooled_connections_finish(stack, tmp_path):
    path = scenario(tmp_path, "many", WORKLOADS, workers=6)
    (lab,) = await start_labs(stack, path, tmp_path, 1, scale=0.02)
    client = await small_pool_client(lab)
    nodes = ["w1", "w2", "w3", "w4"]
    options = DrainOptions(ignore_daemonsets=True, timeout=60)
    try:
        # Each drain watches its node's pods and the PDBs of up to 3 namespaces: 4 + 3
        # watches held open at once against a request pool of 3 connections.
        results = await asyncio.wait_for(
            asyncio.gather(*(Drainer(client, options).drain(n) for n in nodes)), 120)
    finally:
        await client.close()
    assert sum(len(r.evicted) for r in results) > 0
    for node in nodes:
        assert not node_schedulable(lab, node)
        assert not [k for k in pods_on(lab, node) if k.startswith("team-")]
    assert check_history(lab.history.since(0), max_unavailable=len(nodes)) == []


async def test_drains_share_one_pdb_watch_per_namespace(stack, tmp_path):
    path = scenario(tmp_path, "shared", WORKLOADS, workers=2)
    (lab,) = await start_labs(stack, path, tmp_path, 1)
    client = await KubeClient.connect(str(lab.kubeconfig_path))
    try:
        first, second = Budgets(client), Budgets(client)
        first.prefetch(["team-0", "team-1"])
        second.prefetch(["team-1", "team-1", "team-2"])
        informers = {ns: await first.informer(ns) for ns in ("team-0", "team-1")}
        assert await second.informer("team-1") is informers["team-1"]
        assert {p.name for p in informers["team-1"].items.values()} == {"app"}
        await first.stop()
        # team-1 is still in use by the second drain: its watch keeps running.
        assert informers["team-1"]._task is not None
        assert informers["team-0"]._task is None
        await second.stop()
        assert informers["team-1"]._task is None
    finally:
        await client.close()
