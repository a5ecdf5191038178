"""Drain decisions: kubectl's filter chain (pkg/drain/filters.go) as a table, then PDB
explanations, dry-run predictions, CloudNativePG helpers and progress events."""

from __future__ import annotations

import pytest

from kubehop.core.drain.explain import (
    DrainEvent,
    cnpg_primary_of,
    explain_blocked,
    pdb_from_dict,
    pdbs_for,
    predict_blocks,
    single_instance_refusal,
)
from kubehop.core.drain.rules import (
    DrainOptions,
    parse_time,
    plan_drain,
    pod_from_dict,
)
from kubehop.core.selectors import selector_from_api, selects, valid_label_selector
from kubehop.model.cluster import PdbInfo, PodInfo

Owner = tuple[str, str]  # the controller ownerReference's kind and name
RS = ("ReplicaSet", "web-123")
DS = ("DaemonSet", "agent")
NODE = ("Node", "w1")
NOW = 1_000_000.0


def pod(name: str, owner: Owner | None = RS, **kw: object) -> PodInfo:
    kw = {"ready": False, **kw}
    return PodInfo("ns", name, uid=f"uid-{name}", node="w1", owner_kind=owner and owner[0],
                   owner_name=owner and owner[1], **kw)  # type: ignore[arg-type]


OPTS = {
    "none": DrainOptions(),
    "ds": DrainOptions(ignore_daemonsets=True),
    "empty": DrainOptions(delete_emptydir_data=True),
    "force": DrainOptions(force=True),
    "all": DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True, force=True),
    "skip": DrainOptions(skip_wait_for_delete_timeout=30),
}
DS_FATAL = "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): ns/p"
LOCAL_FATAL = "cannot delete Pods with local storage (use --delete-emptydir-data to override): ns/p"
BARE_FATAL = "cannot delete Pods that declare no controller (use --force to override): ns/p"


# (pod, options, evicted?, errors, warnings); "skipped" = not evicted and no error.
@pytest.mark.parametrize(("p", "opts", "evict", "errors", "warnings"), [
    (pod("p"), "none", True, [], []),
    (pod("p", DS), "none", False, [DS_FATAL], []),
    (pod("p", DS), "ds", False, [], ["ignoring DaemonSet-managed Pods: ns/p"]),
    (pod("p", DS, phase="Succeeded"), "none", True, [], []),
    (pod("p", DS, phase="Failed", empty_dir=True), "none", True, [], []),
    (pod("p", NODE, mirror=True), "none", False, [], []),
    (pod("p", None, mirror=True), "none", False, [], []),
    (pod("p", empty_dir=True), "none", False, [LOCAL_FATAL], []),
    (pod("p", empty_dir=True), "empty", True, [], ["deleting Pods with local storage: ns/p"]),
    (pod("p", None), "none", False, [BARE_FATAL], []),
    (pod("p", None), "force", True, [], ["deleting Pods that declare no controller: ns/p"]),
    (pod("p", None, phase="Succeeded"), "none", True, [], []),
    # the first "don't delete" wins: local storage is reported, not the missing controller
    (pod("p", None, empty_dir=True), "force", False, [LOCAL_FATAL], []),
    (pod("p", None, empty_dir=True), "all", True, [],
     ["deleting Pods with local storage: ns/p", "deleting Pods that declare no controller: ns/p"]),
    (pod("p", deletion_time=NOW - 31), "skip", False, [], []),
    (pod("p", deletion_time=NOW - 30), "skip", True, [], []),
    (pod("p", deletion_time=NOW - 3600), "none", True, [], []),
])
def test_filter_chain(p, opts, evict, errors, warnings):
    decision = plan_drain([p], OPTS[opts], now=NOW)
    assert [x.key for x in decision.evict] == (["ns/p"] if evict else [])
    assert decision.errors == errors
    assert decision.warnings == warnings
    assert decision.ok == (not errors)
    if not evict and not errors:
        assert [x.key for x in decision.skipped] == ["ns/p"]


def test_a_daemonset_that_is_gone_needs_force():
    orphan = pod("p", DS)
    gone = {("ns", "agent"): False}
    refused = plan_drain([orphan], DrainOptions(ignore_daemonsets=True), gone)
    assert refused.errors == ['cannot delete daemonsets.apps "agent" not found: ns/p']
    forced = plan_drain([orphan], DrainOptions(force=True), gone)
    assert [x.key for x in forced.evict] == ["ns/p"]
    assert forced.warnings == ['daemonsets.apps "agent" not found: ns/p']


