"""The Eviction subresource's decision (`POST .../pods/NAME/eviction`), on plain API dicts.

Mirrors kubernetes `pkg/registry/core/pod/storage/eviction.go` (`EvictionREST.Create`,
`canIgnorePDB`, `checkAndDecrement`, `addConditionAndDeletePod`, `getPodDisruptionBudgets`) in
upstream order, plus how the generic handler turns its results into HTTP answers: a returned
Status that is not Success becomes an error (`finisher` → `ErrorToAPIStatus`), a Success Status
gets code 201 (create handler). Pure: the caller does the writes the decision names.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubehop.lab.api.selectors import InvalidSelectorError
from kubehop.lab.clock import rfc3339
from kubehop.lab.controllers.disruption_arithmetic import (
    is_deleting,
    is_pod_ready,
    labels_match,
    update_disruption_allowed_condition,
)

# eviction.go MaxDisruptedPodSize: more unconfirmed evictions than this and the PDB refuses.
MAX_DISRUPTED_POD_SIZE = 2000

VIOLATES_BUDGET = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_PDBS = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not "
    "support."
)
DISRUPTION_TARGET = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "EvictionByEvictionAPI",
    "message": "Eviction API: evicting",
}


@dataclass(frozen=True, slots=True)
class EvictionDecision:
    """What the API server answers to one eviction and which writes it makes.

    `code`/`body`/`retry_after` are the HTTP answer (body a v1 Status). When `pdb_status` is set,
    write it as the status of `pdb` (`ns/name`) first; when `delete`, add `pod_condition` to the
    pod's status, then delete the pod with `delete_options` (grace period
    `grace_period_seconds`, None = the pod's own). If that delete fails on the resourceVersion
    precondition and `conflict_body` is set, answer 429 with it instead (upstream retry hint).
    """

    code: int
    body: dict[str, Any]
    retry_after: int | None = None
    pdb: str | None = None
    pdb_status: dict[str, Any] | None = None
    delete: bool = False
    pod_condition: dict[str, Any] | None = None
    delete_options: dict[str, Any] | None = None
    grace_period_seconds: int | None = None
    dry_run: bool = False
    conflict_body: dict[str, Any] | None = None

    @property
    def allowed(self) -> bool:
        """The eviction was granted (201)."""
        return self.code == 201


# --- v1 Status bodies ------------------------------------------------------------------------


def status_body(
    code: int, message: str = "", reason: str = "", details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A v1 Status as the API server serializes it (empty fields omitted)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if 200 <= code < 300 else "Failure",
    }
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    body["code"] = code
    return body


def too_many_requests(cause: str, retry_after: int) -> dict[str, Any]:
    """errors.NewTooManyRequests + a DisruptionBudget cause (retryAfterSeconds omitted if 0)."""
    details: dict[str, Any] = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return status_body(429, VIOLATES_BUDGET, "TooManyRequests", details)


def still_processing(pdb_name: str) -> dict[str, Any]:
    """createTooManyRequestsError: 429, Retry-After 10."""
    cause = f"The disruption budget {pdb_name} is still being processed by the server."
    return too_many_requests(cause, 10)


def _forbidden(pdb_name: str, why: str) -> dict[str, Any]:
    """errors.NewForbidden(policy.Resource("poddisruptionbudget"), name, err)."""
    message = f'poddisruptionbudget.policy "{pdb_name}" is forbidden: {why}'
    details = {"name": pdb_name, "group": "policy", "kind": "poddisruptionbudget"}
    return status_body(403, message, "Forbidden", details)


def _refuse(body: dict[str, Any], pdb: str | None = None) -> EvictionDecision:
    retry = (body.get("details") or {}).get("retryAfterSeconds") or None
    return EvictionDecision(body["code"], body, retry_after=retry, pdb=pdb)


# --- pods ------------------------------------------------------------------------------------


def pod_condition(now: float) -> dict[str, Any]:
    """The DisruptionTarget condition the eviction adds (as serialized, lastProbeTime null)."""
    return {
        "type": DISRUPTION_TARGET["type"],
        "status": DISRUPTION_TARGET["status"],
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339(now),
        "reason": DISRUPTION_TARGET["reason"],
        "message": DISRUPTION_TARGET["message"],
    }


def with_pod_condition(pod: Mapping[str, Any], condition: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `pod` with `condition` set as podutil.UpdatePodCondition sets it.

    An existing condition of that type is replaced; its lastTransitionTime is kept when the
    status did not change.
    """
    result = copy.deepcopy(dict(pod))
    conditions = result.setdefault("status", {}).setdefault("conditions", [])
    new = dict(condition)
    for i, old in enumerate(conditions):
        if old.get("type") == new["type"]:
            if old.get("status") == new["status"]:
                new["lastTransitionTime"] = old.get("lastTransitionTime")
            conditions[i] = new
            return result
    conditions.append(new)
    return result


def _can_ignore_pdb(pod: Mapping[str, Any]) -> bool:
    """canIgnorePDB: terminal or Pending pods, or pods already being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or is_deleting(pod)


def _should_enforce_resource_version(pod: Mapping[str, Any]) -> bool:
    """shouldEnforceResourceVersion: not for terminal or deleting pods."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_deleting(pod)


def _rv_unset(options: Mapping[str, Any]) -> bool:
    return (options.get("preconditions") or {}).get("resourceVersion") is None


