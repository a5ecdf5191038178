"""The control-plane gate judges each apiserver from where the operator sits: an advertise
address that refuses or times out is judged by its mirror pod and `/readyz` through the
kubeconfig's server, within seconds, and is not dialled again for `REDIAL` seconds."""

from __future__ import annotations

import socket
import time

import pytest
from aiohttp import web

from kubehop.shell.executor import cluster as executor_cluster
from kubehop.shell.executor.cluster import KubeCluster, NodeView, SystemPod, judge_unreachable
from kubehop.shell.kube.client import KubeClient
from tests.unit.shell.test_kube_client import write_kubeconfig


def apiserver_pod(node: str, endpoint: str, ready: bool = True) -> SystemPod:
    return SystemPod(f"kube-apiserver-{node}", node, "kube-apiserver",
                     "registry.k8s.io/kube-apiserver:v1.29.15", ready, False, "Running", "Node",
                     advertise=endpoint)


class Site:
    """The kubeconfig's server: `/readyz` answers `readyz`; the Endpoints list `addresses`."""

    def __init__(self) -> None:
        self.readyz = "ok"
        self.addresses: list[str] = []

    async def endpoints(self, request: web.Request) -> web.Response:
        ports = [{"name": "https", "port": int(a.rsplit(":", 1)[1])} for a in self.addresses]
        return web.json_response({"subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                                               "ports": [p]} for p in ports]})

    async def ready(self, request: web.Request) -> web.Response:
        return web.Response(text=self.readyz, status=200 if self.readyz == "ok" else 500)


@pytest.fixture
async def setup(tmp_path):
    site = Site()
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/endpoints/kubernetes", site.endpoints)
    app.router.add_get("/readyz", site.ready)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    client = await KubeClient.connect(write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}"))
    sockets: list[socket.socket] = []

    def unreachable(listen: bool) -> str:
        """A loopback address that refuses (bound, not listening) or times out (never
        accepting)."""
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        if listen:
            s.listen(1)
        sockets.append(s)
        return f"127.0.0.1:{s.getsockname()[1]}"

    now = [0.0]
    cluster = KubeCluster(client, monotonic=lambda: now[0])
    yield site, cluster, unreachable, now
    await cluster.close()
    await client.close()
    await runner.cleanup()
    for s in sockets:
        s.close()


async def test_a_refused_address_is_judged_by_its_mirror_pod_and_the_kubeconfig_server(setup):
    site, cluster, unreachable, _ = setup
    address = unreachable(listen=False)
    site.addresses = [address]
    cluster._pods.items["kube-apiserver-cp1"] = apiserver_pod("cp1", address)
    assert await cluster.apiserver_problems() == []
    assert address in cluster.unreachable()
    cluster._pods.items["kube-apiserver-cp1"] = apiserver_pod("cp1", address, ready=False)
    (problem,) = await cluster.apiserver_problems()
    assert problem.startswith(f"kube-apiserver on cp1 is not Ready (its address {address} did "
                              "not answer from here: ")
    cluster._pods.items["kube-apiserver-cp1"] = apiserver_pod("cp1", address)
    site.readyz = "[-]etcd failed: reason withheld"
    (problem,) = await cluster.apiserver_problems()
    assert "(through the kubeconfig's server 127.0.0.1:" in problem


async def test_a_black_holed_address_costs_one_timeout_then_none_until_redial(setup,
                                                                              monkeypatch):
    monkeypatch.setattr(executor_cluster, "READYZ_TIMEOUT", 0.5)
    site, cluster, unreachable, now = setup
    address = unreachable(listen=True)
    site.addresses = [address]
    cluster._pods.items["kube-apiserver-cp1"] = apiserver_pod("cp1", address)
    began = time.monotonic()
    assert await cluster.apiserver_problems() == []
    first = time.monotonic() - began
    assert 0.4 < first < 3
    began = time.monotonic()
    assert await cluster.apiserver_problems() == []
    assert time.monotonic() - began < 0.4  # not dialled again yet
    now[0] += executor_cluster.REDIAL
    began = time.monotonic()
    await cluster.apiserver_problems()
    assert time.monotonic() - began >= 0.4  # dialled again after REDIAL


async def test_an_address_that_answers_is_judged_by_its_own_readyz(setup):
    site, cluster, _, _ = setup
    server = cluster.client.server.split("://", 1)[1]
    site.addresses = [server]
    site.readyz = "[-]poststarthook/rbac failed"
    (problem,) = await cluster.apiserver_problems()
    assert problem.startswith(f"apiserver {server} is not ready: ")
    assert cluster.unreachable() == {}


def test_an_unreachable_address_without_a_mirror_pod_is_a_problem():
    nodes = [NodeView("cp1", internal_ip="127.77.0.10")]
    pods = [apiserver_pod("cp1", "127.77.0.10:6443")]
    assert judge_unreachable("127.77.0.10:6443", "refused", pods, nodes, None, "lb:6443") is None
    # Found by the node's InternalIP when the annotation is missing.
    bare = [apiserver_pod("cp1", "")]
    assert judge_unreachable("127.77.0.10:6443", "refused", bare, nodes, None, "lb:6443") is None
    problem = judge_unreachable("127.77.0.99:6443", "refused", pods, nodes, None, "lb:6443")
    assert problem == ("apiserver 127.77.0.99:6443 did not answer from here (refused) and no "
                       "kube-apiserver mirror pod names it; check that it runs and is reachable")


async def test_an_address_that_answered_then_refuses_is_restarting_for_redial_seconds(setup):
    site, cluster, _, now = setup
    app = web.Application()
    app.router.add_get("/readyz", Site().ready)
    own = web.AppRunner(app)
    await own.setup()
    await web.TCPSite(own, "127.0.0.1", 0).start()
    address = f"127.0.0.1:{own.addresses[0][1]}"
    site.addresses = [address]
    cluster._pods.items["kube-apiserver-cp1"] = apiserver_pod("cp1", address)
    assert await cluster.apiserver_problems() == []
    await own.cleanup()  # its apiserver restarts: the address refuses
    (problem,) = await cluster.apiserver_problems()
    assert problem.startswith(f"apiserver {address} is not ready: ")
    now[0] += executor_cluster.REDIAL
    assert await cluster.apiserver_problems() == []  # refused for long: judged the other way
