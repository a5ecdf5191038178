"""API faults of the lab's apiserver endpoints: refused connections, errors at a rate, slow
answers, closed watches, 410 for old resource versions, the realistic kube-apiserver restart,
the `/lab/v1/faults` control endpoint and the scenario syntax; kubehop's informer survives."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kubehop.lab.api.faults import ApiFaults
from kubehop.lab.api.server import LabServer
from kubehop.lab.clock import VirtualClock
from kubehop.lab.fixtures.specs import oldversion_spec
from kubehop.lab.lab import Lab
from kubehop.lab.scenarios import parse_text
from kubehop.lab.scenarios.schema import ApiFault
from kubehop.model.errors import UsageError
from kubehop.shell.drain.watch import PodInformer
from kubehop.shell.kube.client import KubeClient, RetryPolicy


class Served:
    """One lab endpoint (`cp`) with its faults, and an HTTP session to it."""

    def __init__(self, server: LabServer, faults: ApiFaults, http: aiohttp.ClientSession,
                 clock: VirtualClock) -> None:
        self.server, self.faults, self.http, self.clock = server, faults, http, clock

    @property
    def url(self) -> str:
        return self.server.url

    def add(self, kind: str, **options: Any) -> int:
        return self.faults.add(ApiFault(kind, "cp", options))

    def touch(self) -> None:
        """One store change (a new resourceVersion)."""
        self.server.store.mutate("nodes", "", "oldversion2",
                                 lambda n: n["metadata"]["labels"].update(touched=str(time.time())))

    async def rv(self) -> str:
        async with self.http.get(f"{self.url}/api/v1/pods") as r:
            return (await r.json())["metadata"]["resourceVersion"]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with LabServer(oldversion_spec(), tls=False) as server:
        clock = VirtualClock()  # lab time moves when a test advances it
        faults = ApiFaults(clock, resource_version=lambda: server.store.resource_version, seed=7)
        server.api.faults, server.api.fault_name = faults, "cp"
        faults.register("cp", pause=server.pause, resume=server.resume)
        async with aiohttp.ClientSession() as http:
            yield Served(server, faults, http, clock)
        await faults.stop()


async def settle(seconds: float = 0.01) -> None:
    await asyncio.sleep(seconds)


async def first_line(http: aiohttp.ClientSession, url: str, **params: str) -> dict[str, Any]:
    async with http.get(url, params={"watch": "1", **params}) as r:
        assert r.status == 200
        return json.loads(await asyncio.wait_for(r.content.readline(), 5))


# --- errors, slowness ------------------------------------------------------------------------

async def test_errors_can_hit_only_requests_whose_body_says_so(served: Served) -> None:
    """`body`: a cordon (spec.unschedulable) fails, an annotation PATCH of the node does not,
    and the handler still reads the body it was sent."""
    served.add("api-errors", code=500, count=1, method="PATCH", resource="nodes",
               body="unschedulable")
    await settle()
    headers = {"Content-Type": "application/strategic-merge-patch+json"}
    url = f"{served.url}/api/v1/nodes/oldversion2"
    note = {"metadata": {"annotations": {"kubehop.dev/phase": "drain"}}}
    async with served.http.patch(url, json=note, headers=headers) as r:
        assert r.status == 200
    node = served.server.store.get("nodes", "", "oldversion2")
    assert node["metadata"]["annotations"]["kubehop.dev/phase"] == "drain"
    async with served.http.patch(url, json={"spec": {"unschedulable": True}},
                                 headers=headers) as r:
        assert r.status == 500
    async with served.http.patch(url, json={"spec": {"unschedulable": True}},
                                 headers=headers) as r:
        assert r.status == 200
    assert served.server.store.get("nodes", "", "oldversion2")["spec"]["unschedulable"]


async def test_errors_hit_only_matching_requests_up_to_their_count(served: Served) -> None:
    fid = served.add("api-errors", code=429, count=1, method="PATCH", resource="nodes")
    await settle()
    patch = {"spec": {"unschedulable": True}}
    headers = {"Content-Type": "application/strategic-merge-patch+json"}
    async with served.http.get(f"{served.url}/api/v1/nodes/oldversion2") as r:
        assert r.status == 200  # a GET is not hit
    async with served.http.patch(f"{served.url}/api/v1/nodes/oldversion2", json=patch,
                                 headers=headers) as r:
        # The max-in-flight filter's answer: plain text, Retry-After 1.
        assert (r.status, r.headers["Retry-After"]) == (429, "1")
        assert await r.text() == "Too many requests, please try again later.\n"
    assert not served.server.store.get("nodes", "", "oldversion2")["spec"].get("unschedulable")
    async with served.http.patch(f"{served.url}/api/v1/nodes/oldversion2", json=patch,
                                 headers=headers) as r:
        assert r.status == 200  # the count is spent
    (status,) = served.faults.status()
    assert (status["id"], status["state"], status["hits"]) == (fid, "done", 1)
    assert status["requests"][0]["method"] == "PATCH"
    assert status["requests"][0]["path"] == "/api/v1/nodes/oldversion2"


async def test_errors_at_a_rate_answer_a_status(served: Served) -> None:
    served.add("api-errors", code=500, rate=0.5)
    await settle()
    codes = []
    for _ in range(40):
        async with served.http.get(f"{served.url}/api/v1/namespaces") as r:
            codes.append(r.status)
            if r.status == 500:
                body = await r.json()
                assert (body["kind"], body["reason"], body["code"]) == ("Status",
                                                                       "InternalError", 500)
    assert set(codes) == {200, 500}
    assert 8 <= codes.count(500) <= 32


async def test_slow_answers_come_late_and_end_after_their_seconds(served: Served) -> None:
    served.add("api-slow", delay=200.0, seconds=1000.0, resource="nodes")
    await settle()

    async def status(resource: str) -> int:
        async with served.http.get(f"{served.url}/api/v1/{resource}") as r:
            return r.status

    slow = asyncio.create_task(status("nodes"))
    await settle()
    await served.clock.advance(199)
    assert not slow.done()  # still waiting out its 200 lab seconds
    await served.clock.advance(1)
    assert await asyncio.wait_for(slow, 5) == 200
    assert await asyncio.wait_for(status("pods"), 5) == 200  # another resource: at once
    await served.clock.advance(800)  # the fault's 1000 s are over
    assert await asyncio.wait_for(status("nodes"), 5) == 200  # at once again
    assert served.faults.status()[0]["state"] == "done"


# --- connections and watches -----------------------------------------------------------------

async def test_refuse_closes_the_port_and_resets_open_connections(served: Served) -> None:
    rv = await served.rv()
    watch = asyncio.create_task(first_line(served.http, f"{served.url}/api/v1/pods",
                                           resourceVersion=rv))
    await settle(0.05)
    served.add("api-refuse", seconds=300.0)
    await settle(0.05)
    with pytest.raises(aiohttp.ClientPayloadError):
        await watch  # the open watch lost its connection
    with pytest.raises(aiohttp.ClientConnectorError) as refused:
        await served.http.get(f"{served.url}/version")
    assert isinstance(refused.value.os_error, ConnectionRefusedError)
    await served.clock.advance(300)
    await settle(0.05)
    async with served.http.get(f"{served.url}/version") as r:
        assert r.status == 200  # listening again, on the same port


async def test_close_watches_ends_open_watch_streams(served: Served) -> None:
    rv = await served.rv()

    async def lines() -> int:
        async with served.http.get(f"{served.url}/api/v1/pods",
                                   params={"watch": "1", "resourceVersion": rv}) as r:
            return len([line async for line in r.content])

    watch = asyncio.create_task(lines())
    await settle(0.05)
    served.add("api-close-watches")
    assert await asyncio.wait_for(watch, 5) == 0  # a clean end of the stream
    async with served.http.get(f"{served.url}/version") as r:
        assert r.status == 200


async def test_gone_expires_watches_and_continued_lists_from_before(served: Served) -> None:
    rv = await served.rv()
    async with served.http.get(f"{served.url}/api/v1/pods", params={"limit": "2"}) as r:
        token = (await r.json())["metadata"]["continue"]
    served.touch()
    served.add("api-gone")
    await settle()
    event = await first_line(served.http, f"{served.url}/api/v1/pods", resourceVersion=rv)
    assert event["type"] == "ERROR"
    new = served.server.store.resource_version
    assert event["object"]["message"] == f"too old resource version: {rv} ({new})"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
    async with served.http.get(f"{served.url}/api/v1/pods",
                               params={"limit": "2", "continue": token}) as r:
        assert r.status == 410
        assert (await r.json())["message"].startswith("The provided continue parameter is too "
                                                      "old to display a consistent list result.")
    # A fresh list, and a watch from its version, are served.
    rv = await served.rv()
    watch = asyncio.create_task(first_line(served.http, f"{served.url}/api/v1/nodes",
                                           resourceVersion=rv))
    await settle(0.05)
    served.touch()
    assert (await watch)["type"] == "MODIFIED"


async def test_restart_refuses_then_expires_watches_from_before_it(served: Served) -> None:
    rv = await served.rv()
    served.add("api-restart", seconds=100.0)
    await settle()
    with pytest.raises(aiohttp.ClientConnectorError):
        await served.http.get(f"{served.url}/version")
    served.touch()  # the cluster moves on while this apiserver is down
    await served.clock.advance(100)
    await settle(0.05)
    event = await first_line(served.http, f"{served.url}/api/v1/pods", resourceVersion=rv)
    assert (event["type"], event["object"]["code"]) == ("ERROR", 410)


# --- the control endpoint --------------------------------------------------------------------

async def test_control_endpoint_adds_lists_and_removes_faults(served: Served) -> None:
    url = f"{served.url}/lab/v1/faults"
    async with served.http.post(url, json={"kind": "api-errors", "apiserver": "cp",
                                           "code": 503, "rate": 1, "resource": "pods"}) as r:
        assert r.status == 201
        added = await r.json()
    assert (added["kind"], added["code"], added["rate"], added["seconds"]) == (
        "api-errors", 503, 1.0, 0.0)
    await settle()
    async with served.http.get(f"{served.url}/api/v1/pods") as r:
        assert r.status == 503
    async with served.http.get(url) as r:
        assert [f["hits"] for f in (await r.json())["faults"]] == [1]
    async with served.http.delete(f"{url}/{added['id']}") as r:
        assert (r.status, (await r.json())["state"]) == (200, "done")
    async with served.http.get(f"{served.url}/api/v1/pods") as r:
        assert r.status == 200
    for body, message in (
        ({"kind": "api-errors", "apiserver": "cp-9"}, "fault: apiserver: expected a control-plane "
                                                      "node or all (cp, all), got 'cp-9'"),
        ({"kind": "api-errors", "rate": 3}, "fault: rate: expected a rate from 0 to 1, got 3"),
        ({"kind": "api-slow", "delay": "5"}, "fault: delay: expected a number, got the string "
                                             "'5'"),
        ({"kind": "api-refuse", "code": 500}, "fault: code: unknown field for api-refuse "
                                              "(known: apiserver, after, seconds)"),
    ):
        async with served.http.post(url, json=body) as r:
            assert (r.status, (await r.json())["message"]) == (400, message)
    async with served.http.delete(f"{url}/99") as r:
        assert r.status == 404


# --- scenarios -------------------------------------------------------------------------------

SCENARIO = """apiVersion: kubehop.dev/v1
kind: LabScenario
name: flaky
cluster: {loadBalancer: true}
nodes:
  - {name: cp, count: 2, roles: [control-plane]}
  - {name: w1}
