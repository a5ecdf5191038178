"""Why a drain waits: PodDisruptionBudgets, stateful operators, and progress events.

Pure helpers for the drain loop (kubehop.shell.drain.node): which PDB covers a pod (label
selectors as the eviction subresource matches them, kubehop.core.selectors),
one line explaining a blocked
eviction from the PDB's status and the workload's pods, what a dry run predicts, CloudNativePG
primaries, and the structured progress events the CLI and the executor render.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kubehop.core.selectors import SelectorError, selects
from kubehop.model.cluster import PdbInfo, PodInfo

# CloudNativePG pod labels (cloudnative-pg pkg/utils/labels_annotations.go); `role` is legacy.
CNPG_CLUSTER_LABEL = "cnpg.io/cluster"
CNPG_ROLE_LABELS = ("cnpg.io/instanceRole", "role")


def pdb_from_dict(obj: Mapping[str, Any]) -> PdbInfo:
    """A PdbInfo (selector, status, generations) from a policy/v1 PodDisruptionBudget (JSON
    decoded)."""
    meta, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
    return PdbInfo(
        namespace=meta.get("namespace", ""), name=meta.get("name", ""),
        selector=spec.get("selector"), expected=int(status.get("expectedPods", 0)),
        desired_healthy=int(status.get("desiredHealthy", 0)),
        current_healthy=int(status.get("currentHealthy", 0)),
        disruptions_allowed=int(status.get("disruptionsAllowed", 0)),
        generation=int(meta.get("generation", 0)),
        observed_generation=int(status.get("observedGeneration", meta.get("generation", 0))),
    )


def pdbs_for(pod: PodInfo, pdbs: Iterable[PdbInfo]) -> list[PdbInfo]:
    """The PDBs of the pod's namespace that select it (eviction.go getPodDisruptionBudgets).

    A PDB whose selector the API would reject raises SelectorError naming it: the eviction API
    would ignore that PDB, which is rarely what its author meant.
    """
    out = []
    labels = dict(pod.labels)
    for p in pdbs:
        if p.namespace != pod.namespace:
            continue
        try:
            hit = selects(p.selector, labels)
        except SelectorError as err:
            raise SelectorError(f"PodDisruptionBudget {p.key}: {err}; fix its spec.selector") \
                from err
        if hit:
            out.append(p)
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def explain_blocked(pdb: PdbInfo, pods: Iterable[PodInfo]) -> str:
    """One line: why `pdb` refuses an eviction now, given the pods it selects.

    "pdb web/frontend: 2 of 3 replicas must stay Ready (1 Ready now); 1 replacement is Pending:
    0/3 nodes are available: 3 Insufficient cpu"
    """
    head = f"pdb {pdb.key}"
    if not pdb.processed:
        return f"{head}: its status is still being updated by the disruption controller"
    if pdb.disruptions_allowed > 0:
        return f"{head}: allows {_count(pdb.disruptions_allowed, 'disruption')} now"
    pods = list(pods)
    # The PDB's currentHealthy lags an eviction it just allowed; the pods say what is Ready now.
    ready = sum(p.ready and p.deletion_time is None for p in pods) if pods else \
        pdb.current_healthy
    ready = min(ready, pdb.current_healthy)
    # More Ready than needed, yet refused: the budget went to evictions not yet visible as
    # terminating pods (the PDB's disruptedPods).
    evicting = f", {ready - pdb.desired_healthy} of them already being evicted" \
        if ready > pdb.desired_healthy else ""
    line = (f"{head}: {pdb.desired_healthy} of {_count(pdb.expected, 'replica')} must stay "
            f"Ready ({ready} Ready now{evicting})")
    starting = [p for p in pods if p.deletion_time is None and not p.ready
                and p.phase not in ("Succeeded", "Failed")]
    pending = [p for p in starting if not p.scheduled]
    running = [p for p in starting if p.scheduled]
    if pending:
        verb = "is" if len(pending) == 1 else "are"
        line += f"; {_count(len(pending), 'replacement')} {verb} Pending"
        reason = next((p.unschedulable for p in pending if p.unschedulable), "")
        if reason:  # the scheduler's own verdict, without its preemption post-mortem
            line += ": " + reason.split(" preemption: ")[0].rstrip(". ")
    if running:
        verb = "is" if len(running) == 1 else "are"
        nodes = ", ".join(sorted({p.node for p in running if p.node}))
        line += f"; {_count(len(running), 'replacement')} {verb} starting" + \
            (f" on {nodes}" if nodes else "")
    if not starting and ready <= pdb.desired_healthy:
        line += "; no replacement pod is starting"
    return line


def multiple_pdbs(pod: PodInfo, pdbs: Sequence[PdbInfo]) -> str:
    """The eviction API refuses (500) a pod that several PDBs select."""
    names = ", ".join(p.key for p in pdbs)
    return (f"pod {pod.key} is selected by more than one PodDisruptionBudget ({names}); the "
            "eviction API refuses such pods: make the PDB selectors disjoint")


def predict_blocks(evict: Sequence[PodInfo], pdbs: Sequence[PdbInfo],
                   pods_of: Mapping[str, Sequence[PodInfo]]) -> dict[str, str]:
    """For a dry run: pod key → why its eviction would be refused or have to wait now.

    Only Ready pods use up a budget (an unready pod is evicted without one, eviction.go);
    the first `disruptionsAllowed` pods of each PDB go at once, the others wait for replacements.
    `pods_of` maps a PDB key to the pods it selects (for the explanation).
    """
    blocked: dict[str, str] = {}
    budget = {p.key: p.disruptions_allowed for p in pdbs}
    for pod in evict:
        covering = pdbs_for(pod, pdbs)
        if len(covering) > 1:
            blocked[pod.key] = multiple_pdbs(pod, covering)
            continue
        if not covering or not pod.ready or pod.deletion_time is not None:
            continue
        pdb = covering[0]
        if budget[pdb.key] > 0 and pdb.processed:
            budget[pdb.key] -= 1
        elif pdb.disruptions_allowed > 0:
            allows = _count(pdb.disruptions_allowed, "disruption")
            blocked[pod.key] = (f"pdb {pdb.key}: allows {allows} now; this pod waits until a "
                                "replacement is Ready")
        else:
            blocked[pod.key] = explain_blocked(pdb, pods_of.get(pdb.key, ()))
    return blocked


# --- CloudNativePG -----------------------------------------------------------------------------

def cnpg_primary_of(pod: PodInfo) -> str | None:
    """The CloudNativePG cluster whose primary `pod` is, else None."""
    cluster = pod.label(CNPG_CLUSTER_LABEL)
    if cluster and any(pod.label(k) == "primary" for k in CNPG_ROLE_LABELS):
        return cluster
    return None


def single_instance_refusal(namespace: str, cluster: str, pod: str, node: str) -> str:
    """Why a drain refuses a node that runs the only instance of a CloudNativePG cluster."""
    return (f"CloudNativePG cluster {namespace}/{cluster} has a single instance (primary {pod} "
            f"on node {node}): there is no replica to switch over to and its "
            f"PodDisruptionBudget {cluster}-primary blocks the eviction; scale it to 2 instances "
            f"for the drain (kubectl -n {namespace} patch clusters.postgresql.cnpg.io {cluster} "
            """--type merge -p '{"spec":{"instances":2}}') and back afterwards, """
            "or accept the downtime with --disable-eviction")


# --- progress ----------------------------------------------------------------------------------

EVENT_KINDS = frozenset({
    "cordoned", "already-cordoned", "uncordoned", "already-uncordoned", "warning",
    "evicting", "evicted", "deleting", "deleted", "blocked", "waiting", "switchover",
    "drained", "failed",
})


@dataclass(frozen=True)
class DrainEvent:
    """One step of a drain, for people (CLI lines) and machines (JSON lines, the executor).

    `pod` is `ns/name`; `pdb` names the PodDisruptionBudget involved; `pods` lists what a
    `waiting` event is waiting for; `elapsed` is seconds since the drain began.
    """

    kind: str
    node: str
    pod: str | None = None
    message: str = ""
    pdb: str | None = None
    pods: tuple[str, ...] = field(default_factory=tuple)
    dry_run: bool = False
    elapsed: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown drain event kind {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pods"] = list(self.pods)
        d["elapsed"] = round(self.elapsed, 3)
        d["dryRun"] = d.pop("dry_run")
        return {k: v for k, v in d.items() if v not in (None, "", [])}
