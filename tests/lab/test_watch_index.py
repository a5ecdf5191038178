"""The store's watch index: a change reaches only the watches that may care, with the exact
events an unindexed watch (offered every change) would see — selector transitions included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubehop.lab.api.selectors import FieldSelector, LabelQuery
from kubehop.lab.api.status import GoneStatus
from kubehop.lab.api.store import Store
from kubehop.lab.api.watches import Change, Watch
from tests.lab.test_store import pod


def drain(w: Watch) -> list[tuple[str, str, str]]:
    """The events queued so far: (type, namespace/name, nodeName)."""
    out = []
    while not w.queue.empty():
        event = w.queue.get_nowait()
        if event is None:
            break
        meta = event.object["metadata"]
        out.append((event.type, f"{meta['namespace']}/{meta['name']}",
                    event.object["spec"].get("nodeName") or ""))
    return out


def node_watch(s: Store, node: str, **kw: object) -> Watch:
    return s.watch("pods", field_selector=f"spec.nodeName={node}",
                   resource_version=s.resource_version, **kw)  # type: ignore[arg-type]


def bind(node: str):
    return lambda p: p["spec"].update(nodeName=node)


def test_a_pod_bound_after_creation_is_added_to_its_nodes_watch_only() -> None:
    s = Store()
    n1, n2 = node_watch(s, "n1"), node_watch(s, "n2")
    unbound = node_watch(s, "")  # the scheduler's view: pods without a node
    s.create("pods", pod("a", "p"))
    s.mutate("pods", "a", "p", bind("n1"))
    assert drain(n1) == [("ADDED", "a/p", "n1")]
    assert drain(n2) == []
    assert drain(unbound) == [("ADDED", "a/p", ""), ("DELETED", "a/p", "n1")]


def test_a_pod_moving_between_nodes_leaves_one_watch_and_joins_the_other() -> None:
    s = Store()
    s.create("pods", pod("a", "p", "n1"))
    n1, n2, n3 = node_watch(s, "n1"), node_watch(s, "n2"), node_watch(s, "n3")
    everything = s.watch("pods", resource_version=s.resource_version)
    s.mutate("pods", "a", "p", bind("n2"))
    s.mutate("pods", "a", "p", lambda p: p["status"].update(phase="Succeeded"))
    assert drain(n1) == [("DELETED", "a/p", "n2")]  # the new state, as upstream sends it
    assert drain(n2) == [("ADDED", "a/p", "n2"), ("MODIFIED", "a/p", "n2")]
    assert drain(n3) == []
    assert drain(everything) == [("MODIFIED", "a/p", "n2"), ("MODIFIED", "a/p", "n2")]


def test_deletions_reach_the_watches_of_the_deleted_objects_node_and_namespace() -> None:
    s = Store()
    s.create("pods", pod("a", "p", "n1"))
    s.create("pods", pod("b", "q", "n1"))
    n1, n2 = node_watch(s, "n1"), node_watch(s, "n2")
    ns_a = s.watch("pods", "a", resource_version=s.resource_version)
    ns_b_on_n1 = s.watch("pods", "b", field_selector="spec.nodeName=n1",
                         resource_version=s.resource_version)
    s.delete("pods", "a", "p")
    s.delete("pods", "b", "q")
    assert drain(n1) == [("DELETED", "a/p", "n1"), ("DELETED", "b/q", "n1")]
    assert drain(n2) == []
    assert drain(ns_a) == [("DELETED", "a/p", "n1")]
    assert drain(ns_b_on_n1) == [("DELETED", "b/q", "n1")]


def test_label_namespace_and_other_field_selectors_still_filter_routed_watches() -> None:
    s = Store()
    web = node_watch(s, "n1", label_selector="app=web")
    running = s.watch("pods", "a", field_selector="spec.nodeName=n1,status.phase=Running",
                      resource_version=s.resource_version)
    s.create("pods", pod("a", "p", "n1", labels={"app": "db"}))
    s.create("pods", pod("b", "q", "n1", labels={"app": "web"}))
    s.mutate("pods", "a", "p", lambda p: p["metadata"]["labels"].update(app="web"))
    s.mutate("pods", "a", "p", lambda p: p["status"].update(phase="Failed"))
    s.mutate("pods", "a", "p", lambda p: p["metadata"]["labels"].update(app="db"))
    assert drain(web) == [("ADDED", "b/q", "n1"), ("ADDED", "a/p", "n1"),
                          ("MODIFIED", "a/p", "n1"), ("DELETED", "a/p", "n1")]
    assert drain(running) == [("ADDED", "a/p", "n1"), ("MODIFIED", "a/p", "n1"),
                              ("DELETED", "a/p", "n1")]


def test_name_pinned_watches_and_other_resources() -> None:
    s = Store()
    s.create("nodes", {"metadata": {"name": "n1"}, "spec": {}})
    s.create("nodes", {"metadata": {"name": "n2"}, "spec": {}})
    one = s.watch("nodes", field_selector="metadata.name=n1",
                  resource_version=s.resource_version)
    cordoned = s.watch("nodes", field_selector="spec.unschedulable=true",
                       resource_version=s.resource_version)
    pods = node_watch(s, "n1")
    s.mutate("nodes", "", "n2", lambda n: n["spec"].update(unschedulable=True))
    s.mutate("nodes", "", "n1", lambda n: n["spec"].update(unschedulable=True))
    s.delete("nodes", "", "n1")
    names = [(e.type, e.object["metadata"]["name"]) for e in _queued(one)]
    assert names == [("MODIFIED", "n1"), ("DELETED", "n1")]
    names = [(e.type, e.object["metadata"]["name"]) for e in _queued(cordoned)]
    assert names == [("ADDED", "n2"), ("ADDED", "n1"), ("DELETED", "n1")]
    assert drain(pods) == []


def _queued(w: Watch) -> list:
    out = []
    while not w.queue.empty():
        out.append(w.queue.get_nowait())
    return out


def test_closed_watches_leave_the_index() -> None:
    s = Store()
    ws = [node_watch(s, "n1"), node_watch(s, "n1"), s.watch("pods", "a"), s.watch("pods")]
    assert len(s._watches) == 4
    for w in ws:
        w.close()
        w.close()  # twice is harmless
    assert len(s._watches) == 0
    assert not s._watches._routes
    s.create("pods", pod("a", "p", "n1"))
    assert [e for e in _queued(ws[0]) if e is not None] == []


def test_a_replay_from_a_version_sees_what_a_live_watch_saw() -> None:
    s = Store()
    s.create("nodes", {"metadata": {"name": "n1"}})
    rv = s.resource_version
    live = node_watch(s, "n1")
    s.create("pods", pod("a", "p"))
    s.create("pods", pod("a", "q", "n2"))
    s.mutate("pods", "a", "p", bind("n1"))
    s.mutate("pods", "a", "q", bind("n1"))
    s.mutate("pods", "a", "p", bind("n2"))
    s.delete("pods", "a", "q")
    replayed = s.watch("pods", field_selector="spec.nodeName=n1", resource_version=rv)
    expected = [("ADDED", "a/p", "n1"), ("ADDED", "a/q", "n1"), ("DELETED", "a/p", "n2"),
                ("DELETED", "a/q", "n1")]
    assert drain(live) == expected
    assert drain(replayed) == expected
    middle = s.watch("pods", field_selector="spec.nodeName=n1", resource_version=rv + 3)
    assert drain(middle) == expected[1:]


def test_compaction_trims_every_resources_replay() -> None:
    s = Store(history_limit=4)
    s.create("nodes", {"metadata": {"name": "n1"}})  # rv 1
    for i in range(4):
        s.create("pods", pod("a", f"p{i}"))  # rv 2-5: rv 1 is compacted
    assert drain(s.watch("pods", resource_version=1)) == [
        ("ADDED", f"a/p{i}", "") for i in range(4)]
    assert _queued(s.watch("nodes", resource_version=1)) == []
    s.create("nodes", {"metadata": {"name": "n2"}})  # rv 6: rv 2 is compacted
    with pytest.raises(GoneStatus):
        s.watch("pods", resource_version=1)
    with pytest.raises(GoneStatus):
        s.watch("nodes", resource_version=1)
    assert drain(s.watch("pods", resource_version=2)) == [
        ("ADDED", f"a/p{i}", "") for i in range(1, 4)]
    assert [e.object["metadata"]["name"]
            for e in _queued(s.watch("nodes", resource_version=2))] == ["n2"]


# --- property: indexed delivery equals offering every change to every watch -----------------

NODES = ["", "n1", "n2"]
SELECTORS = [
    ("pods", None, "", ""),
    ("pods", None, "", "spec.nodeName=n1"),
    ("pods", None, "", "spec.nodeName=n2"),
    ("pods", None, "", "spec.nodeName="),
    ("pods", None, "", "spec.nodeName!=n1"),
    ("pods", "a", "", "spec.nodeName=n1"),
    ("pods", "b", "app=web", ""),
    ("pods", None, "app=web", "spec.nodeName=n2,status.phase=Running"),
    ("pods", None, "", "metadata.name=p1"),
    ("pods", "a", "", "metadata.name=p1,spec.nodeName=n1"),
    ("pods", "a", "", ""),
    ("nodes", None, "", ""),
    ("nodes", None, "", "metadata.name=p1"),
]
ops = st.lists(st.tuples(
    st.sampled_from(["create", "bind", "label", "phase", "delete", "node"]),
    st.sampled_from(["a", "b"]), st.sampled_from(["p1", "p2"]), st.sampled_from(NODES),
    st.sampled_from(["web", "db"]), st.sampled_from(["Running", "Failed"]),
), max_size=25)


@settings(max_examples=200, deadline=None)
@given(ops, st.integers(0, 25))
def test_indexed_watches_see_exactly_what_unindexed_ones_see(script, replay_from) -> None:
    s = Store()
    s.create("namespaces", {"metadata": {"name": "a"}})  # rv 1: every replay_rv is a version
    indexed: list[Watch] = []
    reference: list[Watch] = []
    for resource, ns, labels, fields in SELECTORS:
        indexed.append(s.watch(resource, ns, label_selector=labels, field_selector=fields,
                               resource_version=s.resource_version))
        reference.append(Watch(lambda w: None, resource, ns, LabelQuery.parse(labels),
                               FieldSelector.parse(fields, resource)))

    def offer_all(change: Change) -> None:
        for w in reference:
            w.offer(change)

    s.subscribe(offer_all)
    replayed: list[Watch] = []
    replay_rv = 0
    for step, (op, ns, name, node, app, phase) in enumerate(script):
        if step == replay_from:
            replay_rv = s.resource_version
            replayed = [s.watch(r, n, label_selector=lab, field_selector=f,
                                resource_version=replay_rv)
                        for r, n, lab, f in SELECTORS]
        exists = s.peek("pods", ns, name) is not None
        if op == "create" and not exists:
            s.create("pods", pod(ns, name, node, {"app": app}, phase))
        elif op == "node":
            if s.peek("nodes", "", name) is None:
                s.create("nodes", {"metadata": {"name": name}, "spec": {}})
            else:
                s.delete("nodes", "", name)
        elif exists and op == "bind":
            s.mutate("pods", ns, name, bind(node))
        elif exists and op == "label":
            s.mutate("pods", ns, name, lambda p, a=app: p["metadata"]["labels"].update(app=a))
        elif exists and op == "phase":
            s.mutate("pods", ns, name, lambda p, ph=phase: p["status"].update(phase=ph))
        elif exists and op == "delete":
            s.delete("pods", ns, name)
    for w, ref in zip(indexed, reference, strict=True):
        assert _queued(w) == _queued(ref), (w.resource, w.namespace, w.labels, w.fields)
    # a watch resumed from a version replays what a watch opened at that version has seen
    for (r, n, lab, f), early in zip(SELECTORS, replayed, strict=False):
        late = s.watch(r, n, label_selector=lab, field_selector=f, resource_version=replay_rv)
        assert _queued(late) == _queued(early)


async def test_pending_takes_queued_events_and_leaves_the_end_marker() -> None:
    s = Store()
    w = node_watch(s, "n1")
    for i in range(3):
        s.create("pods", pod("a", f"p{i}", "n1"))
    assert [e.object["metadata"]["name"] for e in w.pending(limit=2)] == ["p0", "p1"]
    w.close()
    assert [e.object["metadata"]["name"] for e in w.pending()] == ["p2"]
    assert w.pending() == []
    assert [e async for e in w] == []  # the end marker was kept: iteration stops
