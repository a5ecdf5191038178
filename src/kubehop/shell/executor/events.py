"""What the executor tells its caller: progress events and, when it halts, a report.

Events go to one callback (rich progress for people, JSON lines for machines). Kinds:
`run-started`, `wave-started`, `step-started`, `step-succeeded`, `step-skipped`,
`step-failed`, `step-verifying` (an interrupted step's expect is checked), `step-waiting`
(a gate or expectation not met yet; `message` says what), `drain` (a drain event: evicted,
blocked by a PDB, ...), `wave-finished`, `run-finished`, `run-halted`, `hook` (an operator's
hook started, succeeded or failed: `message` says which and how).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EVENT_KINDS = frozenset({
    "run-started", "wave-started", "step-started", "step-succeeded", "step-skipped",
    "step-failed", "step-verifying", "step-waiting", "drain", "wave-finished", "run-finished",
    "run-halted", "hook",
})


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One thing that happened while applying a plan."""

    kind: str
    run: str
    step: str | None = None
    step_kind: str | None = None
    node: str | None = None
    wave: int | None = None
    hop: str | None = None
    message: str = ""
    done: int = 0  # steps done so far (succeeded or skipped), this run and earlier ones
    total: int = 0
    elapsed: float = 0.0  # seconds since this apply started
    seconds: float | None = None  # how long the step took (finished steps)

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown progress event kind {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        d = {"event": self.kind, "run": self.run, "step": self.step, "kind": self.step_kind,
             "node": self.node, "wave": self.wave, "hop": self.hop, "message": self.message,
             "done": self.done, "total": self.total, "elapsed": round(self.elapsed, 3)}
        if self.seconds is not None:
            d["seconds"] = round(self.seconds, 3)
        return {k: v for k, v in d.items() if v is not None and v != ""}


OnEvent = Callable[[ProgressEvent], None]


@dataclass(frozen=True, slots=True)
class FailedStep:
    """A step that failed: what, where, why, and the tail of its output."""

    step: str
    node: str | None
    message: str
    output: str = ""


@dataclass(frozen=True, slots=True)
class HaltReport:
    """Why a run stopped before its end, and what it left behind."""

    run: str
    reason: str  # failed | interrupted | lock-lost | window-closed
    failed: tuple[FailedStep, ...] = ()
    cordoned: tuple[tuple[str, str], ...] = ()  # (node, why it is cordoned)
    unverified: tuple[str, ...] = ()  # steps interrupted mid-way: checked again on resume
    done: int = 0
    total: int = 0
    resume: str = "kubehop apply PLAN"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """The one line a HaltedError carries."""
        if self.failed:
            first = self.failed[0]
            where = f" on node {first.node}" if first.node else ""
            head = f"halted: step {first.step}{where} failed: {first.message}"
        elif self.reason == "lock-lost":  # the note says how it was lost
            head = f"halted: {self.notes[0] if self.notes else 'the upgrade lock was lost'}"
        elif self.reason == "window-closed" and self.notes:  # it names the next opening
            return f"halted: {self.notes[0]}"
        else:
            head = "halted: interrupted"
        cordoned = (f"; left cordoned: {', '.join(n for n, _ in self.cordoned)}"
                    if self.cordoned else "")
        return f"{head}{cordoned}; fix the cause, then `{self.resume}` resumes"

    def lines(self) -> list[str]:
        """The report for people, one fact per line."""
        out = [f"Run {self.run} halted ({self.reason}) after {self.done} of {self.total} steps."]
        for f in self.failed:
            out.append(f"  failed: {f.step}" + (f" on node {f.node}" if f.node else "")
                       + f": {f.message}")
            if f.output:
                out += [f"    | {line}" for line in f.output.splitlines()[-15:]]
        for node, why in self.cordoned:
            out.append(f"  cordoned by kubehop: node {node} ({why}); `kubehop uncordon {node}` "
                       "makes it schedulable again")
        if self.unverified:
            out.append(f"  interrupted mid-way (checked again on resume): "
                       f"{', '.join(self.unverified)}")
        out += [f"  note: {n}" for n in self.notes]
        out.append(f"  resume: {self.resume}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "reason": self.reason,
                "failed": [{"step": f.step, "node": f.node, "message": f.message,
                            "output": f.output} for f in self.failed],
                "cordoned": [{"node": n, "why": w} for n, w in self.cordoned],
                "unverified": list(self.unverified), "done": self.done, "total": self.total,
                "resume": self.resume, "notes": list(self.notes)}
