"""The cluster API facade against a tiny local HTTP server: retries, paging, error lines."""

from __future__ import annotations

import json
import socket

import pytest
import yaml
from aiohttp import web

from kubehop.model.errors import UsageError
from kubehop.shell.kube.client import KubeClient, RetryPolicy
from kubehop.shell.kube.errors import ApiError


def write_kubeconfig(path, server: str, context: str = "lab") -> str:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": f"c-{context}", "cluster": {"server": server}}],
        "users": [{"name": f"u-{context}", "user": {"token": "secret-token-value"}}],
        "contexts": [{"name": context,
                      "context": {"cluster": f"c-{context}", "user": f"u-{context}"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
async def make_client(tmp_path):
    clients: list[KubeClient] = []
    runners: list[web.AppRunner] = []

    async def make(routes: web.RouteTableDef) -> tuple[KubeClient, list[float]]:
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        runners.append(runner)
        sleeps: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            sleeps.append(seconds)

        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
        client = await KubeClient.connect(kubeconfig, sleep=fake_sleep,
                                          retry=RetryPolicy(attempts=4))
        clients.append(client)
        return client, sleeps

    yield make
    for c in clients:
        await c.close()
    for r in runners:
        await r.cleanup()


async def test_429_is_retried_after_the_servers_retry_after(make_client):
    calls = []
    routes = web.RouteTableDef()

    @routes.get("/api/v1/nodes")
    async def nodes(request):
        calls.append(request.headers.get("Authorization"))
        if len(calls) < 3:
            return web.json_response({"kind": "Status", "message": "slow down"}, status=429,
                                     headers={"Retry-After": "2"})
        return web.json_response({"kind": "NodeList", "items": []})

    client, sleeps = await make_client(routes)
    assert (await client.get_json("/api/v1/nodes"))["kind"] == "NodeList"
    assert sleeps == [2.0, 2.0]
    assert calls[0] == "Bearer secret-token-value"


async def test_5xx_backs_off_then_gives_up_with_one_line(make_client):
    routes = web.RouteTableDef()

    @routes.get("/version")
    async def version(request):
        return web.json_response({"kind": "Status", "message": "etcd down",
                                  "reason": "InternalError"}, status=500)

    client, sleeps = await make_client(routes)
    with pytest.raises(ApiError) as exc:
        await client.get_json("/version")
    assert len(sleeps) == 3
    assert sleeps == sorted(sleeps)  # exponential backoff grows
    assert "500 InternalError: etcd down" in str(exc.value)
    assert "\n" not in str(exc.value)


async def test_403_names_the_missing_permission_and_is_not_retried(make_client):
    routes = web.RouteTableDef()
    message = ('pods is forbidden: User "dev" cannot list resource "pods" in API group "" '
               'at the cluster scope')

    @routes.get("/api/v1/pods")
    async def pods(request):
        return web.json_response({"kind": "Status", "message": message, "reason": "Forbidden",
                                  "code": 403}, status=403)

    client, sleeps = await make_client(routes)
    with pytest.raises(ApiError) as exc:
        await client.get_json("/api/v1/pods")
    assert sleeps == []
    assert exc.value.status == 403
    assert 'cannot list resource "pods"' in str(exc.value)


async def test_an_eviction_refusal_is_not_retried_when_asked(make_client):
    routes = web.RouteTableDef()

    @routes.post("/api/v1/namespaces/web/pods/p/eviction")
    async def evict(request):
        return web.json_response({"kind": "Status", "reason": "TooManyRequests",
                                  "message": "Cannot evict pod"}, status=429)

    client, sleeps = await make_client(routes)
    with pytest.raises(ApiError) as exc:
        await client.request("POST", "/api/v1/namespaces/web/pods/p/eviction",
                             body={"kind": "Eviction"}, retry=False)
    assert exc.value.status == 429
    assert sleeps == []


async def test_list_pages_follows_continue_tokens(make_client):
    routes = web.RouteTableDef()
    seen = []

    @routes.get("/api/v1/pods")
    async def pods(request):
        seen.append(dict(request.query))
        start = int(request.query.get("continue") or 0)
        limit = int(request.query["limit"])
        items = [{"metadata": {"name": f"p{i}"}} for i in range(start, min(start + limit, 7))]
        token = str(start + limit) if start + limit < 7 else ""
        return web.json_response({"kind": "PodList", "metadata": {"continue": token},
                                  "items": items})

    client, _ = await make_client(routes)
    names = []
    async for page in client.list_pages("/api/v1/pods", {"fieldSelector": "spec.nodeName=n1"},
                                        limit=3):
        names += [i["metadata"]["name"] for i in json.loads(page)["items"]]
    assert names == [f"p{i}" for i in range(7)]
    assert [q.get("continue") for q in seen] == [None, "3", "6"]
    assert all(q["fieldSelector"] == "spec.nodeName=n1" for q in seen)


async def test_an_expired_continue_token_lists_again_unpaged(make_client):
    """The apiserver restarted mid-list: its continue token answers 410 Gone, and the list
    starts over in one request (client-go's pager, FullListIfExpired)."""
    routes = web.RouteTableDef()
    seen = []

    @routes.get("/api/v1/pods")
    async def pods(request):
        seen.append(dict(request.query))
        if request.query.get("continue"):
            return web.json_response({"kind": "Status", "reason": "Expired", "code": 410,
                                      "message": "The provided continue parameter is too old"},
                                     status=410)
        limit = int(request.query.get("limit") or 7)
        items = [{"metadata": {"name": f"p{i}"}} for i in range(min(limit, 7))]
        token = "3" if limit < 7 else ""
        return web.json_response({"kind": "PodList", "metadata": {"continue": token},
                                  "items": items})

    client, _ = await make_client(routes)
    names = await client.list_items(
        "/api/v1/pods", {"fieldSelector": "spec.nodeName=n1"},
        lambda page: [i["metadata"]["name"] for i in json.loads(page)["items"]], limit=3)
    assert names == [f"p{i}" for i in range(7)]
    assert [(q.get("limit"), q.get("continue")) for q in seen] == [
        ("3", None), ("3", "3"), (None, None)]
    assert all(q["fieldSelector"] == "spec.nodeName=n1" for q in seen)


async def test_unreachable_server_is_one_clear_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}")

    async def no_sleep(_: float) -> None:
        return None

    async with await KubeClient.connect(kubeconfig, sleep=no_sleep) as client:
        with pytest.raises(ApiError) as exc:
            await client.get_json("/version")
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}" in str(exc.value)


async def test_missing_kubeconfig_and_unknown_context_are_usage_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(UsageError, match="no kubeconfig found"):
        await KubeClient.connect(str(tmp_path / "missing"))
    kubeconfig = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    with pytest.raises(UsageError, match="context 'nope'"):
        await KubeClient.connect(kubeconfig, context="nope")


async def test_kubeconfig_env_merges_several_files(tmp_path, monkeypatch):
    first = write_kubeconfig(tmp_path / "a", "http://127.0.0.1:1111", context="one")
    second = write_kubeconfig(tmp_path / "b", "http://127.0.0.1:2222", context="two")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    async with await KubeClient.connect(None, context="two") as client:
        assert client.server == "http://127.0.0.1:2222"
