"""The disruption (PodDisruptionBudget) controller's arithmetic, on plain API dicts.

Mirrors kubernetes `pkg/controller/disruption/disruption.go` (`trySync`, `getExpectedPodCount`,
`getExpectedScale`, `buildDisruptedPodMap`, `countHealthyPods`, `updatePdbStatus`, `failSafe`)
and `component-helpers/apps/poddisruptionbudget` (the DisruptionAllowed condition). Pure: the
caller passes the PDB, the pods of its namespace, a resolver for controller scale and "now" in
Unix seconds (see `kubehop.lab.clock`); nothing here reads a clock or an object store.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubehop.lab.api.selectors import InvalidSelectorError
from kubehop.lab.clock import parse_rfc3339, rfc3339

# disruption.go: an entry of status.disruptedPods older than this is assumed never deleted.
DELETION_TIMEOUT = 120.0

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"


class ScaleError(Exception):
    """The scale of a pod's controller cannot be determined (the controller's sync fails)."""


# (controllerRef, namespace) -> (UID of the controller whose scale counts, its replicas), or
# None when no such controller exists; raises ScaleError when the lookup itself fails.
ScaleResolver = Callable[[Mapping[str, Any], str], "tuple[str, int] | None"]


# --- selectors and pod helpers ----------------------------------------------------------------


def labels_match(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether a metav1.LabelSelector selects these labels.

    As `LabelSelectorAsSelector`: a null selector matches nothing, `{}` matches everything;
    matchExpressions take In/NotIn (non-empty values), Exists/DoesNotExist (no values).
    Raises InvalidSelectorError for a selector the API would not accept.
    """
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.get("matchExpressions") or []:
        key, op, values = req.get("key", ""), req.get("operator", ""), req.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                raise InvalidSelectorError("for 'in', 'notin' operators, values set can't be empty")
            present = key in labels and labels[key] in values
            if present != (op == "In"):
                return False
        elif op in ("Exists", "DoesNotExist"):
            if values:
                raise InvalidSelectorError("values set must be empty for exists and does not exist")
            if (key in labels) != (op == "Exists"):
                return False
        else:
            raise InvalidSelectorError(f'"{op}" is not a valid label selector operator')
    return True


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """metav1.GetControllerOf: the first ownerReference with controller: true."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


LabelPredicate = Callable[[Mapping[str, str] | None], bool]


def compile_selector(selector: Mapping[str, Any] | None) -> LabelPredicate:
    """metav1.LabelSelectorAsSelector: a predicate over labels with `labels_match` semantics.

    As upstream, the whole selector is validated up front (InvalidSelectorError), whatever the
    labels it is later applied to.
    """
    if selector is None:
        return lambda labels: False
    pairs = tuple((selector.get("matchLabels") or {}).items())
    reqs: list[tuple[str, bool, bool, Any]] = []  # key, set-based, positive, values
    for req in selector.get("matchExpressions") or []:
        key, op, values = req.get("key", ""), req.get("operator", ""), req.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                raise InvalidSelectorError("for 'in', 'notin' operators, values set can't be empty")
            reqs.append((key, True, op == "In", values))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                raise InvalidSelectorError("values set must be empty for exists and does not exist")
            reqs.append((key, False, op == "Exists", ()))
        else:
            raise InvalidSelectorError(f'"{op}" is not a valid label selector operator')
    if not reqs:
        if not pairs:
            return lambda labels: True

        def match_labels(labels: Mapping[str, str] | None) -> bool:
            if not labels:
                return False
            for key, value in pairs:  # a loop: cheaper than all() over a generator
                if labels.get(key) != value:
                    break
            else:
                return True
            return False

        return match_labels

    def match(labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        for key, value in pairs:
            if labels.get(key) != value:
                return False
        for key, set_based, positive, values in reqs:
            present = key in labels and (not set_based or labels[key] in values)
            if present != positive:
                return False
        return True

    return match


def pods_for_pdb(
    pdb: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """getPodsForPdb: the pods of the PDB's namespace that its selector matches (the pods
    themselves, not copies: callers only read them). Raises InvalidSelectorError for a selector the
    API would not accept."""
    namespace = (pdb.get("metadata") or {}).get("namespace")
    matches = compile_selector((pdb.get("spec") or {}).get("selector"))
    found = []
    for p in pods:
        meta = p.get("metadata") or {}
        if (namespace is None or meta.get("namespace") == namespace) and matches(
            meta.get("labels")
        ):
            found.append(p)
    return found


# --- controller scale ------------------------------------------------------------------------

# Kinds the lab knows, with their resource name (for messages) and whether they serve /scale.
_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("", "ReplicationController"): ("replicationcontrollers", True),
    ("apps", "ReplicaSet"): ("replicasets.apps", True),
    ("apps", "Deployment"): ("deployments.apps", True),
    ("apps", "StatefulSet"): ("statefulsets.apps", True),
    ("apps", "DaemonSet"): ("daemonsets.apps", False),
    ("batch", "Job"): ("jobs.batch", False),
    ("", "Node"): ("nodes", False),
    ("postgresql.cnpg.io", "Cluster"): ("clusters.postgresql.cnpg.io", True),
}


def kind_resource(group: str, kind: str) -> str | None:
    """The resource (as the lab's store names it) of a workload kind the finders read."""
    known = _KINDS.get((group, kind))
    return None if known is None else known[0]


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def _replicas(obj: Mapping[str, Any]) -> int:
    spec = obj.get("spec") or {}
    if "instances" in spec and obj.get("kind") == "Cluster":
        return int(spec["instances"])  # CNPG's /scale maps to spec.instances
    value = spec.get("replicas")
    return 1 if value is None else int(value)  # API defaulting: replicas 1


# (group, kind, namespace, name) -> the stored object, or None.
ObjectLookup = Callable[[str, str, str, str], "Mapping[str, Any] | None"]


def scale_resolver(objects: Iterable[Mapping[str, Any]]) -> ScaleResolver:
    """A resolver over these workload objects (see `lookup_resolver`)."""
    index: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        key = (_group(obj.get("apiVersion", "")), obj.get("kind", ""), meta.get("namespace", ""))
        index[(*key, meta.get("name", ""))] = obj
    return lookup_resolver(lambda group, kind, ns, name: index.get((group, kind, ns, name)))


def lookup_resolver(lookup: ObjectLookup) -> ScaleResolver:
    """A resolver reading workload objects through `lookup`, trying upstream's finders in order.

    `finders()`: ReplicationController, Deployment (through its ReplicaSet), ReplicaSet not
    owned by a Deployment, StatefulSet, then the generic /scale subresource (here: CNPG Cluster
    `spec.instances`). A kind without /scale raises ScaleError as upstream reports it.
    """

    def get(group: str, kind: str, ns: str, ref: Mapping[str, Any]) -> Mapping[str, Any] | None:
        obj = lookup(group, kind, ns, ref.get("name", ""))
        uid = (obj or {}).get("metadata", {}).get("uid")
        # A same-named object with another UID is not this pod's controller.
        return obj if obj is not None and uid == ref.get("uid") else None

    def resolve(ref: Mapping[str, Any], namespace: str) -> tuple[str, int] | None:
        group, kind = _group(ref.get("apiVersion", "")), ref.get("kind", "")
        if kind == "ReplicaSet" and group in ("apps", "extensions"):
            rs = get("apps", "ReplicaSet", namespace, ref)
            if rs is None:
                return None
            owner = controller_of(rs)
            if owner and owner.get("kind") == "Deployment":
                dep = get("apps", "Deployment", namespace, owner)
                if dep is not None and _group(owner.get("apiVersion", "")) in (
                    "apps",
                    "extensions",
                ):
                    return dep["metadata"]["uid"], _replicas(dep)
            # Not Deployment-owned, or its Deployment is gone: the ReplicaSet's own /scale.
            return rs["metadata"]["uid"], _replicas(rs)
        known = _KINDS.get((group, kind))
        if known is None:
            version = ref.get("apiVersion", "")
            raise ScaleError(f'no matches for kind "{kind}" in version "{version}"')
        resource, has_scale = known
        obj = get(group, kind, namespace, ref)
        if not has_scale:
            raise ScaleError(f"{resource} does not implement the scale subresource")
        return None if obj is None else (obj["metadata"]["uid"], _replicas(obj))

    return resolve


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent; raises ValueError with upstream's wording."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("invalid value for IntOrString: invalid type: neither int nor percentage")
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")
    digits = value[:-1]
    if not re.fullmatch(r"[+-]?\d+", digits):
        raise ValueError(
            f'invalid value for IntOrString: invalid value "{value}": '
            f'strconv.Atoi: parsing "{digits}": invalid syntax'
        )
    scaled = float(int(digits)) * float(total) / 100
    return int(math.ceil(scaled) if round_up else math.floor(scaled))


def expected_pod_count(
    pdb: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], resolve: ScaleResolver
) -> tuple[int, int, list[str]]:
    """getExpectedPodCount: (expectedCount, desiredHealthy, unmanaged pod names).

    maxUnavailable (int or %) and minAvailable as a percentage count the scale of the pods'
    controllers; minAvailable as an integer counts the matching pods themselves. Percentages
    round up. Raises ScaleError/ValueError when the count cannot be made.
    """
    return _expected_count(pdb, len(pods), lambda: _expected_scale(pods, resolve))


