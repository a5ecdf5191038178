"""Which pods a drain removes: kubectl's filter chain, with kubectl's flags and messages.

Follows kubectl `pkg/drain/filters.go`: filters run in order (skip-deleted, DaemonSet, mirror,
local storage, unreplicated) and the first that says "don't delete" wins; a pod's status is the
last filter's. Errors and warnings are grouped by message as kubectl prints them
("cannot delete Pods with local storage (use --delete-emptydir-data to override): ns/a, ns/b").
One deliberate difference: kubectl keeps only the last filter's warning (its TODO says so), so
"deleting Pods with local storage" never shows; here every filter's warning is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from kubehop.model.cluster import PodInfo
from kubehop.model.errors import OperationError

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# filters.go (1.30+ wording); errors print as "cannot delete <fatal>: pods".
DAEMONSET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"
FINISHED = ("Succeeded", "Failed")


def parse_time(text: str | None) -> float | None:
    """Unix seconds of an RFC 3339 timestamp (`2024-05-01T10:00:00Z`), None if absent."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pod_from_dict(obj: Mapping[str, Any]) -> PodInfo:
    """A PodInfo from a Pod as the API returns it (JSON decoded)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    owner = next((r for r in meta.get("ownerReferences") or () if r.get("controller")), None)
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    scheduled = conditions.get("PodScheduled") or {}
    return PodInfo(
        namespace=meta.get("namespace", ""), name=meta.get("name", ""), uid=meta.get("uid", ""),
        node=spec.get("nodeName") or None, phase=status.get("phase") or "Pending",
        labels=tuple(sorted((meta.get("labels") or {}).items())),
        owner_kind=owner.get("kind", "") if owner else None,
        owner_name=owner.get("name", "") if owner else None,
        mirror=MIRROR_ANNOTATION in (meta.get("annotations") or {}),
        empty_dir=any("emptyDir" in v for v in spec.get("volumes") or ()),
        deletion_time=parse_time(meta.get("deletionTimestamp")),
        ready=(conditions.get("Ready") or {}).get("status") == "True",
        scheduled=bool(spec.get("nodeName")) or scheduled.get("status") == "True",
        unschedulable=scheduled.get("message", "") if scheduled.get("status") == "False" else "",
    )


@dataclass(frozen=True)
class DrainOptions:
    """kubectl drain's flags (same defaults), plus kubehop's stateful-workload settings."""

    force: bool = False
    """Delete pods that declare no controller (and pods of a DaemonSet that is gone)."""
    ignore_daemonsets: bool = False
    """Leave DaemonSet-managed pods in place instead of refusing the drain."""
    delete_emptydir_data: bool = False
    """Delete pods with emptyDir volumes (their data is lost)."""
    grace_period: int = -1
    """Seconds each pod gets to terminate; negative: the pod's own terminationGracePeriodSeconds."""
    timeout: float = 0.0
    """Seconds before giving up (the node stays cordoned); 0: wait forever."""
    pod_selector: str = ""
    """Only pods matching this label selector are removed."""
    skip_wait_for_delete_timeout: int = 0
    """Skip pods whose deletionTimestamp is older than this many seconds (0: never skip)."""
    disable_eviction: bool = False
    """Plain DELETE instead of the Eviction API: PodDisruptionBudgets are bypassed."""
    dry_run: bool = False
    """Report what would be cordoned, evicted and blocked; change nothing."""
    switchover_timeout: float = 300.0
    """Seconds to wait for a database operator (CloudNativePG) to move a primary off the node."""
    progress_interval: float = 5.0
    """Seconds between "waiting" progress events while pods are still on the node."""


