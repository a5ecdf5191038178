"""The lab store: identities, conflicts, paging, selectors, indexes, watches, subscriptions."""

from __future__ import annotations

import asyncio
import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubehop.lab.api.status import (
    AlreadyExists,
    BadRequest,
    ConflictStatus,
    GoneStatus,
    NotFoundStatus,
)
from kubehop.lab.api.store import Store
from kubehop.lab.api.watches import Change


def pod(ns: str, name: str, node: str = "", labels: dict[str, str] | None = None,
        phase: str = "Running") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": phase}}


def names(items: list[dict]) -> list[str]:
    return [f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" for o in items]


def test_create_assigns_identity_and_versions() -> None:
    s = Store()
    a = s.create("pods", pod("ns", "a"))
    b = s.create("pods", pod("ns", "b"))
    assert a["metadata"]["resourceVersion"] == "1"
    assert b["metadata"]["resourceVersion"] == "2"
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    assert a["metadata"]["creationTimestamp"].endswith("Z")
    assert s.resource_version == 2
    assert "generation" not in a["metadata"]
    d = s.create("deployments.apps", {"metadata": {"name": "d", "namespace": "ns"},
                                      "spec": {"replicas": 1}})
    assert d["metadata"]["generation"] == 1


def test_get_returns_a_private_copy() -> None:
    s = Store()
    s.create("pods", pod("ns", "a"))
    got = s.get("pods", "ns", "a")
    got["metadata"]["labels"]["x"] = "y"
    assert s.get("pods", "ns", "a")["metadata"]["labels"] == {}


def test_errors_carry_kubernetes_status() -> None:
    s = Store()
    with pytest.raises(NotFoundStatus) as nf:
        s.get("pods", "ns", "x")
    assert nf.value.status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "x" not found', "reason": "NotFound",
        "details": {"name": "x", "kind": "pods"}, "code": 404,
    }
    with pytest.raises(NotFoundStatus) as grouped:
        s.get("deployments.apps", "ns", "d")
    assert grouped.value.status()["details"] == {"name": "d", "group": "apps",
                                                 "kind": "deployments"}
    assert grouped.value.message == 'deployments.apps "d" not found'
    s.create("pods", pod("ns", "a"))
    with pytest.raises(AlreadyExists) as exists:
        s.create("pods", pod("ns", "a"))
    assert (exists.value.code, exists.value.reason) == (409, "AlreadyExists")


def test_update_with_stale_resource_version_conflicts() -> None:
    s = Store()
    first = s.create("pods", pod("ns", "a"))
    second = s.update("pods", dict(first, spec={"nodeName": "n1", "containers": []}))
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    with pytest.raises(ConflictStatus) as c:
        s.update("pods", first)
    assert c.value.code == 409
    assert c.value.message == ('Operation cannot be fulfilled on pods "a": the object has been '
                               "modified; please apply your changes to the latest version and "
                               "try again")
    # without a resourceVersion the update is unconditional
    unconditional = s.get("pods", "ns", "a")
    del unconditional["metadata"]["resourceVersion"]
    s.update("pods", unconditional)


def test_generation_counts_spec_changes_only() -> None:
    s = Store()
    d = s.create("deployments.apps", {"metadata": {"name": "d", "namespace": "ns"},
                                      "spec": {"replicas": 1}, "status": {}})
    d = s.update("deployments.apps", dict(d, status={"replicas": 1}))
    assert d["metadata"]["generation"] == 1
    d = s.update("deployments.apps", dict(d, spec={"replicas": 2}))
    assert d["metadata"]["generation"] == 2


def test_mutate_is_read_modify_write_and_skips_no_ops() -> None:
    s = Store()
    s.create("nodes", {"metadata": {"name": "n"}, "spec": {}})
    rv = s.resource_version
    s.mutate("nodes", "", "n", lambda n: None)
    assert s.resource_version == rv
    out = s.mutate("nodes", "", "n", lambda n: n["spec"].update(unschedulable=True))
    assert out["spec"]["unschedulable"] is True
    assert s.resource_version == rv + 1