def test_errors_and_warnings_group_pods_by_message_in_order():
    pods = [pod("a", DS), pod("b", None), pod("c", DS), pod("d", empty_dir=True), pod("e")]
    decision = plan_drain(pods, DrainOptions())
    assert decision.errors == [
        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): ns/a, ns/c",
        "cannot delete Pods that declare no controller (use --force to override): ns/b",
        "cannot delete Pods with local storage (use --delete-emptydir-data to override): ns/d",
    ]
    assert [x.key for x in decision.evict] == ["ns/e"]


def test_pod_from_dict_reads_what_the_filters_need():
    obj = {
        "metadata": {"namespace": "web", "name": "a", "uid": "u1", "labels": {"app": "a"},
                     "annotations": {"kubernetes.io/config.mirror": "x"},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "a-1", "controller": False},
                                         {"kind": "DaemonSet", "name": "d", "controller": True}],
                     "deletionTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"nodeName": "w1", "volumes": [{"name": "c", "configMap": {}},
                                               {"name": "s", "emptyDir": {}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    p = pod_from_dict(obj)
    assert (p.key, p.uid, p.node, p.phase) == ("web/a", "u1", "w1", "Running")
    assert (p.owner_kind, p.owner_name, p.labels) == ("DaemonSet", "d", (("app", "a"),))
    assert (p.mirror, p.empty_dir, p.ready, p.scheduled) == (True, True, True, True)
    assert p.deletion_time == parse_time("2024-05-01T10:00:00Z") == 1714557600.0
    pending = pod_from_dict({"metadata": {"name": "b"}, "status": {"phase": "Pending",
                             "conditions": [{"type": "PodScheduled", "status": "False",
                                             "message": "0/3 nodes are available."}]}})
    assert (pending.scheduled, pending.unschedulable) == (False, "0/3 nodes are available.")
    assert (pending.owner_kind, pending.node, pending.empty_dir) == (None, None, False)


@pytest.mark.parametrize(("text", "ok"), [
    ("", True), ("app=web", True), ("app==web,tier!=db", True), ("!canary", True),
    ("env in (prod, staging),app", True), ("example.com/role notin (a)", True),
    ("app=", True), ("app=web,", False), ("=web", False), ("env in (prod", False),
    ("a b", False), ("app=we b", False),
])
def test_label_selector_validation(text, ok):
    assert valid_label_selector(text) is ok


# --- PDBs --------------------------------------------------------------------------------------

SELECTOR = {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]}


@pytest.mark.parametrize(("labels", "match"), [
    ({"app": "web", "tier": "a"}, True), ({"app": "web", "tier": "c"}, False),
    ({"app": "web"}, False), ({"app": "web", "tier": "b", "canary": "1"}, False),
    ({"app": "db", "tier": "a"}, False),
])
def test_selector_matches(labels, match):
    assert selects(SELECTOR, labels) is match


def test_selector_edge_cases_and_query():
    assert selects({}, {"any": "thing"})
    assert not selects(None, {"any": "thing"})
    assert selects({"matchExpressions": [{"key": "x", "operator": "NotIn",
                                          "values": ["1"]}]}, {})
    # labels.Selector.String(): terms sorted by key
    assert selector_from_api(SELECTOR).query() == "app=web,!canary,tier in (a,b)"


def pdb(**kw: object) -> PdbInfo:
    base = dict(namespace="web", name="frontend", selector={"matchLabels": {"app": "web"}},
                expected=3, desired_healthy=2, current_healthy=2, disruptions_allowed=0,
                generation=1, observed_generation=1)
    return PdbInfo(**{**base, **kw})  # type: ignore[arg-type]


def web(name: str, **kw: object) -> PodInfo:
    kw = {"ready": True, "node": "w2", **kw}
    return PodInfo("web", name, uid=name, labels=(("app", "web"),), owner_kind=RS[0],
                   owner_name=RS[1],
                   **kw)  # type: ignore[arg-type]


def test_explain_a_pending_replacement_with_the_schedulers_reason():
    pods = [web("a"), web("b", ready=False, deletion_time=1.0),
            web("c"), web("r", ready=False, phase="Pending", node="", scheduled=False,
                          unschedulable="0/3 nodes are available: 3 Insufficient cpu. preemption: "
                                        "0/3 nodes are available: 3 No preemption victims..")]
    assert explain_blocked(pdb(current_healthy=3), pods) == (
        "pdb web/frontend: 2 of 3 replicas must stay Ready (2 Ready now); 1 replacement is "
        "Pending: 0/3 nodes are available: 3 Insufficient cpu")


