"""The disruption controller's math, checked against disruption.go's rules."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubehop.lab.api.selectors import InvalidSelectorError
from kubehop.lab.clock import rfc3339
from kubehop.lab.controllers.disruption_arithmetic import (
    DELETION_TIMEOUT,
    PodTally,
    compile_selector,
    compute_pdb_status,
    labels_match,
    pods_for_pdb,
    scale_resolver,
    scaled_value,
    sync_pdb,
    sync_pdb_tally,
)

NOW = 1714564800.0
NS = "web"


def owner(kind, name, uid, api="apps/v1", controller=True):
    return {"apiVersion": api, "kind": kind, "name": name, "uid": uid, "controller": controller}


def pod(name, ready=True, owned=("ReplicaSet", "web-1", "rs-1"), labels=None, **extra):
    meta = {"name": name, "namespace": NS, "labels": {"app": "web"} if labels is None else labels}
    if owned:
        meta["ownerReferences"] = [owner(*owned)]
    if extra.get("deleting"):
        meta["deletionTimestamp"] = rfc3339(NOW - 1)
    return {
        "metadata": meta,
        "status": {
            "phase": extra.get("phase", "Running"),
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def workload(kind, name, uid, replicas, owners=(), api="apps/v1", field="replicas"):
    meta = {"name": name, "namespace": NS, "uid": uid}
    if owners:
        meta["ownerReferences"] = list(owners)
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": {field: replicas}}


def deployment(replicas, rs=(("web-1", "rs-1"),)):
    objs = [workload("Deployment", "web", "dep-1", replicas)]
    for name, uid in rs:
        objs.append(
            workload("ReplicaSet", name, uid, replicas, [owner("Deployment", "web", "dep-1")])
        )
    return objs


def pdb(spec, status=None, generation=1, selector=None):
    return {
        "metadata": {"name": "web", "namespace": NS, "generation": generation},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}} if selector is None else selector,
            **spec,
        },
        "status": status or {},
    }


def pods_ready(n_ready, n_unready=0):
    return [pod(f"p{i}") for i in range(n_ready)] + [
        pod(f"u{i}", ready=False) for i in range(n_unready)
    ]


def counts(status):
    keys = ("expectedPods", "desiredHealthy", "currentHealthy", "disruptionsAllowed")
    return tuple(status[k] for k in keys)


@pytest.mark.parametrize(
    ("spec", "replicas", "pods", "expected"),
    [
        # minAvailable as an integer: expected = matching pods, whatever the scale says.
        ({"minAvailable": 2}, 3, pods_ready(3), (3, 2, 3, 1)),
        ({"minAvailable": 2}, 5, pods_ready(3), (3, 2, 3, 1)),
        ({"minAvailable": 3}, 3, pods_ready(3), (3, 3, 3, 0)),
        ({"minAvailable": 0}, 3, pods_ready(3), (3, 0, 3, 3)),
        # minAvailable as a percentage of the controllers' scale, rounded up.
        ({"minAvailable": "50%"}, 3, pods_ready(3), (3, 2, 3, 1)),
        ({"minAvailable": "50%"}, 5, pods_ready(3), (5, 3, 3, 0)),
        ({"minAvailable": "100%"}, 4, pods_ready(4), (4, 4, 4, 0)),
        ({"minAvailable": "1%"}, 4, pods_ready(4), (4, 1, 4, 3)),
        # maxUnavailable (int or %, rounded up) off the controllers' scale.
        ({"maxUnavailable": 1}, 3, pods_ready(3), (3, 2, 3, 1)),
        ({"maxUnavailable": 1}, 3, pods_ready(2), (3, 2, 2, 0)),
        ({"maxUnavailable": "34%"}, 3, pods_ready(3), (3, 1, 3, 2)),
        ({"maxUnavailable": "10%"}, 3, pods_ready(3), (3, 2, 3, 1)),
        ({"maxUnavailable": "0%"}, 3, pods_ready(3), (3, 3, 3, 0)),
        ({"maxUnavailable": 5}, 3, pods_ready(3), (3, 0, 3, 3)),
        # Unready pods are expected but not healthy.
        ({"minAvailable": 2}, 3, pods_ready(2, 1), (3, 2, 2, 0)),
        ({"maxUnavailable": 1}, 4, pods_ready(2, 2), (4, 3, 2, 0)),
        # Nothing expected: nothing allowed, whatever the arithmetic says.
        ({"minAvailable": 0}, 3, [], (0, 0, 0, 0)),
        ({"maxUnavailable": 1}, 0, [], (0, 0, 0, 0)),
        ({}, 3, pods_ready(3), (0, 0, 3, 0)),
    ],
)
def test_status_counts(spec, replicas, pods, expected):
    status = compute_pdb_status(pdb(spec), pods, scale_resolver(deployment(replicas)), NOW)
    assert counts(status) == expected
    assert status["observedGeneration"] == 1


def test_max_unavailable_wins_when_both_are_set():
    status = compute_pdb_status(
        pdb({"maxUnavailable": 2, "minAvailable": 3}),
        pods_ready(3),
        scale_resolver(deployment(3)),
        NOW,
    )
    assert counts(status) == (3, 1, 3, 2)


def test_deleting_and_terminal_pods():
    pods = [*pods_ready(2), pod("gone", deleting=True), pod("done", ready=False, phase="Succeeded")]
    status = compute_pdb_status(pdb({"minAvailable": 1}), pods, scale_resolver(deployment(3)), NOW)
    # minAvailable int counts every matching pod (the lister keeps deleting/terminal ones).
    assert counts(status) == (4, 1, 2, 1)


def test_pods_of_two_replicasets_of_one_deployment_count_its_scale_once():
    objs = deployment(3, rs=(("web-1", "rs-1"), ("web-2", "rs-2")))
    pods = [pod("a"), pod("b"), pod("c", owned=("ReplicaSet", "web-2", "rs-2"))]
    status = compute_pdb_status(pdb({"maxUnavailable": 1}), pods, scale_resolver(objs), NOW)
    assert counts(status) == (3, 2, 3, 1)


@pytest.mark.parametrize(
    ("objs", "owned", "scale"),
    [
        ([workload("StatefulSet", "db", "ss-1", 5)], ("StatefulSet", "db", "ss-1"), 5),
        ([workload("ReplicaSet", "bare", "rs-9", 4)], ("ReplicaSet", "bare", "rs-9"), 4),
        (
            [workload("ReplicationController", "rc", "rc-1", 2, api="v1")],
            ("ReplicationController", "rc", "rc-1", "v1"),
            2,
        ),
        (
            [workload("Cluster", "pg", "pg-1", 3, api="postgresql.cnpg.io/v1", field="instances")],
            ("Cluster", "pg", "pg-1", "postgresql.cnpg.io/v1"),
            3,
        ),
    ],
)
def test_controller_scale_comes_from_each_kind(objs, owned, scale):
    pods = [pod("x", owned=owned)]
    status = compute_pdb_status(pdb({"maxUnavailable": 0}), pods, scale_resolver(objs), NOW)
    assert status["expectedPods"] == scale


def test_unmanaged_pods_are_skipped_for_scale_but_counted_healthy():
    pods = [*pods_ready(2), pod("bare", owned=None)]
    result = sync_pdb(pdb({"maxUnavailable": 1}), pods, scale_resolver(deployment(2)), NOW)
    assert counts(result.status) == (2, 1, 3, 2)
    assert result.unmanaged_pods == ("bare",)
    assert result.error is None


@pytest.mark.parametrize(
    ("spec", "pods", "objs", "message"),
    [
        (
            {"maxUnavailable": 1},
            [pod("ds", owned=("DaemonSet", "agent", "ds-1"))],
            [workload("DaemonSet", "agent", "ds-1", 1)],
            "daemonsets.apps does not implement the scale subresource",
        ),
        ({"minAvailable": "50%"}, [pod("orphan")], [], 'found no controllers for pod "orphan"'),
        (
            {"minAvailable": "50%"},
            [pod("x", owned=("ReplicaSet", "web-1", "other-uid"))],
            deployment(3),
            'found no controllers for pod "x"',
        ),
        (
            {"maxUnavailable": 1},
            [pod("x", owned=("Widget", "w", "w-1", "example.com/v1"))],
            [],
            'no matches for kind "Widget" in version "example.com/v1"',
        ),
        (
            {"minAvailable": "half"},
            pods_ready(1),
            deployment(1),
            "invalid value for IntOrString: invalid type: string is not a percentage",
        ),
        (
            {"maxUnavailable": "x%"},
            pods_ready(1),
            deployment(1),
            "invalid value for IntOrString: "
            'invalid value "x%": strconv.Atoi: parsing "x": invalid syntax',
        ),
    ],
)
def test_sync_failures_fail_safe(spec, pods, objs, message):
    old = {
        "observedGeneration": 1,
        "disruptionsAllowed": 2,
        "currentHealthy": 3,
        "desiredHealthy": 1,
        "expectedPods": 3,
    }
    result = sync_pdb(pdb(spec, status=old), pods, scale_resolver(objs), NOW)
    assert result.error == message
    # failSafe: only disruptionsAllowed drops to 0; the condition says why.
    assert result.status["disruptionsAllowed"] == 0
    assert result.status["currentHealthy"] == 3
    assert result.status["conditions"] == [
        {
            "type": "DisruptionAllowed",
            "status": "False",
            "observedGeneration": 1,
            "lastTransitionTime": rfc3339(NOW),
            "reason": "SyncFailed",
            "message": message,
        }
    ]


def test_recovering_from_sync_failure_clears_the_message():
    failed = sync_pdb(pdb({"minAvailable": "50%"}), [pod("orphan")], scale_resolver([]), NOW).status
    ok = sync_pdb(
        pdb({"minAvailable": 1}, status=failed), pods_ready(1), scale_resolver([]), NOW + 5
    )
    (cond,) = ok.status["conditions"]
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "InsufficientPods", "")
    assert cond["lastTransitionTime"] == rfc3339(NOW)  # status stayed False


def test_conditions_follow_disruptions_allowed_and_keep_transition_times():
    resolve = scale_resolver(deployment(3))
    first = sync_pdb(pdb({"minAvailable": 2}), pods_ready(3), resolve, NOW)
    assert first.changed
    assert first.status["conditions"] == [
        {
            "type": "DisruptionAllowed",
            "status": "True",
            "observedGeneration": 1,
            "lastTransitionTime": rfc3339(NOW),
            "reason": "SufficientPods",
            "message": "",
        }
    ]
    again = sync_pdb(
        pdb({"minAvailable": 2}, status=first.status), pods_ready(3), resolve, NOW + 30
    )
    assert not again.changed
    assert again.status == first.status
    lower = sync_pdb(
        pdb({"minAvailable": 2}, status=first.status), pods_ready(2, 1), resolve, NOW + 60
    )
    (cond,) = lower.status["conditions"]
    assert (cond["status"], cond["reason"], cond["lastTransitionTime"]) == (
        "False",
        "InsufficientPods",
        rfc3339(NOW + 60),
    )


def test_new_generation_is_observed():
    resolve = scale_resolver(deployment(3))
    first = sync_pdb(pdb({"minAvailable": 2}), pods_ready(3), resolve, NOW).status
    bumped = sync_pdb(
        pdb({"minAvailable": 1}, status=first, generation=2), pods_ready(3), resolve, NOW
    )
    assert bumped.changed
    assert bumped.status["observedGeneration"] == 2
    assert bumped.status["conditions"][0]["observedGeneration"] == 2


@pytest.mark.parametrize(
    ("age", "kept", "healthy"),
    [
        (30, True, 2),  # fresh entry: the pod is about to go, not healthy
        (DELETION_TIMEOUT - 1, True, 2),
        (DELETION_TIMEOUT, True, 3),  # upstream: kept (not Before now) yet counted (not After now)
        (DELETION_TIMEOUT + 1, False, 3),  # expired: assumed never deleted, healthy again
    ],
)
def test_disrupted_pods_expire_after_two_minutes(age, kept, healthy):
    status = {"observedGeneration": 1, "disruptedPods": {"p0": rfc3339(NOW - age)}}
    result = sync_pdb(
        pdb({"minAvailable": 2}, status=status), pods_ready(3), scale_resolver(deployment(3)), NOW
    )
    assert ("p0" in result.status.get("disruptedPods", {})) is kept
    assert result.status["currentHealthy"] == healthy
    assert result.recheck_at == ((NOW - age + DELETION_TIMEOUT) if kept else None)


def test_disrupted_pods_of_deleting_or_vanished_pods_are_dropped():
    status = {"disruptedPods": {"p0": rfc3339(NOW), "gone": rfc3339(NOW), "p2": rfc3339(NOW)}}
    pods = [pod("p0", deleting=True), pod("p1"), pod("p2")]
    result = sync_pdb(
        pdb({"minAvailable": 1}, status=status), pods, scale_resolver(deployment(3)), NOW
    )
    assert result.status["disruptedPods"] == {"p2": rfc3339(NOW)}
    assert result.status["currentHealthy"] == 1


def test_pods_of_other_namespaces_and_labels_do_not_count():
    other_ns = pod("x")
    other_ns["metadata"]["namespace"] = "elsewhere"
    pods = [*pods_ready(2), other_ns, pod("y", labels={"app": "api"})]
    status = compute_pdb_status(pdb({"minAvailable": 1}), pods, scale_resolver(deployment(2)), NOW)
    assert counts(status) == (2, 1, 2, 1)


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        (None, {"app": "web"}, False),  # null selector: nothing
        ({}, {"app": "web"}, True),  # empty selector: everything
        ({}, {}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "fe"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "api"}, False),
        ({"matchLabels": {"app": "web"}}, None, False),
        (
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]},
            {"app": "api"},
            True,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, {}, False),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
            {"app": "web"},
            False,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {"app": ""}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {"app": "x"}, False),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            },
            {"app": "web"},
            False,
        ),
    ],
)
def test_labels_match(selector, labels, matches):
    assert labels_match(selector, labels) is matches


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            {"key": "a", "operator": "Equals", "values": ["x"]},
            '"Equals" is not a valid label selector operator',
        ),
        ({"key": "a", "operator": "In", "values": []}, "values set can't be empty"),
        ({"key": "a", "operator": "Exists", "values": ["x"]}, "values set must be empty"),
    ],
)
def test_invalid_selectors_raise(expr, message):
    with pytest.raises(InvalidSelectorError, match=message):
        labels_match({"matchExpressions": [expr]}, {"a": "x"})


def test_invalid_pdb_selector_fails_the_sync():
    bad = pdb(
        {"minAvailable": 1}, selector={"matchExpressions": [{"key": "a", "operator": "Near"}]}
    )
    result = sync_pdb(bad, pods_ready(1), scale_resolver([]), NOW)
    assert result.error == '"Near" is not a valid label selector operator'


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [
        (3, 10, True, 3),
        ("50%", 3, True, 2),
        ("50%", 3, False, 1),
        ("34%", 3, True, 2),
        ("0%", 7, True, 0),
        ("100%", 7, False, 7),
    ],
)
def test_scaled_value(value, total, up, expected):
    assert scaled_value(value, total, up) == expected


# --- properties ------------------------------------------------------------------------------

specs = st.one_of(
    st.integers(0, 8).map(lambda n: {"minAvailable": n}),
    st.integers(0, 100).map(lambda n: {"minAvailable": f"{n}%"}),
    st.integers(0, 8).map(lambda n: {"maxUnavailable": n}),
    st.integers(0, 100).map(lambda n: {"maxUnavailable": f"{n}%"}),
)


@given(
    spec=specs,
    replicas=st.integers(0, 8),
    readiness=st.lists(st.booleans(), max_size=8),
    deleting=st.lists(st.booleans(), max_size=8),
    disrupted_ages=st.lists(st.floats(0, 300), max_size=8),
)
def test_disruptions_allowed_is_never_negative_nor_above_healthy(
    spec, replicas, readiness, deleting, disrupted_ages
):
    pods = [
        pod(f"p{i}", ready=ready, deleting=i < len(deleting) and deleting[i])
        for i, ready in enumerate(readiness)
    ]
    status = {
        "disruptedPods": {f"p{i}": rfc3339(NOW - age) for i, age in enumerate(disrupted_ages)}
    }
    result = sync_pdb(pdb(spec, status=status), pods, scale_resolver(deployment(replicas)), NOW)
    got = result.status
    assert got["disruptionsAllowed"] >= 0
    assert got["currentHealthy"] <= sum(readiness)
    assert got["disruptionsAllowed"] <= max(0, got["currentHealthy"] - got["desiredHealthy"])
    assert got["expectedPods"] >= 0


def test_replicaset_of_a_vanished_deployment_falls_back_to_its_own_scale():
    rs = workload("ReplicaSet", "web-1", "rs-1", 4, [owner("Deployment", "web", "dep-gone")])
    status = compute_pdb_status(
        pdb({"maxUnavailable": 1}), pods_ready(2), scale_resolver([rs]), NOW
    )
    assert counts(status) == (4, 3, 2, 0)


# --- compiled selectors and tallies (what the controller runs) -------------------------------

selector_cases = [
    None,
    {},
    {"matchLabels": {"app": "web"}},
    {"matchLabels": {"app": "web", "tier": "front"}},
    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]},
    {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]},
    {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
    {"matchLabels": {"app": "web"},
     "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
]
label_cases = [None, {}, {"app": "web"}, {"app": "db"}, {"app": "web", "tier": "front"},
               {"tier": "back"}]


@pytest.mark.parametrize("selector", selector_cases)
@pytest.mark.parametrize("labels", label_cases)
def test_compiled_selector_matches_as_labels_match(selector, labels):
    assert compile_selector(selector)(labels) is labels_match(selector, labels)


def test_invalid_selector_fails_the_sync_even_without_pods():
    # metav1.LabelSelectorAsSelector fails before any pod is looked at.
    bad = pdb({"minAvailable": 1}, selector={
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "a", "operator": "Near"}]})
    message = '"Near" is not a valid label selector operator'
    assert sync_pdb(bad, [], scale_resolver([]), NOW).error == message
    assert sync_pdb(bad, [pod("x", labels={"app": "db"})], scale_resolver([]), NOW).error == message
    assert sync_pdb_tally(bad, PodTally(NS), scale_resolver([]), NOW).error == message


OWNERS = [
    ("ReplicaSet", "web-1", "rs-1"),
    ("ReplicaSet", "web-2", "rs-2"),
    ("ReplicaSet", "web-1", "stale-uid"),
    ("DaemonSet", "agent", "ds-1"),
    None,
]
pod_strategy = st.fixed_dictionaries({
    "ready": st.booleans(),
    "deleting": st.booleans(),
    "owned": st.sampled_from(OWNERS),
    "labels": st.sampled_from([{"app": "web"}, {"app": "web", "tier": "front"}, {"app": "db"}]),
})
tally_specs = st.one_of(
    specs,
    st.sampled_from([{"maxUnavailable": "half"}, {}, {"minAvailable": "x%"}]),
)


@settings(max_examples=300)
@given(
    spec=tally_specs,
    replicas=st.integers(0, 8),
    pods=st.lists(pod_strategy, max_size=8),
    disrupted=st.dictionaries(st.sampled_from([f"p{i}" for i in range(10)]),
                              st.floats(0, 300), max_size=4),
    with_second_rs=st.booleans(),
    with_ds=st.booleans(),
)
def test_tally_sync_equals_the_pod_by_pod_sync(
    spec, replicas, pods, disrupted, with_second_rs, with_ds
):
    objs = deployment(replicas, rs=(("web-1", "rs-1"), ("web-2", "rs-2"))
                      if with_second_rs else (("web-1", "rs-1"),))
    if with_ds:
        objs.append(workload("DaemonSet", "agent", "ds-1", 1))
    resolve = scale_resolver(objs)
    items = [pod(f"p{i}", ready=p["ready"], deleting=p["deleting"], owned=p["owned"],
                 labels=p["labels"]) for i, p in enumerate(pods)]
    status = {"observedGeneration": 1, "disruptionsAllowed": 1,
              "disruptedPods": {n: rfc3339(NOW - age) for n, age in disrupted.items()}}
    the_pdb = pdb(spec, status=status)
    want = sync_pdb(the_pdb, items, resolve, NOW)
    got = sync_pdb_tally(the_pdb, PodTally.of(NS, pods_for_pdb(the_pdb, items)), resolve, NOW)
    assert got == want


@settings(max_examples=200)
@given(ops=st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), pod_strategy)),
                    max_size=30))
def test_tally_kept_pod_by_pod_equals_a_fresh_one(ops):
    tally, current = PodTally(NS), {}
    for i, spec in ops:
        name = f"p{i}"
        if spec is None:
            tally.discard(name)
            current.pop(name, None)
        else:
            p = pod(name, ready=spec["ready"], deleting=spec["deleting"], owned=spec["owned"])
            tally.add(p)
            current[name] = p
    fresh = PodTally.of(NS, current.values())
    assert tally.pods == fresh.pods
    assert tally.ready == fresh.ready
    assert {k: set(v) for k, v in tally.refs.items()} == {
        k: set(v) for k, v in fresh.refs.items()}
    assert set(tally.unmanaged) == set(fresh.unmanaged)
