"""The drain's list+watch cache against a tiny API server: a watch that fails (410 Gone, a
dropped connection) is followed by a fresh list, so no deletion is missed."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from kubehop.shell.drain.watch import PodInformer
from kubehop.shell.kube.client import KubeClient
from tests.unit.shell.test_kube_client import write_kubeconfig


def pod(name: str, rv: str, **labels: str) -> dict:
    return {"metadata": {"namespace": "web", "name": name, "uid": f"uid-{name}",
                         "resourceVersion": rv, "labels": labels},
            "spec": {"nodeName": "w1"}, "status": {"phase": "Running"}}


@pytest.fixture
async def serve(tmp_path):
    runners: list[web.AppRunner] = []
    clients: list[KubeClient] = []

    async def start(routes: web.RouteTableDef) -> KubeClient:
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        client = await KubeClient.connect(write_kubeconfig(tmp_path / "kubeconfig",
                                                           f"http://127.0.0.1:{port}"))
        clients.append(client)
        return client

    yield start
    for c in clients:
        await c.close()
    for r in runners:
        await r.cleanup()


async def test_a_410_during_the_watch_makes_the_informer_list_again(serve):
    lists = [[pod("a", "10"), pod("b", "10")], [pod("b", "20")]]  # `a` went while unwatched
    seen: list[dict[str, str]] = []
    routes = web.RouteTableDef()

    @routes.get("/api/v1/pods")
    async def pods(request: web.Request) -> web.StreamResponse:
        assert request.query["fieldSelector"] == "spec.nodeName=w1"
        if request.query.get("watch") != "true":
            items = lists.pop(0) if len(lists) > 1 else lists[0]
            rv = items[0]["metadata"]["resourceVersion"]
            return web.json_response({"metadata": {"resourceVersion": rv}, "items": items})
        seen.append(dict(request.query))
        resp = web.StreamResponse()
        await resp.prepare(request)
        if len(seen) == 1:
            status = {"kind": "Status", "code": 410, "message": "too old resource version"}
            await resp.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
        else:
            event = {"type": "MODIFIED", "object": pod("b", "21", moved="yes")}
            await resp.write(json.dumps(event).encode() + b"\n")
            await resp.write(b"\n")  # keep-alive blank line
            event = {"type": "DELETED", "object": pod("b", "22")}
            await resp.write(json.dumps(event).encode() + b"\n")
        return resp

    informer = await PodInformer(await serve(routes), "w1").start()
    try:
        assert set(informer.items) == {"uid-a", "uid-b"}
        assert await informer.wait_for(lambda: "uid-a" not in informer.items, timeout=5)
        assert informer.relists == 1
        assert await informer.wait_for(lambda: not informer.items, timeout=5)
        assert seen[0]["resourceVersion"] == "10"
        assert seen[1]["resourceVersion"] == "20"
        assert informer.touched["uid-b"] == informer.changes
    finally:
        await informer.stop()


async def test_wait_for_times_out_with_the_predicate_value(serve):
    routes = web.RouteTableDef()

    @routes.get("/api/v1/pods")
    async def pods(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") != "true":
            return web.json_response({"metadata": {"resourceVersion": "1"},
                                      "items": [pod("a", "1")]})
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"\n")
        return resp

    informer = await PodInformer(await serve(routes), "w1").start()
    try:
        assert await informer.wait_for(lambda: True)
        assert not await informer.wait_for(lambda: "uid-a" not in informer.items, timeout=0.2)
    finally:
        await informer.stop()
