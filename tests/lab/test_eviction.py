"""Every outcome of the Eviction subresource, with upstream's exact messages and codes."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubehop.lab.api.eviction import (
    DISRUPTION_TARGET,
    decide_eviction,
    matching_pdbs,
    with_pod_condition,
)
from kubehop.lab.clock import rfc3339
from kubehop.lab.controllers.disruption_arithmetic import scale_resolver, sync_pdb

NOW = 1714564800.0
NS = "web"
BUDGET = "Cannot evict pod as it would violate the pod's disruption budget."


def pod(name="web-1", ready=True, phase="Running", deleting=False, labels=None, rv="42"):
    meta = {
        "name": name,
        "namespace": NS,
        "resourceVersion": rv,
        "labels": {"app": "web"} if labels is None else labels,
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-1",
                "uid": "rs-1",
                "controller": True,
            }
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW - 5)
    return {
        "metadata": meta,
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pdb(
    name="web", allowed=1, current=3, desired=2, generation=1, observed=1, policy=None, **extra
):
    spec = {"selector": extra.get("selector", {"matchLabels": {"app": "web"}}), "minAvailable": 2}
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    status = {
        "observedGeneration": observed,
        "disruptionsAllowed": allowed,
        "currentHealthy": current,
        "desiredHealthy": desired,
        "expectedPods": 3,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": "True" if allowed > 0 else "False",
                "observedGeneration": observed,
                "lastTransitionTime": rfc3339(NOW - 600),
                "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                "message": "",
            }
        ],
    }
    if "disrupted" in extra:
        status["disruptedPods"] = extra["disrupted"]
    return {
        "metadata": {
            "name": name,
            "namespace": extra.get("namespace", NS),
            "generation": generation,
        },
        "spec": spec,
        "status": status,
    }


def eviction(name="web-1", **delete_options):
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": NS},
    }
    if delete_options:
        body["deleteOptions"] = delete_options
    return body


SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def failure(code, message, reason=None, details=None):
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
    }
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    body["code"] = code
    return body


def too_many(cause, retry=None):
    details = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    if retry:
        details["retryAfterSeconds"] = retry
    return failure(429, BUDGET, "TooManyRequests", details)


def forbidden(why):
    message = f'poddisruptionbudget.policy "web" is forbidden: {why}'
    return failure(
        403, message, "Forbidden", {"name": "web", "group": "policy", "kind": "poddisruptionbudget"}
    )


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_pod", "pdbs", "body", "url", "code", "expected_body", "retry", "pdb_key"),
    [
        (
            pod(),
            [pdb()],
            eviction("other"),
            "web-1",
            400,
            failure(400, "name in URL does not match name in Eviction object", "BadRequest"),
            None,
            None,
        ),
        (
            None,
            [],
            eviction(),
            "web-1",
            404,
            failure(404, 'pods "web-1" not found', "NotFound", {"name": "web-1", "kind": "pods"}),
            None,
            None,
        ),
        (
            pod(),
            [pdb("a"), pdb("b")],
            eviction(),
            "web-1",
            500,
            failure(
                500,
                "This pod has more than one PodDisruptionBudget, "
                "which the eviction subresource does not support.",
            ),
            None,
            None,
        ),
        (
            pod(),
            [pdb(generation=2, observed=1)],
            eviction(),
            "web-1",
            429,
            too_many("The disruption budget web is still being processed by the server.", 10),
            10,
            "web/web",
        ),
        (
            pod(),
            [pdb(allowed=-1)],
            eviction(),
            "web-1",
            403,
            forbidden("pdb disruptions allowed is negative"),
            None,
            "web/web",
        ),
        (
            pod(),
            [pdb(allowed=3, disrupted={f"p{i}": rfc3339(NOW) for i in range(2001)})],
            eviction(),
            "web-1",
            403,
            forbidden(
                "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
            ),
            None,
            "web/web",
        ),
        (
            pod(),
            [pdb(allowed=0, current=2, desired=2)],
            eviction(),
            "web-1",
            429,
            too_many("The disruption budget web needs 2 healthy pods and has 2 currently"),
            None,
            "web/web",
        ),
        (
            # Unready pod, default policy, budget not met: checkAndDecrement refuses it.
            pod(ready=False),
            [pdb(allowed=0, current=1, desired=2)],
            eviction(),
            "web-1",
            429,
            too_many("The disruption budget web needs 2 healthy pods and has 1 currently"),
            None,
            "web/web",
        ),
        (
            pod(ready=False),
            [
                pdb(
                    allowed=0,
                    current=2,
                    desired=2,
                    policy="IfHealthyBudget",
                    generation=3,
                    observed=2,
                )
            ],
            eviction(),
            "web-1",
            201,
            SUCCESS,
            None,
            "web/web",
        ),
    ],
)
def test_outcomes(the_pod, pdbs, body, url, code, expected_body, retry, pdb_key):
    decision = decide_eviction(the_pod, pdbs, body, url, NOW)
    assert decision.code == code
    assert decision.body == expected_body
    assert decision.retry_after == retry
    assert decision.pdb == pdb_key
    assert decision.delete is (code == 201)
    if code != 201:
        assert decision.pdb_status is None
        assert decision.pod_condition is None


def test_name_check_comes_before_everything():
    assert decide_eviction(None, [], eviction("x"), "web-1", NOW).code == 400


def test_observed_generation_check_comes_before_disruptions_allowed():
    decision = decide_eviction(
        pod(), [pdb(allowed=-1, generation=5, observed=4)], eviction(), "web-1", NOW
    )
    assert decision.code == 429


def test_exactly_max_disrupted_pods_is_still_allowed():
    disrupted = {f"p{i}": rfc3339(NOW) for i in range(2000)}
    assert decide_eviction(pod(), [pdb(disrupted=disrupted)], eviction(), "web-1", NOW).code == 201


# --- grants ----------------------------------------------------------------------------------


def test_granted_eviction_decrements_and_records_the_disruption():
    decision = decide_eviction(pod(), [pdb(allowed=2)], eviction(), "web-1", NOW)
    assert decision.allowed
    assert decision.body == SUCCESS
    assert decision.pdb == "web/web"
    assert decision.pdb_status["disruptionsAllowed"] == 1
    assert decision.pdb_status["disruptedPods"] == {"web-1": rfc3339(NOW)}
    assert decision.pdb_status["conditions"][0]["reason"] == "SufficientPods"
    assert decision.pdb_status["currentHealthy"] == 3  # the controller recounts later
    assert decision.delete
    assert decision.delete_options == {}
    assert decision.conflict_body is None


def test_last_allowed_disruption_flips_the_condition():
    decision = decide_eviction(
        pod(), [pdb(allowed=1, disrupted={"old": rfc3339(NOW - 9)})], eviction(), "web-1", NOW
    )
    status = decision.pdb_status
    assert status["disruptionsAllowed"] == 0
    assert status["disruptedPods"] == {"old": rfc3339(NOW - 9), "web-1": rfc3339(NOW)}
    assert status["conditions"] == [
        {
            "type": "DisruptionAllowed",
            "status": "False",
            "observedGeneration": 1,
            "lastTransitionTime": rfc3339(NOW),
            "reason": "InsufficientPods",
            "message": "",
        }
    ]


def test_granted_pod_gets_the_disruption_target_condition():
    decision = decide_eviction(pod(), [], eviction(), "web-1", NOW)
    assert decision.pod_condition == {
        "type": "DisruptionTarget",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339(NOW),
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    }


@pytest.mark.parametrize(
    ("the_pod", "options"),
    [
        # Terminal and deleting pods: straight delete, options untouched.
        (pod(phase="Succeeded", ready=False), {}),
        (pod(phase="Failed", ready=False), {}),
        (pod(deleting=True), {}),
        # Pending: straight delete, but pinned to the resourceVersion seen.
        (pod(phase="Pending", ready=False), {"preconditions": {"resourceVersion": "42"}}),
    ],
)
def test_pods_that_need_no_pdb_check(the_pod, options):
    blocking = pdb(allowed=0, current=0, desired=3)
    decision = decide_eviction(the_pod, [blocking], eviction(), "web-1", NOW)
    assert decision.code == 201
    assert decision.pdb is None
    assert decision.pdb_status is None
    assert decision.delete_options == options


def test_pending_pod_keeps_a_resource_version_the_client_chose():
    body = eviction(preconditions={"resourceVersion": "7"})
    decision = decide_eviction(pod(phase="Pending"), [], body, "web-1", NOW)
    assert decision.delete_options == {"preconditions": {"resourceVersion": "7"}}


def test_no_matching_pdb_deletes_without_budget():
    other_ns = pdb(allowed=0, namespace="elsewhere")
    other_labels = pdb(allowed=0, selector={"matchLabels": {"app": "api"}})
    null_selector = pdb(allowed=0, selector=None)
    decision = decide_eviction(
        pod(), [other_ns, other_labels, null_selector], eviction(), "web-1", NOW
    )
    assert (decision.code, decision.pdb, decision.pdb_status) == (201, None, None)


def test_empty_selector_selects_every_pod_of_the_namespace():
    assert (
        decide_eviction(pod(), [pdb(allowed=0, selector={})], eviction(), "web-1", NOW).code == 429
    )


def test_invalid_selector_matches_nothing():
    bad = pdb(allowed=0, selector={"matchExpressions": [{"key": "app", "operator": "Near"}]})
    assert matching_pdbs(pod(), [bad]) == []


@pytest.mark.parametrize(
    ("policy", "current", "desired"),
    [("AlwaysAllow", 0, 2), ("AlwaysAllow", 5, 2), (None, 2, 2), ("IfHealthyBudget", 3, 2)],
)
def test_unready_pod_goes_without_spending_the_budget(policy, current, desired):
    blocking = pdb(allowed=0, current=current, desired=desired, policy=policy)
    decision = decide_eviction(pod(ready=False), [blocking], eviction(), "web-1", NOW)
    assert decision.code == 201
    assert decision.pdb == "web/web"
    assert decision.pdb_status is None
    assert decision.delete_options == {"preconditions": {"resourceVersion": "42"}}
    assert decision.conflict_body == too_many(
        "The disruption budget web is still being processed by the server.", 10
    )


def test_unready_pod_with_zero_desired_healthy_spends_the_budget():
    decision = decide_eviction(
        pod(ready=False), [pdb(allowed=1, current=0, desired=0)], eviction(), "web-1", NOW
    )
    assert decision.code == 201
    assert decision.pdb_status["disruptionsAllowed"] == 0


def test_grace_period_and_dry_run():
    decision = decide_eviction(pod(), [pdb()], eviction(gracePeriodSeconds=30), "web-1", NOW)
    assert decision.grace_period_seconds == 30
    assert decision.delete_options == {"gracePeriodSeconds": 30}

    dry = decide_eviction(pod(), [pdb()], eviction(dryRun=["All"]), "web-1", NOW)
    assert (dry.code, dry.dry_run, dry.delete, dry.pdb_status, dry.pod_condition) == (
        201,
        True,
        False,
        None,
        None,
    )
    from_query = decide_eviction(pod(), [pdb()], eviction(), "web-1", NOW, dry_run=["All"])
    assert from_query.dry_run
    assert from_query.delete_options == {"dryRun": ["All"]}
    # A dry run still answers as the real one would.
    assert (
        decide_eviction(pod(), [pdb(allowed=0)], eviction(dryRun=["All"]), "web-1", NOW).code == 429
    )


def test_conflicting_dry_run_options():
    decision = decide_eviction(pod(), [], eviction(dryRun=["All"]), "web-1", NOW, dry_run=["Other"])
    assert decision.code == 500
    assert decision.body == failure(
        500, "Non-matching dry-run options in request and content: [Other] and [All]", "Unknown"
    )


def test_with_pod_condition_follows_update_pod_condition():
    target = decide_eviction(pod(), [], eviction(), "web-1", NOW).pod_condition
    added = with_pod_condition(pod(), target)
    assert added["status"]["conditions"][-1] == target
    again = with_pod_condition(added, {**target, "lastTransitionTime": rfc3339(NOW + 50)})
    assert [c["type"] for c in again["status"]["conditions"]] == ["Ready", "DisruptionTarget"]
    assert again["status"]["conditions"][-1]["lastTransitionTime"] == rfc3339(
        NOW
    )  # status unchanged
    flipped = with_pod_condition(
        added, {**target, "status": "False", "lastTransitionTime": rfc3339(NOW + 50)}
    )
    assert flipped["status"]["conditions"][-1]["lastTransitionTime"] == rfc3339(NOW + 50)
    assert pod()["status"]["conditions"] == [{"type": "Ready", "status": "True"}]  # input untouched
    assert DISRUPTION_TARGET["reason"] == "EvictionByEvictionAPI"


# --- property: the budget holds --------------------------------------------------------------


def deployment(replicas):
    rs_owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": "dep-1",
        "controller": True,
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NS, "uid": "dep-1"},
            "spec": {"replicas": replicas},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": "web-1",
                "namespace": NS,
                "uid": "rs-1",
                "ownerReferences": [rs_owner],
            },
            "spec": {"replicas": replicas},
        },
    ]


budgets = st.one_of(
    st.integers(0, 6).map(lambda n: {"minAvailable": n}),
    st.sampled_from(["0%", "30%", "50%", "67%", "100%"]).map(lambda p: {"minAvailable": p}),
    st.integers(0, 6).map(lambda n: {"maxUnavailable": n}),
    st.sampled_from(["0%", "25%", "34%", "50%", "100%"]).map(lambda p: {"maxUnavailable": p}),
)


@settings(max_examples=200)
@given(
    budget=budgets,
    policy=st.sampled_from([None, "IfHealthyBudget", "AlwaysAllow"]),
    readiness=st.lists(st.booleans(), min_size=1, max_size=7),
    actions=st.lists(st.one_of(st.integers(0, 6), st.just("sync")), max_size=12),
)
def test_evictions_never_take_a_budget_below_desired(budget, policy, readiness, actions):
    """Granted evictions never bring currentHealthy below desiredHealthy (or below where it was)."""
    resolve = scale_resolver(deployment(len(readiness)))
    pods = [pod(f"p{i}", ready=r) for i, r in enumerate(readiness)]
    spec = {"selector": {"matchLabels": {"app": "web"}}, **budget}
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    the_pdb = {"metadata": {"name": "web", "namespace": NS, "generation": 1}, "spec": spec}
    the_pdb["status"] = sync_pdb(the_pdb, pods, resolve, NOW).status
    start_current, desired = (
        the_pdb["status"]["currentHealthy"],
        the_pdb["status"]["desiredHealthy"],
    )
    floor = min(start_current, desired)
    for action in [*actions, "sync"]:
        if action == "sync":
            the_pdb["status"] = sync_pdb(the_pdb, pods, resolve, NOW).status
            assert the_pdb["status"]["currentHealthy"] >= floor
            assert the_pdb["status"]["disruptionsAllowed"] >= 0
            continue
        if action >= len(pods):
            continue
        victim = pods[action]
        decision = decide_eviction(
            victim, [the_pdb], eviction(victim["metadata"]["name"]), victim["metadata"]["name"], NOW
        )
        assert decision.code in (201, 429)
        if decision.allowed:
            if decision.pdb_status is not None:
                the_pdb["status"] = decision.pdb_status
            pods.remove(victim)
