"""Journal records: what happened to each step of an applied plan, append-only.

A run is one application of one plan to one cluster; its identity is derived from (cluster
identity, plan fingerprint, plan digest), so applying the same plan again finds its own run
(STYLE habit 6). Records are never changed: a step's state is its latest record, and every
transition returns a new `RunState` (STYLE habit 2).

Step transitions (anything else is a bug and raises ValueError):

    (none) ──▶ started ──▶ succeeded
      │           │ ╲──▶ failed ──▶ started | skipped-already-done
      │           ╰───▶ needs-verification ──▶ started | skipped-already-done
      ╰──▶ skipped-already-done | succeeded (gates, and steps found done before they ran)

`needs-verification` marks a step whose command was interrupted (Ctrl-C, SIGKILL, lost
connection): on resume its `expect` is checked against the cluster before anything is re-run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class StepStatus(StrEnum):
    """The state a journal record puts a step in."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped-already-done"
    FAILED = "failed"
    NEEDS_VERIFICATION = "needs-verification"

    @property
    def done(self) -> bool:
        """Whether the step needs nothing more (it ran, or was found already done)."""
        return self in (StepStatus.SUCCEEDED, StepStatus.SKIPPED)


class RunStatus(StrEnum):
    """The state of a whole run."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    HALTED = "halted"  # a step failed: `kubehop apply` resumes after the fix
    INTERRUPTED = "interrupted"  # Ctrl-C or a lost lock: `kubehop apply` resumes
    ABANDONED = "abandoned"  # given up by the user (`kubehop apply --abandon`)

    @property
    def finished(self) -> bool:
        """Whether nothing will resume this run (it succeeded or was abandoned)."""
        return self in (RunStatus.SUCCEEDED, RunStatus.ABANDONED)


_ALLOWED: dict[StepStatus | None, frozenset[StepStatus]] = {
    None: frozenset({StepStatus.STARTED, StepStatus.SKIPPED, StepStatus.SUCCEEDED}),
    StepStatus.STARTED: frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED,
                                   StepStatus.NEEDS_VERIFICATION}),
    StepStatus.FAILED: frozenset({StepStatus.STARTED, StepStatus.SKIPPED}),
    StepStatus.NEEDS_VERIFICATION: frozenset({StepStatus.STARTED, StepStatus.SKIPPED}),
    StepStatus.SUCCEEDED: frozenset(),
    StepStatus.SKIPPED: frozenset(),
}


def allowed(current: StepStatus | None, new: StepStatus) -> bool:
    """Whether a step in state `current` (None: no record yet) may move to `new`."""
    return new in _ALLOWED[current]


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One immutable journal record about one step."""

    seq: int
    step_id: str
    status: StepStatus
    at: float  # Unix seconds
    node: str | None = None
    attempt: int = 1  # how many times the step has been started, this one included
    message: str = ""  # one line: why it failed, what was verified, ...
    output: str = ""  # the tail of the command output (failures)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "step": self.step_id, "status": str(self.status),
                "at": self.at, "node": self.node, "attempt": self.attempt,
                "message": self.message, "output": self.output}


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The immutable facts of a run: which plan, on which cluster."""

    id: str
    cluster: str
    fingerprint: str
    digest: str
    from_version: str
    to_version: str
    steps: int
    created: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "cluster": self.cluster, "fingerprint": self.fingerprint,
                "digest": self.digest, "from": self.from_version, "to": self.to_version,
                "steps": self.steps, "created": self.created}


@dataclass(frozen=True, slots=True)
class RunState:
    """A run as its records so far describe it; `with_*` return new states."""

    run: RunInfo
    status: RunStatus = RunStatus.RUNNING
    steps: Mapping[str, StepRecord] = field(default_factory=dict)
    last_seq: int = 0
    updated: float = 0.0
    message: str = ""

    def status_of(self, step_id: str) -> StepStatus | None:
        record = self.steps.get(step_id)
        return record.status if record is not None else None

    def attempts(self, step_id: str) -> int:
        record = self.steps.get(step_id)
        return record.attempt if record is not None else 0

    def with_record(self, record: StepRecord) -> RunState:
        """This state after `record` (ValueError for a transition the journal forbids)."""
        current = self.status_of(record.step_id)
        if not allowed(current, record.status):
            raise ValueError(f"journal: step {record.step_id} cannot go from "
                             f"{current or 'nothing'} to {record.status}")
        steps = dict(self.steps)
        steps[record.step_id] = record
        return replace(self, steps=steps, last_seq=max(self.last_seq, record.seq),
                       updated=max(self.updated, record.at))

    def with_status(self, status: RunStatus, at: float, seq: int, message: str = "") -> RunState:
        return replace(self, status=status, updated=max(self.updated, at),
                       last_seq=max(self.last_seq, seq), message=message)

    def ids(self, *statuses: StepStatus) -> set[str]:
        """Ids of the steps whose latest record has one of `statuses`."""
        return {i for i, r in self.steps.items() if r.status in statuses}

    @property
    def done(self) -> set[str]:
        return self.ids(StepStatus.SUCCEEDED, StepStatus.SKIPPED)

    @property
    def interrupted(self) -> set[str]:
        """Steps that started and never finished (their outcome is unknown)."""
        return self.ids(StepStatus.STARTED, StepStatus.NEEDS_VERIFICATION)

    def counts(self) -> dict[str, int]:
        out = {str(s): 0 for s in StepStatus}
        for r in self.steps.values():
            out[str(r.status)] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run.to_dict(), "status": str(self.status), "updated": self.updated,
                "message": self.message, "counts": self.counts(),
                "steps": [r.to_dict() for r in sorted(self.steps.values(), key=lambda r: r.seq)]}


def replay(run: RunInfo, records: Iterable[StepRecord | tuple[int, float, RunStatus, str]]
           ) -> RunState:
    """The state a run's records (in seq order) describe; run-level records are tuples
    `(seq, at, status, message)`."""
    state = RunState(run, updated=run.created)
    for r in records:
        if isinstance(r, StepRecord):
            state = state.with_record(r)
        else:
            seq, at, status, message = r
            state = state.with_status(status, at, seq, message)
    return state


def plan_digest(plan: Mapping[str, Any]) -> str:
    """`sha256:<16 hex>` of a plan document (`Plan.to_dict()`), key order ignored."""
    text = json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def run_id(cluster: str, fingerprint: str, digest: str) -> str:
    """The deterministic id of the run of one plan on one cluster (`run-<12 hex>`)."""
    key = "\n".join((cluster, fingerprint, digest))
    return "run-" + hashlib.sha256(key.encode()).hexdigest()[:12]