faults:
  - {kind: node-never-ready, node: w1, after: kubelet-restart}
  - {kind: api-errors, apiserver: cp-1, code: 429, rate: 0.25, method: patch}
  - {kind: api-restart, apiserver: all, after: 30, seconds: 20}
"""


def test_scenario_api_faults_take_numbers_and_name_an_apiserver() -> None:
    sc = parse_text(SCENARIO, "flaky.yaml")
    assert [f.kind for f in sc.faults] == ["node-never-ready"]
    errors, restart = sc.api_faults
    assert (errors.apiserver, errors.options["code"], errors.options["rate"],
            errors.options["method"]) == ("cp-1", 429, 0.25, "PATCH")
    assert (restart.apiserver, restart.options) == ("all", {"after": 30.0, "seconds": 20.0})
    assert [f["kind"] for f in sc.to_dict()["faults"]] == ["node-never-ready", "api-errors",
                                                           "api-restart"]


@pytest.mark.parametrize(("fault", "problem"), [
    ("{kind: api-errors, apiserver: cp-3}", "faults[0].apiserver: expected a control-plane node "
                                            "or all (cp-1, cp-2, all, loadbalancer), got 'cp-3'"),
    ("{kind: api-errors, apiserver: all, code: 404}",
     "faults[0].code: expected one of 429, 500, 502, 503, 504, got 404"),
    ("{kind: api-slow, apiserver: all, seconds: -1}",
     "faults[0].seconds: expected lab seconds >= 0, got -1"),
    ("{kind: api-errors, apiserver: all, count: 1.5}",
     "faults[0].count: expected a whole number >= 0, got 1.5"),
    ("{kind: api-refuse, node: cp-1}", "faults[0].node: unknown field"),
    ("{kind: api-gone}", "faults[0].apiserver: required field is missing"),
])
def test_scenario_api_fault_mistakes_are_one_line(fault: str, problem: str) -> None:
    text = SCENARIO.split("faults:")[0] + f"faults:\n  - {fault}\n"
    with pytest.raises(UsageError) as e:
        parse_text(text, "flaky.yaml")
    assert "\n" not in str(e.value)
    assert problem in str(e.value)


def test_loadbalancer_needs_a_load_balancer() -> None:
    text = SCENARIO.replace("cluster: {loadBalancer: true}\n", "").split("faults:")[0]
    with pytest.raises(UsageError) as e:
        parse_text(text + "faults:\n  - {kind: api-gone, apiserver: loadbalancer}\n", "x.yaml")
    assert "faults[0].apiserver: this cluster has no load balancer" in str(e.value)


# --- the kube-apiserver restart in a lab -----------------------------------------------------

HA = """apiVersion: kubehop.dev/v1
kind: LabScenario
name: ha-small
cluster: {loadBalancer: true}
nodes:
  - {name: cp, count: 2, roles: [control-plane]}
  - {name: w1}