def test_delete_preconditions_and_not_found() -> None:
    s = Store()
    a = s.create("pods", pod("ns", "a"))
    with pytest.raises(ConflictStatus):
        s.delete("pods", "ns", "a", uid="other")
    last = s.delete("pods", "ns", "a", uid=a["metadata"]["uid"])
    assert int(last["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    with pytest.raises(NotFoundStatus):
        s.delete("pods", "ns", "a")


def test_label_and_field_selectors() -> None:
    s = Store()
    s.create("pods", pod("a", "p1", "n1", {"app": "web", "tier": "fe"}))
    s.create("pods", pod("a", "p2", "n2", {"app": "web"}))
    s.create("pods", pod("b", "p3", "n1", {"app": "db"}, phase="Pending"))
    s.create("pods", pod("b", "p4", "", {}))
    assert names(s.list("pods", label_selector="app=web").items) == ["a/p1", "a/p2"]
    assert names(s.list("pods", label_selector="app!=web").items) == ["b/p3", "b/p4"]
    assert names(s.list("pods", label_selector="app in (db, web),!tier").items) == ["a/p2",
                                                                                    "b/p3"]
    assert names(s.list("pods", label_selector="tier").items) == ["a/p1"]
    assert names(s.list("pods", field_selector="spec.nodeName=n1").items) == ["a/p1", "b/p3"]
    assert names(s.list("pods", "b", field_selector="spec.nodeName=n1").items) == ["b/p3"]
    assert names(s.list("pods", field_selector="spec.nodeName=").items) == ["b/p4"]
    assert names(s.list("pods", field_selector="status.phase!=Running").items) == ["b/p3"]
    assert names(s.list("pods", field_selector="metadata.name=p2").items) == ["a/p2"]
    assert names(s.list("pods", "a").items) == ["a/p1", "a/p2"]
    with pytest.raises(BadRequest, match=r"field label not supported: spec\.bogus"):
        s.list("pods", field_selector="spec.bogus=1")
    with pytest.raises(BadRequest):
        s.list("pods", label_selector="app in (")


def test_node_index_follows_rescheduling_and_deletion() -> None:
    s = Store()
    s.create("pods", pod("a", "p1", "n1"))
    s.mutate("pods", "a", "p1", lambda p: p["spec"].update(nodeName="n2"))
    assert names(s.by_index("pods", "spec.nodeName", "n1")) == []
    assert names(s.by_index("pods", "spec.nodeName", "n2")) == ["a/p1"]
    s.delete("pods", "a", "p1")
    assert s.by_index("pods", "spec.nodeName", "n2") == []


@settings(max_examples=60, deadline=None)
@given(
    keys=st.sets(st.tuples(st.sampled_from(["a", "b", "kube-system"]),
                           st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)),
                 max_size=60),
    limit=st.integers(min_value=1, max_value=25),
    namespace=st.sampled_from([None, "a", "b"]),
    selector=st.sampled_from([None, "parity=even"]),
)
def test_paging_returns_every_item_exactly_once(keys: set[tuple[str, str]], limit: int,
                                                namespace: str | None,
                                                selector: str | None) -> None:
    s = Store()
    for i, (ns, name) in enumerate(sorted(keys)):
        s.create("pods", pod(ns, name, labels={"parity": "even" if i % 2 == 0 else "odd"}))
    want = names(s.list("pods", namespace, label_selector=selector).items)
    got: list[str] = []
    token = None
    for _ in range(len(keys) + 2):
        page = s.list("pods", namespace, label_selector=selector, limit=limit,
                      continue_token=token)
        assert len(page.items) <= limit
        got += names(page.items)
        token = page.continue_token or None
        if token is None:
            break
    assert got == want
    assert len(set(got)) == len(got)


def test_paging_reports_remaining_items_and_survives_deletes() -> None:
    s = Store()
    for i in range(10):
        s.create("pods", pod("a", f"p{i}"))
    first = s.list("pods", limit=4)
    assert first.remaining == 6
    s.delete("pods", "a", "p5")
    rest = s.list("pods", continue_token=first.continue_token)
    assert names(rest.items) == [f"a/p{i}" for i in (4, 6, 7, 8, 9)]


@pytest.mark.parametrize("token", ["not-base64!", base64.b64encode(b"{}").decode(), "e30"])
def test_an_invalid_continue_token_is_a_bad_request(token: str) -> None:
    s = Store()
    with pytest.raises(BadRequest) as e:
        s.list("pods", limit=1, continue_token=token)
    assert e.value.code == 400
    assert e.value.message.startswith("continue key is not valid")


async def test_watch_from_a_resource_version_replays_then_follows() -> None:
    s = Store()
    s.create("pods", pod("a", "p1"))
    rv = s.resource_version
    s.mutate("pods", "a", "p1", lambda p: p["metadata"]["labels"].update(x="1"))
    s.create("pods", pod("b", "p2"))
    w = s.watch("pods", "a", resource_version=rv)
    s.delete("pods", "a", "p1")
    s.create("pods", pod("a", "p3"))
    events = []
    async for etype, obj in w:
        events.append((etype, obj["metadata"]["name"]))
        if len(events) == 3:
            w.close()
    assert events == [("MODIFIED", "p1"), ("DELETED", "p1"), ("ADDED", "p3")]


async def test_watch_without_version_lists_first_and_filters_by_selector() -> None:
    s = Store()
    s.create("pods", pod("a", "p1", labels={"app": "web"}))
    s.create("pods", pod("a", "p2", labels={"app": "db"}))
    w = s.watch("pods", label_selector="app=web")
    # a label change moving a pod into or out of the selection is ADDED / DELETED to the watcher
    s.mutate("pods", "a", "p2", lambda p: p["metadata"]["labels"].update(app="web"))
    s.mutate("pods", "a", "p1", lambda p: p["metadata"]["labels"].update(app="db"))
    w.close()
    events = [(t, o["metadata"]["name"]) async for t, o in w]
    assert events == [("ADDED", "p1"), ("ADDED", "p2"), ("DELETED", "p1")]


def test_watch_from_a_compacted_version_is_gone() -> None:
    s = Store(history_limit=5)
    for i in range(20):
        s.create("pods", pod("a", f"p{i}"))
    with pytest.raises(GoneStatus) as e:
        s.watch("pods", resource_version=3)
    assert (e.value.code, e.value.reason) == (410, "Expired")
    assert e.value.message.startswith("too old resource version: 3")
    s.watch("pods", resource_version=s.resource_version - 2).close()


async def test_watch_ends_when_closed_while_waiting() -> None:
    s = Store()
    w = s.watch("pods", resource_version=s.resource_version)

    async def drain() -> list:
        return [e async for e in w]

    task = asyncio.create_task(drain())
    await asyncio.sleep(0)
    s.close_watches()
    assert await asyncio.wait_for(task, 1) == []


def test_subscribers_see_every_change_in_order_even_when_they_write() -> None:
    s = Store()
    seen: list[tuple[str, str, int]] = []

    def controller(c: Change) -> None:
        seen.append((c.type, c.object["metadata"]["name"], c.rv))
        if c.type == "ADDED" and c.resource == "pods":
            s.mutate("pods", "a", c.object["metadata"]["name"],
                     lambda p: p["status"].update(phase="Running"))

    other: list[int] = []
    unsubscribe = s.subscribe(controller)
    s.subscribe(lambda c: other.append(c.rv))
    s.create("pods", pod("a", "p1", phase="Pending"))
    assert seen == [("ADDED", "p1", 1), ("MODIFIED", "p1", 2)]
    assert other == [1, 2]
    unsubscribe()
    s.create("pods", pod("a", "p2"))
    assert len(seen) == 2
    assert other == [1, 2, 3]
