"""The one way to read Kubernetes: pure request builders, typed errors, the ClusterReader
against a tiny API server (paging, the one apiserver discovery, per-apiserver clients), and the
FakeReader's list, watch and eviction rules."""

from __future__ import annotations

import json

import msgspec
import pytest
from aiohttp import web

from kubehop.shell.kube import requests as rq
from kubehop.shell.kube.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    Unreachable,
    api_error,
)
from kubehop.shell.kube.fake import FakeReader, parse_selector
from kubehop.shell.kube.reader import ClusterReader, decode_pods, pdb_status
from kubehop.shell.kube.wire import PdbWire
from tests.unit.shell.test_kube_client import make_client  # noqa: F401 (fixture)


@pytest.mark.parametrize(("request_", "method", "path", "query"), [
    (rq.list_pods(node="w1"), "GET", "/api/v1/pods", {"fieldSelector": "spec.nodeName=w1"}),
    (rq.list_pods("web", label_selector="app=a"), "GET", "/api/v1/namespaces/web/pods",
     {"labelSelector": "app=a"}),
    (rq.list_pdbs("web"), "GET", "/apis/policy/v1/namespaces/web/poddisruptionbudgets", {}),
    (rq.evict_pod("web", "a-1", 30), "POST", "/api/v1/namespaces/web/pods/a-1/eviction", {}),
    (rq.delete_pod("web", "a-1", 0), "DELETE", "/api/v1/namespaces/web/pods/a-1",
     {"gracePeriodSeconds": "0"}),
    (rq.get_cnpg_cluster("db", "pg"), "GET",
     "/apis/postgresql.cnpg.io/v1/namespaces/db/clusters/pg", {}),
    (rq.kubeadm_config(), "GET", "/api/v1/namespaces/kube-system/configmaps/kubeadm-config",
     {}),
    (rq.replace_lease("kube-system", "kubehop-upgrade", {}), "PUT",
     "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kubehop-upgrade", {}),
    (rq.get_node("a/b"), "GET", "/api/v1/nodes/a%2Fb", {}),
])
def test_requests_are_built_purely(request_, method, path, query):
    assert (request_.method, request_.path, request_.query) == (method, path, query)


def test_eviction_and_cordon_bodies_follow_kubectl():
    assert rq.evict_pod("web", "a-1", 30).body == {
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": "a-1", "namespace": "web"},
        "deleteOptions": {"gracePeriodSeconds": 30}}
    assert rq.evict_pod("web", "a-1").body["deleteOptions"] == {}
    uncordon = rq.set_unschedulable("w1", False)
    assert uncordon.body == {"spec": {"unschedulable": None}}
    assert uncordon.content_type == rq.STRATEGIC_MERGE


def test_pages_and_watches_add_their_parameters():
    listed = rq.list_pods(node="w1")
    assert rq.page(listed, "tok").query == {"fieldSelector": "spec.nodeName=w1",
                                           "limit": "500", "continue": "tok"}
    assert rq.watch(listed, "42", 240).query["resourceVersion"] == "42"


@pytest.mark.parametrize(("status", "kind"), [
    (0, Unreachable), (401, Unauthorized), (403, Forbidden), (404, NotFound), (409, Conflict),
    (410, Gone), (429, TooManyRequests), (500, ServerError), (503, ServerError), (422, ApiError),
])
def test_errors_are_typed_by_status(status, kind):
    body = json.dumps({"kind": "Status", "message": "nope", "reason": "X"}).encode()
    error = api_error("GET", "/api/v1/nodes/w1", status, body, "https://127.77.0.1:6443")
    assert type(error) is kind
    assert error.status == status
    assert isinstance(error, ApiError)