def test_explain_starting_replacements_and_other_states():
    starting = [web("a"), web("b", ready=False), web("c", ready=False, node="w3")]
    assert explain_blocked(pdb(current_healthy=1), starting) == (
        "pdb web/frontend: 2 of 3 replicas must stay Ready (1 Ready now); 2 replacements are "
        "starting on w2, w3")
    assert explain_blocked(pdb(), [web("a"), web("b")]).endswith(
        "(2 Ready now); no replacement pod is starting")
    assert explain_blocked(pdb(current_healthy=3), [web("a"), web("b"), web("c")]) == (
        "pdb web/frontend: 2 of 3 replicas must stay Ready (3 Ready now, 1 of them already "
        "being evicted)")
    assert explain_blocked(pdb(expected=1, desired_healthy=1, current_healthy=1), []) == (
        "pdb web/frontend: 1 of 1 replica must stay Ready (1 Ready now); "
        "no replacement pod is starting")
    assert explain_blocked(pdb(generation=2), []) == (
        "pdb web/frontend: its status is still being updated by the disruption controller")
    assert explain_blocked(pdb(disruptions_allowed=2), []) == (
        "pdb web/frontend: allows 2 disruptions now")


def test_pdb_from_dict_and_covering_pdbs():
    obj = {"metadata": {"namespace": "web", "name": "frontend", "generation": 2},
           "spec": {"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1},
           "status": {"expectedPods": 3, "desiredHealthy": 2, "currentHealthy": 3,
                      "disruptionsAllowed": 1, "observedGeneration": 1}}
    p = pdb_from_dict(obj)
    assert (p.key, p.expected, p.desired_healthy, p.current_healthy, p.disruptions_allowed) == \
        ("web/frontend", 3, 2, 3, 1)
    assert not p.processed
    other_ns = PdbInfo("db", "frontend", selector={})
    assert pdbs_for(web("a"), [p, other_ns]) == [p]


def test_predict_blocks_spends_each_budget_once():
    budget = pdb(disruptions_allowed=1, current_healthy=3)
    pods = [web("a"), web("b"), web("c", ready=False)]
    blocked = predict_blocks(pods, [budget], {budget.key: pods})
    assert blocked == {"web/b": "pdb web/frontend: allows 1 disruption now; this pod waits "
                                "until a replacement is Ready"}
    none_left = predict_blocks([web("a")], [pdb()], {"web/frontend": [web("a"), web("b")]})
    assert none_left["web/a"].startswith("pdb web/frontend: 2 of 3 replicas must stay Ready")
    twice = predict_blocks([web("a")], [pdb(), pdb(name="second")], {})
    assert "more than one PodDisruptionBudget (web/frontend, web/second)" in twice["web/a"]


# --- CloudNativePG and events ------------------------------------------------------------------

@pytest.mark.parametrize(("labels", "cluster"), [
    ({"cnpg.io/cluster": "pg", "cnpg.io/instanceRole": "primary"}, "pg"),
    ({"cnpg.io/cluster": "pg", "role": "primary"}, "pg"),
    ({"cnpg.io/cluster": "pg", "cnpg.io/instanceRole": "replica", "role": "replica"}, None),
    ({"role": "primary"}, None),
])
def test_cnpg_primary_of(labels, cluster):
    assert cnpg_primary_of(PodInfo("db", "pg-1", labels=tuple(sorted(labels.items())))) == cluster


def test_single_instance_refusal_names_cluster_and_fixes():
    text = single_instance_refusal("db", "solo", "solo-1", "w1")
    assert text.startswith("CloudNativePG cluster db/solo has a single instance (primary solo-1 "
                           "on node w1)")
    assert """patch clusters.postgresql.cnpg.io solo --type merge -p '{"spec":{"instances":2}}'""" \
        in text
    assert "--disable-eviction" in text


def test_drain_events_as_json_types():
    event = DrainEvent("waiting", "w1", pods=("web/a", "web/b"), message="m", pdb="web/x",
                       elapsed=1.23456)
    assert event.to_dict() == {"kind": "waiting", "node": "w1", "message": "m", "pdb": "web/x",
                               "pods": ["web/a", "web/b"], "dryRun": False, "elapsed": 1.235}
    with pytest.raises(ValueError, match="unknown drain event kind"):
        DrainEvent("exploded", "w1")
