"""The lab API over HTTP (plain, in-process): status codes and shapes, paging, watch, discovery,
tables, patches, deletes, evictions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubehop.lab.api.app import LabApi
from kubehop.lab.api.store import Store
from kubehop.lab.api.target import parse_path
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.fixtures.specs import oldversion_spec

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;" \
        "g=meta.k8s.io,application/json"
PROTOBUF_FIRST = "application/vnd.kubernetes.protobuf,application/json"


@pytest.fixture
async def http() -> AsyncIterator[tuple[TestClient, LabApi]]:
    store = Store()
    populate(oldversion_spec(), store)
    api = LabApi(store, version="v1.28.9")
    async with TestClient(TestServer(api.app())) as client:
        yield client, api


async def body(resp: Any) -> Any:
    return json.loads(await resp.read())


async def test_version_and_health(http: tuple[TestClient, LabApi]) -> None:
    c, api = http
    v = await body(await c.get("/version"))
    assert set(v) == {"major", "minor", "gitVersion", "gitCommit", "gitTreeState", "buildDate",
                      "goVersion", "compiler", "platform"}
    assert (v["major"], v["minor"], v["gitVersion"]) == ("1", "28", "v1.28.9")
    api.version = "v1.29.4"
    assert (await body(await c.get("/version")))["minor"] == "29"
    for path in ("/healthz", "/readyz", "/livez", "/readyz/etcd"):
        r = await c.get(path)
        assert (r.status, await r.text()) == (200, "ok")


async def test_not_found_status_shape(http: tuple[TestClient, LabApi]) -> None:
    c, _ = http
    r = await c.get("/api/v1/namespaces/web/pods/nope")
    assert r.status == 404
    assert await body(r) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"}, "code": 404,
    }
    r = await c.get("/apis/apps/v1/namespaces/web/deployments/nope")
    assert (await body(r))["message"] == 'deployments.apps "nope" not found'
    assert (await c.get("/apis/nothing.io/v1/things")).status == 404
    assert (await c.get("/api/v1/namespaces/web/pods/p/nosuchsub")).status == 404


async def test_method_not_allowed(http: tuple[TestClient, LabApi]) -> None:
    c, _ = http
    r = await c.post("/api/v1/nodes/oldversion1", json={})
    assert r.status == 405
    assert (await body(r))["reason"] == "MethodNotAllowed"


async def test_discovery_legacy_and_aggregated(http: tuple[TestClient, LabApi]) -> None:
    c, _ = http
    legacy = await body(await c.get("/api", headers={"Accept": "application/json"}))
    assert legacy["kind"] == "APIVersions"
    groups = await body(await c.get("/apis"))
    assert "policy" in {g["name"] for g in groups["groups"]}
    core = await body(await c.get("/api/v1"))
    eviction = next(r for r in core["resources"] if r["name"] == "pods/eviction")
    assert (eviction["group"], eviction["version"], eviction["kind"]) == ("policy", "v1",
                                                                           "Eviction")
    assert (await body(await c.get("/apis/policy")))["kind"] == "APIGroup"
    for version in ("v2", "v2beta1"):
        accept = (f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList,"
                  "application/json")
        r = await c.get("/apis", headers={"Accept": accept})
        assert r.headers["Content-Type"] == (
            f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
        doc = await body(r)
        assert doc["apiVersion"] == f"apidiscovery.k8s.io/{version}"
        assert {i["metadata"]["name"] for i in doc["items"]} >= {"apps", "policy",
                                                                 "postgresql.cnpg.io"}
        core = await body(await c.get("/api", headers={"Accept": accept}))
        pods = next(r for r in core["items"][0]["versions"][0]["resources"]
                    if r["resource"] == "pods")
        assert {"subresource": "eviction", "verbs": ["create"],
                "responseKind": {"group": "policy", "version": "v1", "kind": "Eviction"}} in \
            pods["subresources"]


async def test_paging_over_http(http: tuple[TestClient, LabApi]) -> None:
    c, api = http
    names, token, pages = [], "", 0
    while True:
        params = {"limit": "4"} | ({"continue": token} if token else {})
        page = await body(await c.get("/api/v1/pods", params=params))
        assert page["kind"] == "PodList"
        names += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue", "")
        pages += 1
        if not token:
            break
    assert len(names) == len(set(names)) == api.store.count("pods")
    assert pages == -(-api.store.count("pods") // 4)
    bad = await c.get("/api/v1/pods", params={"limit": "4", "continue": "garbage"})
    assert bad.status == 400
    assert (await body(bad))["reason"] == "BadRequest"
    on_node = await body(await c.get("/api/v1/pods", params={
        "fieldSelector": "spec.nodeName=oldversion3", "labelSelector": "app=frontend"}))
    assert {p["spec"]["nodeName"] for p in on_node["items"]} == {"oldversion3"}


async def test_tables_and_protobuf_accept(http: tuple[TestClient, LabApi]) -> None:
    c, _ = http
    t = await body(await c.get("/api/v1/nodes", headers={"Accept": TABLE}))
    assert t["kind"] == "Table"
    assert [r["cells"][0] for r in t["rows"]] == ["oldversion1", "oldversion2", "oldversion3"]
    one = await body(await c.get("/api/v1/nodes/oldversion1", headers={"Accept": TABLE}))
    assert one["rows"][0]["cells"][2] == "control-plane"
    r = await c.get("/api/v1/nodes/oldversion1", headers={"Accept": PROTOBUF_FIRST})
    assert r.headers["Content-Type"].startswith("application/json")
    assert (await body(r))["kind"] == "Node"


async def test_create_update_conflict_and_validation(http: tuple[TestClient, LabApi]) -> None:
    c, _ = http
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    created = await c.post("/api/v1/namespaces/web/configmaps", json=cm)
    assert created.status == 201
    first = await body(created)
    assert first["metadata"]["namespace"] == "web"
    assert (await c.post("/api/v1/namespaces/web/configmaps", json=cm)).status == 409
    first["data"] = {"a": "2"}
    updated = await c.put("/api/v1/namespaces/web/configmaps/c", json=first)
    assert updated.status == 200
    stale = await c.put("/api/v1/namespaces/web/configmaps/c", json=first)
    assert stale.status == 409
    assert (await body(stale))["reason"] == "Conflict"
    bad = dict(cm, metadata={"name": "Bad_Name"})
    invalid = await c.post("/api/v1/namespaces/web/configmaps", json=bad)
    assert invalid.status == 422
    assert (await body(invalid))["message"].startswith('ConfigMap "Bad_Name" is invalid: '
                                                       "metadata.name: Invalid value")
    nons = await c.post("/api/v1/namespaces/nowhere/configmaps", json=cm)
    assert (nons.status, (await body(nons))["message"]) == (404, 'namespaces "nowhere" not found')
    wrong = await c.put("/api/v1/namespaces/web/configmaps/other", json=first)
    assert wrong.status == 400


async def test_patch_flavours(http: tuple[TestClient, LabApi]) -> None:
    c, api = http
    url = "/api/v1/nodes/oldversion2"
    cordon = await c.patch(url, data=b'{"spec":{"unschedulable":true}}',
                           headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert (await body(cordon))["spec"]["unschedulable"] is True
    await c.patch(url, data=b'{"spec":{"unschedulable":null}}',
                  headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert "unschedulable" not in api.store.get("nodes", "", "oldversion2")["spec"]
    merged = await c.patch(url, data=b'{"metadata":{"labels":{"x":"1"}}}',
                           headers={"Content-Type": "application/merge-patch+json"})
    assert (await body(merged))["metadata"]["labels"]["x"] == "1"
    jp = await c.patch(url, data=b'[{"op":"remove","path":"/metadata/labels/x"}]',
                       headers={"Content-Type": "application/json-patch+json"})
    assert "x" not in (await body(jp))["metadata"]["labels"]
    failed = await c.patch(url, data=b'[{"op":"test","path":"/spec/podCIDR","value":"no"}]',
                           headers={"Content-Type": "application/json-patch+json"})
    assert failed.status == 422
    stale = await c.patch(url, data=b'{"metadata":{"resourceVersion":"1"}}',
                          headers={"Content-Type": "application/merge-patch+json"})
    assert stale.status == 409
    unknown = await c.patch(url, data=b"{}", headers={"Content-Type": "text/plain"})
    assert unknown.status == 415
    # a status patch changes status only, a main patch leaves status alone
    await c.patch(url + "/status", data=b'{"status":{"phase":"x"},"spec":{"podCIDR":"y"}}',
                  headers={"Content-Type": "application/merge-patch+json"})
    node = api.store.get("nodes", "", "oldversion2")
    assert node["status"]["phase"] == "x"
    assert node["spec"]["podCIDR"] != "y"
    apply = await c.patch("/api/v1/namespaces/web/configmaps/applied?fieldManager=t",
                          data=b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n"
                               b"data:\n  k: v\n",
                          headers={"Content-Type": "application/apply-patch+yaml"})
    assert apply.status == 201
    assert api.store.get("configmaps", "web", "applied")["data"] == {"k": "v"}


async def test_delete_tolerates_unparsable_bodies(http: tuple[TestClient, LabApi]) -> None:
    c, api = http
    r = await c.delete("/api/v1/namespaces/default/pods/scratch", data=b"k8s\x00\x0a\x0f garbage",
                       headers={"Content-Type": "application/vnd.kubernetes.protobuf"})
    assert r.status == 200
    assert (await body(r))["kind"] == "Pod"
    assert api.store.peek("pods", "default", "scratch") is None
    cm = await c.delete("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    assert (await body(cm))["status"] == "Success"
    dry = await c.delete("/api/v1/namespaces/db/pods/pg-0?dryRun=All")
    assert dry.status == 200
    assert api.store.peek("pods", "db", "pg-0") is not None


async def test_pod_delete_hook_owns_graceful_termination(
        http: tuple[TestClient, LabApi]) -> None:
    c, api = http
    calls: list[tuple[str, int, str]] = []
    api.on_pod_delete = lambda pod, grace, by: calls.append((pod["metadata"]["name"], grace, by))
    r = await c.delete("/api/v1/namespaces/db/pods/pg-0?gracePeriodSeconds=5")
    assert (await body(r))["metadata"]["deletionTimestamp"]
    assert calls == [("pg-0", 5, "delete")]
    assert api.store.get("pods", "db", "pg-0")["metadata"]["deletionGracePeriodSeconds"] == 5
    t = await body(await c.get("/api/v1/namespaces/db/pods/pg-0", headers={"Accept": TABLE}))
    assert t["rows"][0]["cells"][2] == "Terminating"
    await c.delete("/api/v1/namespaces/db/pods/pg-1?gracePeriodSeconds=0")
    assert api.store.peek("pods", "db", "pg-1") is None


async def test_eviction_endpoint(http: tuple[TestClient, LabApi]) -> None:
    c, api = http
    def eviction(name: str) -> dict:
        return {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name, "namespace": "db"}}
    url = "/api/v1/namespaces/db/pods/{}/eviction"
    mismatch = await c.post(url.format("pg-0"), json=eviction("pg-1"))
    assert mismatch.status == 400
    assert (await body(mismatch))["message"] == \
        "name in URL does not match name in Eviction object"
    ok = await c.post(url.format("pg-0"), json=eviction("pg-0"))
    assert ok.status == 201
    assert (await body(ok))["status"] == "Success"
    assert api.store.peek("pods", "db", "pg-0") is None
    refused = await c.post(url.format("pg-1"), json=eviction("pg-1"))
    assert refused.status == 429
    missing = await c.post(url.format("nope"), json=eviction("nope"))
    assert missing.status == 404


async def test_watch_stream_from_resource_version(http: tuple[TestClient, LabApi]) -> None:
    c, api = http
    rv = api.store.resource_version
    r = await c.get("/api/v1/namespaces/web/pods",
                    params={"watch": "1", "resourceVersion": str(rv), "timeoutSeconds": "5"})
    assert r.status == 200
    name = api.store.list("pods", "web").items[0]["metadata"]["name"]
    api.store.mutate("pods", "web", name, lambda p: p["metadata"]["labels"].update(w="1"))
    line = await asyncio.wait_for(r.content.readline(), 5)
    event = json.loads(line)
    assert event["type"] == "MODIFIED"
    assert event["object"]["metadata"]["labels"]["w"] == "1"
    r.close()
    too_old = await c.get("/api/v1/pods", params={"watch": "true", "resourceVersion": "-5"})
    err = json.loads(await asyncio.wait_for(too_old.content.readline(), 5))
    assert err["type"] == "ERROR"
    assert err["object"]["code"] == 410


async def test_a_node_watch_streams_a_burst_of_changes_in_order(
    http: tuple[TestClient, LabApi]
) -> None:
    c, api = http
    rv = api.store.resource_version
    url = "/api/v1/pods"
    plain = await c.get(url, params={"watch": "1", "resourceVersion": str(rv),
                                     "fieldSelector": "spec.nodeName=oldversion2",
                                     "timeoutSeconds": "5"})
    table = await c.get(url, params={"watch": "1", "resourceVersion": str(rv),
                                     "fieldSelector": "spec.nodeName=oldversion2",
                                     "timeoutSeconds": "5"}, headers={"Accept": TABLE})
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "burst", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "i"}]}}
    # written back to back, so the server finds them queued together
    api.store.create("pods", pod)
    api.store.mutate("pods", "default", "burst", lambda p: p["spec"].update(
        nodeName="oldversion2"))
    api.store.mutate("pods", "default", "burst", lambda p: p["metadata"].update(labels={"a": "b"}))
    api.store.mutate("pods", "default", "burst", lambda p: p["spec"].update(
        nodeName="oldversion3"))
    api.store.delete("pods", "default", "burst")
    events = [json.loads(await asyncio.wait_for(plain.content.readline(), 5)) for _ in range(3)]
    assert [(e["type"], e["object"]["spec"]["nodeName"]) for e in events] == [
        ("ADDED", "oldversion2"), ("MODIFIED", "oldversion2"), ("DELETED", "oldversion3")]
    rows = [json.loads(await asyncio.wait_for(table.content.readline(), 5)) for _ in range(3)]
    assert [e["type"] for e in rows] == ["ADDED", "MODIFIED", "DELETED"]
    assert [bool(e["object"].get("columnDefinitions")) for e in rows] == [True, False, False]
    plain.close()
    table.close()


@pytest.mark.parametrize(
    ("path", "expect"),
    [
        ("/api/v1/nodes", ("nodes", None, None, None)),
        ("/api/v1/namespaces/web/pods/p/eviction", ("pods", "web", "p", "eviction")),
        ("/api/v1/namespaces/web", ("namespaces", None, "web", None)),
        ("/api/v1/namespaces/web/status", ("namespaces", None, "web", "status")),
        ("/apis/apps/v1/namespaces/x/deployments", ("deployments.apps", "x", None, None)),
        ("/apis/policy/v1/poddisruptionbudgets", ("poddisruptionbudgets.policy", None, None,
                                                  None)),
        ("/api/v1/pods/p", None),
        ("/api/v1/namespaces/web/nodes", None),
        ("/apis/apps/v2/deployments", None),
    ],
)
def test_parse_path(path: str, expect: tuple | None) -> None:
    t = parse_path(path)
    got = None if t is None else (t.rt.id, t.namespace, t.name, t.subresource)
    assert got == expect