"""
SED = ("sudo sed -i 's#kube-apiserver:v1.28.9#kube-apiserver:v1.28.15#' "
       "/etc/kubernetes/manifests/kube-apiserver.yaml")


async def test_a_static_pod_restart_refuses_closes_watches_and_expires_old_versions(tmp_path):
    clock = VirtualClock()  # the restart takes lab time only when the test advances it
    async with Lab(parse_text(HA, "ha-small.yaml"), clock=clock, ssh=False, tls=False,
                   state_dir=tmp_path / "lab") as lab, aiohttp.ClientSession() as http:
        cp1 = lab.endpoints["cp-1"]
        async with http.get(f"{cp1}/api/v1/pods") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]

        async def watch() -> list[bytes]:
            async with http.get(f"{cp1}/api/v1/pods",
                                params={"watch": "1", "resourceVersion": rv}) as r:
                return [line async for line in r.content]

        open_watch = asyncio.create_task(watch())
        await settle(0.05)
        assert (await lab.agents.run("cp-1", SED)).exit_code == 0
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(open_watch, 5)  # the apiserver died under it
        await settle(0.05)
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.get(f"{cp1}/version")  # nothing listens: refused, not 503
        for _ in range(4):  # the load balancer sends everything to cp-2 meanwhile
            async with http.get(f"{lab.url}/version") as r:
                assert r.status == 200
        await clock.advance(lab.spec.timing.get("staticPodRestart", 20))
        await lab.agents.idle()
        await settle(0.05)
        async with http.get(f"{cp1}/version") as r:
            assert (await r.json())["gitVersion"] == "v1.28.15"
        event = await first_line(http, f"{cp1}/api/v1/pods", resourceVersion=rv)
        assert (event["type"], event["object"]["code"], event["object"]["reason"]) == (
            "ERROR", 410, "Expired")
        assert event["object"]["message"].startswith(f"too old resource version: {rv} (")
        # cp-2 was not restarted: its watch cache still reaches back.
        event = await first_line(http, f"{lab.endpoints['cp-2']}/api/v1/pods",
                                 resourceVersion=rv)
        assert event["type"] in ("ADDED", "MODIFIED", "DELETED")


async def test_kubehops_pod_informer_relists_across_a_restart(tmp_path):
    async with Lab(parse_text(HA, "ha-small.yaml"), clock=VirtualClock(auto=True), ssh=False,
                   tls=False, state_dir=tmp_path / "lab") as lab:
        kubeconfig = tmp_path / "cp-1.kubeconfig"
        LabServer.write_kubeconfig(lab.servers["cp-1"], kubeconfig)
        client = await KubeClient.connect(str(kubeconfig),
                                          retry=RetryPolicy(attempts=20, base_delay=0.02))
        informer = PodInformer(client, "w1")
        try:
            await informer.start()
            before = len(informer.items)
            assert (await lab.agents.run("cp-1", SED)).exit_code == 0
            await lab.agents.idle()
            lab.store.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                      "metadata": {"name": "late", "namespace": "default"},
                                      "spec": {"nodeName": "w1",
                                               "containers": [{"name": "c", "image": "x"}]}})
            seen = await informer.wait_for(lambda: len(informer.items) == before + 1, 10)
            assert seen, "the informer missed a pod created after the restart"
            assert informer.relists >= 1  # the watch broke and 410 made it list again
        finally:
            await informer.stop()
            await client.close()


async def test_the_load_balancer_applies_the_faults_of_the_apiserver_it_chose(tmp_path):
    async with Lab(parse_text(HA, "ha-small.yaml"), clock=VirtualClock(auto=True), ssh=False,
                   tls=False, state_dir=tmp_path / "lab") as lab, aiohttp.ClientSession() as http:
        lab.faults.add(ApiFault("api-errors", "cp-1", {"code": 502}))
        await settle()
        through = []
        for _ in range(6):
            async with http.get(f"{lab.url}/api/v1/namespaces") as r:
                through.append(r.status)
        assert sorted(through) == [200, 200, 200, 502, 502, 502]  # round-robin over two
        async with http.get(f"{lab.endpoints['cp-2']}/api/v1/namespaces") as r:
            assert r.status == 200
        lab.faults.add(ApiFault("api-refuse", "all", {"seconds": 0.0}))
        await settle(0.05)
        with pytest.raises(aiohttp.ClientError):  # no apiserver listens: the balancer hangs up
            await http.get(f"{lab.url}/version")
        lab.faults.clear()
        await settle(0.05)
        async with http.get(f"{lab.url}/version") as r:
            assert r.status == 200