def _expected_count(
    pdb: Mapping[str, Any], n_pods: int, scale: Callable[[], tuple[int, list[str]]]
) -> tuple[int, int, list[str]]:
    """`expected_pod_count` given the number of matching pods and getExpectedScale."""
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        expected, unmanaged = scale()
        desired = max(0, expected - scaled_value(spec["maxUnavailable"], expected, True))
        return expected, desired, unmanaged
    min_available = spec.get("minAvailable")
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return n_pods, min_available, []
    if isinstance(min_available, str):
        expected, unmanaged = scale()
        return expected, scaled_value(min_available, expected, True), unmanaged
    return 0, 0, []


def _controller_ref(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """metav1.GetControllerOf without the copy."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


# A controller reference as far as a ScaleResolver reads it, with the namespace it is read in.
RefKey = tuple[str, Any, Any, Any, Any]  # namespace, apiVersion, kind, name, uid


def _ref_key(ref: Mapping[str, Any], namespace: str) -> RefKey:
    return namespace, ref.get("apiVersion"), ref.get("kind"), ref.get("name"), ref.get("uid")


def _expected_scale(
    pods: Sequence[Mapping[str, Any]], resolve: ScaleResolver
) -> tuple[int, list[str]]:
    """getExpectedScale: sum the scale of the distinct controllers of the pods."""
    unmanaged: list[str] = []

    def refs() -> Iterator[tuple[Mapping[str, Any], str, str]]:
        for pod in pods:
            meta = pod.get("metadata") or {}
            ref = _controller_ref(pod)
            if ref is None:
                # Unmanaged pods are skipped (an UnmanagedPods warning event upstream).
                unmanaged.append(meta.get("name", ""))
                continue
            yield ref, meta.get("namespace", ""), meta.get("name", "")

    return _sum_scales(refs(), resolve), unmanaged


def _sum_scales(
    refs: Iterable[tuple[Mapping[str, Any], str, str]], resolve: ScaleResolver
) -> int:
    """The scale sum of getExpectedScale over (controllerRef, namespace, pod name), in order.

    Upstream resolves each pod whose controller's UID is not yet a key of its scale map, and
    that map is keyed by the *resolved* controller (a Deployment for pods of its ReplicaSets),
    so it calls the finders again for every such pod. A resolver is a pure function of the
    reference, so one call per distinct reference gives the same sums and the same errors.
    """
    scales: dict[str, int] = {}
    seen: set[RefKey] = set()
    for ref, namespace, pod_name in refs:
        if ref.get("uid") in scales:
            continue
        key = _ref_key(ref, namespace)
        if key in seen:
            continue
        found = resolve(ref, namespace)
        if found is None:
            raise ScaleError(f'found no controllers for pod "{pod_name}"')
        scales[found[0]] = found[1]
        seen.add(key)
    return sum(scales.values())


class PodTally:
    """What a PDB sync reads of the PDB's matching pods, kept pod by pod.

    The disruption controller adds and discards pods as they change instead of re-reading all
    of them on every sync (`sync_pdb_tally`). Pods are named within one namespace.
    """

    __slots__ = ("namespace", "pods", "ready", "refs", "unmanaged")

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        # name → (being deleted, Ready, controller reference key or None)
        self.pods: dict[str, tuple[bool, bool, RefKey | None]] = {}
        self.ready = 0  # pods Ready and not being deleted
        self.refs: dict[RefKey, dict[str, None]] = {}  # controller → names of its pods
        self.unmanaged: dict[str, None] = {}

    @classmethod
    def of(cls, namespace: str, pods: Iterable[Mapping[str, Any]]) -> PodTally:
        tally = cls(namespace)
        for pod in pods:
            tally.add(pod)
        return tally

    def add(self, pod: Mapping[str, Any]) -> None:
        """Count `pod` (replacing the pod of that name, if counted)."""
        meta = pod.get("metadata") or {}
        name = meta.get("name", "")
        if name in self.pods:
            self.discard(name)
        deleting, ready = bool(meta.get("deletionTimestamp")), is_pod_ready(pod)
        ref = _controller_ref(pod)
        key = None if ref is None else _ref_key(ref, self.namespace)
        self.pods[name] = (deleting, ready, key)
        if ready and not deleting:
            self.ready += 1
        if key is None:
            self.unmanaged[name] = None
        else:
            self.refs.setdefault(key, {})[name] = None

    def discard(self, name: str) -> None:
        facts = self.pods.pop(name, None)
        if facts is None:
            return
        deleting, ready, key = facts
        if ready and not deleting:
            self.ready -= 1
        if key is None:
            self.unmanaged.pop(name, None)
        elif (names := self.refs.get(key)) is not None:
            names.pop(name, None)
            if not names:
                del self.refs[key]

    def controllers(self) -> Iterator[tuple[Mapping[str, Any], str, str]]:
        """(controllerRef, namespace, the first of its pods' names) per distinct controller."""
        for (ns, api_version, kind, name, uid), pods in self.refs.items():
            ref = {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid}
            yield {k: v for k, v in ref.items() if v is not None}, ns, next(iter(pods))


# --- status ----------------------------------------------------------------------------------


def set_condition(
    conditions: list[dict[str, Any]], new: Mapping[str, Any], now: float
) -> tuple[list[dict[str, Any]], bool]:
    """apimeta.SetStatusCondition on a copy; lastTransitionTime moves only when status changes."""
    result = [dict(c) for c in conditions]
    for cond in result:
        if cond.get("type") == new["type"]:
            changed = False
            if cond.get("status") != new["status"]:
                cond["status"] = new["status"]
                cond["lastTransitionTime"] = rfc3339(now)
                changed = True
            for key, default in (("reason", ""), ("message", ""), ("observedGeneration", 0)):
                if cond.get(key, default) != new.get(key, default):
                    cond[key] = new.get(key, default)
                    changed = True
            if not cond.get("observedGeneration"):
                cond.pop("observedGeneration", None)  # omitempty
            return result, changed
    entry = {"type": new["type"], "status": new["status"]}
    if new.get("observedGeneration"):
        entry["observedGeneration"] = new["observedGeneration"]
    entry.update(lastTransitionTime=rfc3339(now), reason=new["reason"], message=new["message"])
    result.append(entry)
    return result, True


def update_disruption_allowed_condition(status: dict[str, Any], now: float) -> dict[str, Any]:
    """pdbhelper.UpdateDisruptionAllowedCondition, returning a new status dict."""
    allowed = status.get("disruptionsAllowed", 0) > 0
    conditions, _ = set_condition(
        status.get("conditions") or [],
        {
            "type": DISRUPTION_ALLOWED,
            "status": "True" if allowed else "False",
            "reason": SUFFICIENT_PODS if allowed else INSUFFICIENT_PODS,
            "message": "",
            "observedGeneration": status.get("observedGeneration", 0),
        },
        now,
    )
    return {**status, "conditions": conditions}


def _conditions_up_to_date(status: Mapping[str, Any], generation: int) -> bool:
    """pdbhelper.ConditionsAreUpToDate."""
    conditions = status.get("conditions") or []
    cond = next((c for c in conditions if c.get("type") == DISRUPTION_ALLOWED), None)
    if cond is None or status.get("observedGeneration", 0) != generation:
        return False
    if status.get("disruptionsAllowed", 0) > 0:
        return cond.get("status") == "True" and cond.get("reason") == SUFFICIENT_PODS
    return cond.get("status") == "False" and cond.get("reason") == INSUFFICIENT_PODS


def _time(text: str) -> float | None:
    try:
        return parse_rfc3339(text)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class PdbSync:
    """The outcome of one disruption-controller sync of one PDB.

    `status` is the status the controller would leave (the old one when `changed` is False, as
    upstream then skips the write); `recheck_at` is when the earliest disruptedPods entry
    expires (upstream re-queues the PDB then); `error` is set when the sync failed and the
    fail-safe status (disruptionsAllowed 0, condition SyncFailed) was produced instead.
    """

    status: dict[str, Any]
    changed: bool
    recheck_at: float | None = None
    unmanaged_pods: tuple[str, ...] = ()
    error: str | None = None


def sync_pdb(
    pdb: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], resolve: ScaleResolver, now: float
) -> PdbSync:
    """One `trySync` of `pdb` given every pod of its namespace; `now` in Unix seconds."""
    old = copy.deepcopy(pdb.get("status") or {})
    try:
        matched = pods_for_pdb(pdb, pods)
        expected, desired, unmanaged = expected_pod_count(pdb, matched, resolve)
    except (InvalidSelectorError, ScaleError, ValueError) as err:
        return _fail_safe(old, str(err), now)

    # buildDisruptedPodMap (keep entries of matching, not-deleting pods that have not expired)
    # and countHealthyPods (Ready, not deleting, not in an unexpired disruptedPods entry), in
    # one pass: both skip deleting pods, and an entry kept by the first is exactly one the
    # second consults.
    recorded = old.get("disruptedPods") or {}
    disrupted: dict[str, str] = {}
    recheck_at: float | None = None
    healthy = 0
    for pod in matched:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        if recorded:
            name = meta.get("name", "")
            if name in recorded:
                at = _time(recorded[name])
                # An expired entry is dropped (upstream: event NotDeleted, "Pod was expected by
                # PDB ... to be deleted") and the pod counts as any other.
                if at is not None and at + DELETION_TIMEOUT >= now:
                    disrupted[name] = recorded[name]
                    expires = at + DELETION_TIMEOUT
                    recheck_at = expires if recheck_at is None else min(recheck_at, expires)
                    if expires > now:
                        continue
        healthy += is_pod_ready(pod)
    return _update_status(pdb, old, expected, desired, healthy, disrupted, recheck_at,
                          unmanaged, now)


def sync_pdb_tally(
    pdb: Mapping[str, Any], tally: PodTally, resolve: ScaleResolver, now: float
) -> PdbSync:
    """`sync_pdb` from a tally of the PDB's matching pods (the same arithmetic, in
    O(controllers + disruptedPods) instead of O(pods))."""
    old = copy.deepcopy(pdb.get("status") or {})
    try:
        compile_selector((pdb.get("spec") or {}).get("selector"))  # upstream fails on a bad one
        expected, desired, unmanaged = _expected_count(
            pdb, len(tally.pods),
            lambda: (_sum_scales(tally.controllers(), resolve), list(tally.unmanaged)))
    except (InvalidSelectorError, ScaleError, ValueError) as err:
        return _fail_safe(old, str(err), now)

    # As sync_pdb's pass, visiting only the pods disruptedPods names: the other pods count as
    # healthy exactly when Ready and not being deleted, which the tally counts.
    recorded = old.get("disruptedPods") or {}
    disrupted: dict[str, str] = {}
    recheck_at: float | None = None
    healthy = tally.ready
    for name, when in recorded.items():
        facts = tally.pods.get(name)
        if facts is None or facts[0]:
            continue
        at = _time(when)
        if at is not None and at + DELETION_TIMEOUT >= now:
            disrupted[name] = when
            expires = at + DELETION_TIMEOUT
            recheck_at = expires if recheck_at is None else min(recheck_at, expires)
            if expires > now and facts[1]:
                healthy -= 1
    return _update_status(pdb, old, expected, desired, healthy, disrupted, recheck_at,
                          unmanaged, now)


def _update_status(
    pdb: Mapping[str, Any],
    old: dict[str, Any],
    expected: int,
    desired: int,
    healthy: int,
    disrupted: dict[str, str],
    recheck_at: float | None,
    unmanaged: list[str],
    now: float,
) -> PdbSync:
    """updatePdbStatus: a PDB matching no expected pods allows nothing; unchanged → no write."""
    generation = (pdb.get("metadata") or {}).get("generation", 0)
    allowed = healthy - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    if (
        old.get("currentHealthy", 0) == healthy
        and old.get("desiredHealthy", 0) == desired
        and old.get("expectedPods", 0) == expected
        and old.get("disruptionsAllowed", 0) == allowed
        and (old.get("disruptedPods") or {}) == disrupted
        and old.get("observedGeneration", 0) == generation
        and _conditions_up_to_date(old, generation)
    ):
        return PdbSync(old, False, recheck_at, tuple(unmanaged))

    status: dict[str, Any] = {}
    if generation:
        status["observedGeneration"] = generation
    if disrupted:
        status["disruptedPods"] = disrupted
    status.update(
        disruptionsAllowed=allowed,
        currentHealthy=healthy,
        desiredHealthy=desired,
        expectedPods=expected,
        conditions=old.get("conditions") or [],
    )
    status = update_disruption_allowed_condition(status, now)
    return PdbSync(status, True, recheck_at, tuple(unmanaged))


def _fail_safe(old: dict[str, Any], message: str, now: float) -> PdbSync:
    """failSafe: keep the old status but allow no disruption, condition SyncFailed."""
    conditions, _ = set_condition(
        old.get("conditions") or [],
        {
            "type": DISRUPTION_ALLOWED,
            "status": "False",
            "reason": SYNC_FAILED,
            "message": message,
            "observedGeneration": old.get("observedGeneration", 0),
        },
        now,
    )
    status = {**old, "disruptionsAllowed": 0, "conditions": conditions}
    return PdbSync(status, True, None, (), message)


def compute_pdb_status(
    pdb: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], resolve: ScaleResolver, now: float
) -> dict[str, Any]:
    """The PDB status the disruption controller computes (see `sync_pdb`)."""
    return sync_pdb(pdb, pods, resolve, now).status