Reason = Literal["okay", "skip", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A filter's answer (kubectl's PodDeleteStatus)."""

    delete: bool
    reason: Reason
    message: str = ""


OKAY = Verdict(True, "okay")
SKIP = Verdict(False, "skip")


@dataclass(frozen=True)
class DrainDecision:
    """The outcome of the filter chain for one node's pods.

    `evict`: pods to remove; `skipped`: pods left in place on purpose (DaemonSet pods with
    --ignore-daemonsets, mirror pods, pods deleting for longer than --skip-wait-for-delete-timeout);
    `errors`/`warnings`: kubectl's grouped lines. The drain may go ahead only without errors.
    """

    evict: list[PodInfo]
    skipped: list[PodInfo]
    errors: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def should_skip_deleted(pod: PodInfo, skip_after: int, now: float) -> bool:
    """kubectl shouldSkipPod: deleting for more than `skip_after` (> 0) seconds."""
    return _skipped(pod.deletion_time, skip_after, now)


def _skipped(deletion_time: float | None, skip_after: int, now: float) -> bool:
    return skip_after > 0 and deletion_time is not None and int(now - deletion_time) > skip_after


def drain_evicts(*, daemonset: bool, mirror: bool, phase: str,
                 deletion_time: float | None = None, skip_after: int = 0,
                 now: float = 0.0) -> bool:
    """kubehop's one evictability rule: whether draining the node evicts this pod, so that it
    must be gone (and have room elsewhere, and fit its PDB's budget) before the node's kubelet
    changes.

    As kubectl `pkg/drain/filters.go`: DaemonSet pods (daemonSetFilter) and mirror pods
    (mirrorPodFilter) are left in place; a pod already being deleted still counts (the drain
    waits for it) unless it has been deleting for more than --skip-wait-for-delete-timeout
    (skipDeletedFilter). Finished pods (Succeeded, Failed) are not evicted: the eviction
    subresource deletes them without consulting a PDB (kubernetes/kubernetes
    pkg/registry/core/pod/storage/eviction.go `canIgnorePDB`), and they hold no capacity.
    """
    if phase in FINISHED or daemonset or mirror:
        return False
    return not _skipped(deletion_time, skip_after, now)


def daemonset_missing(name: str) -> str:
    """The API's NotFound message for a DaemonSet (kubectl prints err.Error())."""
    return f'daemonsets.apps "{name}" not found'


def _daemonset_filter(pod: PodInfo, options: DrainOptions,
                      exists: Mapping[tuple[str, str], bool]) -> Verdict:
    if pod.owner_kind != "DaemonSet" or pod.phase in FINISHED:
        return OKAY
    if not exists.get((pod.namespace, pod.owner_name or ""), True):
        missing = daemonset_missing(pod.owner_name or "")
        return Verdict(True, "warning", missing) if options.force else \
            Verdict(False, "error", missing)
    if not options.ignore_daemonsets:
        return Verdict(False, "error", DAEMONSET_FATAL)
    return Verdict(False, "warning", DAEMONSET_WARNING)


def _local_storage_filter(pod: PodInfo, options: DrainOptions) -> Verdict:
    if not pod.empty_dir or pod.phase in FINISHED:
        return OKAY
    if not options.delete_emptydir_data:
        return Verdict(False, "error", LOCAL_STORAGE_FATAL)
    return Verdict(True, "warning", LOCAL_STORAGE_WARNING)


def _unreplicated_filter(pod: PodInfo, options: DrainOptions) -> Verdict:
    if pod.phase in FINISHED or pod.owner_kind is not None:
        return OKAY
    if options.force:
        return Verdict(True, "warning", UNMANAGED_WARNING)
    return Verdict(False, "error", UNMANAGED_FATAL)


def filter_pod(pod: PodInfo, options: DrainOptions, daemonset_exists: Mapping[tuple[str, str],
               bool], now: float) -> list[Verdict]:
    """Run kubectl's filters in order, stopping at the first "don't delete"; every verdict."""
    chain = (
        lambda: SKIP if should_skip_deleted(pod, options.skip_wait_for_delete_timeout, now)
        else OKAY,
        lambda: _daemonset_filter(pod, options, daemonset_exists),
        lambda: SKIP if pod.mirror else OKAY,
        lambda: _local_storage_filter(pod, options),
        lambda: _unreplicated_filter(pod, options),
    )
    verdicts = []
    for step in chain:
        verdicts.append(step())
        if not verdicts[-1].delete:
            break
    return verdicts


def _group(items: Iterable[tuple[str, str]], prefix: str = "") -> list[str]:
    by_message: dict[str, list[str]] = {}
    for message, pod in items:
        by_message.setdefault(message, []).append(pod)
    return [f"{prefix}{message}: {', '.join(pods)}" for message, pods in by_message.items()]


def plan_drain(pods: Iterable[PodInfo], options: DrainOptions,
               daemonset_exists: Mapping[tuple[str, str], bool] | None = None,
               now: float = 0.0) -> DrainDecision:
    """Apply the filter chain to a node's pods.

    `daemonset_exists` maps (namespace, name) of owning DaemonSets to whether the API still has
    them (absent: assumed to exist); `now` is Unix seconds, for --skip-wait-for-delete-timeout.
    """
    exists = daemonset_exists or {}
    evict, skipped, errors, warnings = [], [], [], []
    for pod in pods:
        verdicts = filter_pod(pod, options, exists, now)
        final = verdicts[-1]
        warnings += [(v.message, pod.key) for v in verdicts if v.reason == "warning"]
        if final.delete:
            evict.append(pod)
        elif final.reason == "error":
            errors.append((final.message or "unexpected error", pod.key))
        else:
            skipped.append(pod)
    return DrainDecision(evict, skipped, _group(errors, "cannot delete "), _group(warnings))


@dataclass
class DrainResult:
    """What a drain did (or, with dry_run, would do)."""

    node: str
    evicted: list[str] = field(default_factory=list)  # ns/name removed (evicted or deleted)
    skipped: list[str] = field(default_factory=list)  # left in place on purpose
    warnings: list[str] = field(default_factory=list)
    cordoned: bool = False  # this drain cordoned the node (False: it already was, or dry run)
    dry_run: bool = False
    blocked: dict[str, str] = field(default_factory=dict)  # dry run: pod → why it would wait
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "evicted": self.evicted, "skipped": self.skipped,
                "warnings": self.warnings, "cordoned": self.cordoned, "dryRun": self.dry_run,
                "blocked": self.blocked, "seconds": round(self.seconds, 3)}


class DrainError(OperationError):
    """A drain refused or failed; `left_cordoned` says whether the node is cordoned now."""

    def __init__(self, message: str, *, node: str, left_cordoned: bool,
                 pending: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.node = node
        self.left_cordoned = left_cordoned
        self.pending = list(pending)