def test_pods_and_pdbs_decode_to_what_the_drain_reads():
    page = json.dumps({"items": [{
        "metadata": {"namespace": "web", "name": "a-1", "uid": "u1", "labels": {"app": "a"},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "a", "controller": True}],
                     "deletionTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"nodeName": "w1", "volumes": [{"name": "s", "emptyDir": {}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}]})
    (pod,) = decode_pods(page.encode())
    assert (pod.key, pod.uid, pod.node, pod.owner_kind, pod.ready, pod.empty_dir) == \
        ("web/a-1", "u1", "w1", "ReplicaSet", True, True)
    assert pod.labels == (("app", "a"),)
    assert pod.deletion_time == 1714557600.0
    pdb = pdb_status(msgspec.convert({"metadata": {"namespace": "web", "name": "a",
                                                   "generation": 3},
                                      "spec": {"selector": {}},
                                      "status": {"observedGeneration": 2}}, PdbWire))
    assert pdb.selector == {}
    assert not pdb.processed
    assert pdb_status(PdbWire()).selector is None  # a null selector selects nothing


async def test_the_reader_discovers_apiservers_from_endpoints_and_slices(make_client):  # noqa: F811
    routes = web.RouteTableDef()

    @routes.get("/api/v1/namespaces/default/endpoints/kubernetes")
    async def endpoints(request: web.Request) -> web.Response:
        return web.json_response({"subsets": [{"addresses": [{"ip": "127.77.0.1"}],
                                               "ports": [{"name": "https", "port": 6443}]}]})

    @routes.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices")
    async def slices(request: web.Request) -> web.Response:
        assert request.query["labelSelector"] == "kubernetes.io/service-name=kubernetes"
        return web.json_response({"items": [{
            "endpoints": [{"addresses": ["127.77.0.1"]}, {"addresses": ["::1"]}],
            "ports": [{"name": "https", "port": 6443}, {"name": "other", "port": 1}]}]})

    client, _ = await make_client(routes)
    reader = ClusterReader(client)
    assert await reader.apiserver_endpoints() == ["127.77.0.1:6443", "[::1]:6443"]


async def test_a_reader_of_one_apiserver_shares_credentials_and_is_closed(make_client):  # noqa: F811
    routes = web.RouteTableDef()

    @routes.get("/readyz")
    async def readyz(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer secret-token-value"
        return web.Response(text="ok\n")

    client, _ = await make_client(routes)
    async with ClusterReader(client).for_endpoint(client.netloc) as direct:
        assert direct.server == client.server
        assert await direct.readyz() == "ok"
    assert await ClusterReader(client).readyz() == "ok"  # the shared client still works


async def test_a_missing_object_raises_not_found(make_client):  # noqa: F811
    client, _ = await make_client(web.RouteTableDef())
    with pytest.raises(NotFound):
        await ClusterReader(client).node("w9")


def test_the_fakes_selector_parser_reads_what_kubehop_sends():
    selector = parse_selector("app=a,tier in (x,y),!legacy,env!=dev")
    assert selector.matches({"app": "a", "tier": "x"})
    assert not selector.matches({"app": "a", "tier": "z"})
    assert not selector.matches({"app": "a", "tier": "x", "legacy": "1"})
    assert not selector.matches({"app": "a", "tier": "x", "env": "dev"})


async def test_the_fake_lists_watches_and_refuses_evictions_as_the_api_does():
    api = FakeReader()
    api.add_pod("web", "a-1", node="w1", labels={"app": "a"})
    api.add_pod("web", "b-1", node="w2", labels={"app": "b"})
    assert [p.key for p in await api.pods(node="w1")] == ["web/a-1"]
    assert [p.key for p in await api.pods("web", label_selector="app=b")] == ["web/b-1"]
    api.add_pdb("web", "a", {"matchLabels": {"app": "a"}}, allowed=0)
    with pytest.raises(TooManyRequests):
        await api.evict("web", "a-1")
    listed = rq.list_pods(node="w1")
    rv = json.loads(await api.page(listed))["metadata"]["resourceVersion"]
    api.set_pdb("web", "a", allowed=1)
    await api.evict("web", "a-1")
    watch = api.watch(listed, rv, 240)
    event = json.loads(await anext(watch))
    assert (event["type"], event["object"]["metadata"]["name"]) == ("DELETED", "a-1")
    await watch.aclose()
    assert (await api.pdbs("web"))[0].disruptions_allowed == 0


def test_only_gateway_and_unavailable_server_errors_are_transient():
    assert [ServerError("x", status=s).transient for s in (500, 502, 503, 504)] == \
        [False, True, True, True]