def _with_rv(options: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, Any]:
    """setPreconditionsResourceVersion on a copy: pin the pod's current resourceVersion."""
    result = copy.deepcopy(dict(options))
    rv = (pod.get("metadata") or {}).get("resourceVersion")
    result["preconditions"] = {**(result.get("preconditions") or {}), "resourceVersion": rv}
    return result


def matching_pdbs(pod: Mapping[str, Any], pdbs: Sequence[Mapping[str, Any]]) -> list[dict]:
    """getPodDisruptionBudgets: PDBs of the pod's namespace whose selector matches its labels.

    A PDB with an invalid selector matches nothing; a null selector matches nothing and `{}`
    matches every pod (policy/v1).
    """
    meta = pod.get("metadata") or {}
    result = []
    for pdb in pdbs:
        if (pdb.get("metadata") or {}).get("namespace") != meta.get("namespace"):
            continue
        try:
            if labels_match((pdb.get("spec") or {}).get("selector"), meta.get("labels")):
                result.append(dict(pdb))
        except InvalidSelectorError:
            continue
    return result


# --- the decision ----------------------------------------------------------------------------


def decide_eviction(
    pod: Mapping[str, Any] | None,
    pdbs: Sequence[Mapping[str, Any]],
    body: Mapping[str, Any],
    url_name: str,
    now: float,
    *,
    dry_run: Sequence[str] = (),
) -> EvictionDecision:
    """Decide an eviction of `pod` (None if it does not exist), given the namespace's PDBs.

    `body` is the Eviction object posted, `url_name` the pod name in the URL, `now` Unix
    seconds (object timestamps), `dry_run` the request's `?dryRun=` values.
    """
    if (body.get("metadata") or {}).get("name") != url_name:
        message = "name in URL does not match name in Eviction object"
        return _refuse(status_body(400, message, "BadRequest"))

    # propagateDryRun: the query and the body's deleteOptions must agree when both are set.
    options = copy.deepcopy(dict(body.get("deleteOptions") or {}))
    body_dry = list(options.get("dryRun") or [])
    if body_dry and dry_run and body_dry != list(dry_run):
        message = (
            "Non-matching dry-run options in request and content: "
            f"[{' '.join(dry_run)}] and [{' '.join(body_dry)}]"
        )
        return _refuse(status_body(500, message, "Unknown"))
    if not body_dry and dry_run:
        options["dryRun"] = list(dry_run)
    is_dry = "All" in (options.get("dryRun") or [])
    grace = options.get("gracePeriodSeconds")

    if pod is None:
        details = {"name": url_name, "kind": "pods"}
        return _refuse(status_body(404, f'pods "{url_name}" not found', "NotFound", details))

    def granted(
        delete_options: dict[str, Any],
        pdb: str | None = None,
        pdb_status: dict[str, Any] | None = None,
        conflict: dict[str, Any] | None = None,
    ) -> EvictionDecision:
        return EvictionDecision(
            201,
            status_body(201),
            pdb=pdb,
            pdb_status=None if is_dry else pdb_status,
            delete=not is_dry,
            pod_condition=None if is_dry else pod_condition(now),
            delete_options=delete_options,
            grace_period_seconds=grace,
            dry_run=is_dry,
            conflict_body=conflict,
        )

    # Terminal, Pending or deleting pods are deleted without a PDB check (the disruption has
    # already happened); a Pending pod's resourceVersion is pinned against racing readiness.
    if _can_ignore_pdb(pod):
        if _should_enforce_resource_version(pod) and _rv_unset(options):
            return granted(_with_rv(options, pod))
        return granted(options)

    matched = matching_pdbs(pod, pdbs)
    if len(matched) > 1:
        return _refuse(status_body(500, MULTIPLE_PDBS))
    if not matched:
        return granted(options)

    pdb = matched[0]
    meta = pdb.get("metadata") or {}
    name = meta.get("name", "")
    key = f"{meta.get('namespace', '')}/{name}"
    status = pdb.get("status") or {}

    # An unready pod does not count as healthy: AlwaysAllow deletes it outright, the default
    # (IfHealthyBudget) only while the budget is currently met; neither decrements the budget.
    if not is_pod_ready(pod):
        policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy")
        desired = status.get("desiredHealthy", 0)
        if policy == "AlwaysAllow" or (status.get("currentHealthy", 0) >= desired > 0):
            conflict = still_processing(name) if _rv_unset(options) else None
            return granted(_with_rv(options, pod), pdb=key, conflict=conflict)
        # otherwise fall through: checkAndDecrement confirms no disruption is allowed

    # checkAndDecrement, in upstream order.
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return _refuse(still_processing(name), key)
    allowed = status.get("disruptionsAllowed", 0)
    if allowed < 0:
        return _refuse(_forbidden(name, "pdb disruptions allowed is negative"), key)
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        why = "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
        return _refuse(_forbidden(name, why), key)
    if allowed == 0:
        cause = (
            f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods "
            f"and has {status.get('currentHealthy', 0)} currently"
        )
        return _refuse(too_many_requests(cause, 0), key)

    new_status = copy.deepcopy(dict(status))
    new_status["disruptionsAllowed"] = allowed - 1
    if new_status["disruptionsAllowed"] == 0:
        new_status = update_disruption_allowed_condition(new_status, now)
    # Tell the disruption controller this pod is about to go, so it stops counting it healthy.
    pod_name = (pod.get("metadata") or {}).get("name", "")
    new_status["disruptedPods"] = {
        **(new_status.get("disruptedPods") or {}),
        pod_name: rfc3339(now),
    }
    return granted(options, pdb=key, pdb_status=new_status)
