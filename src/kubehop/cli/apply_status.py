"""`kubehop status`: a run's progress for people and machines, from the journal alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from kubehop.core.progress import summarize
from kubehop.model.journal import RunState, RunStatus
from kubehop.model.plan import Plan


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def status_document(plan: Plan, state: RunState) -> dict[str, Any]:
    """The machine-readable status: the run, its summary, and every step's latest record."""
    return {"run": state.run.to_dict(), "status": str(state.status), "message": state.message,
            "updated": state.updated, **summarize(plan, state).to_dict(),
            "steps": [{"id": s.id, "node": s.node, "wave": s.wave,
                       **({"status": str(r.status), "at": r.at, "attempt": r.attempt,
                           "message": r.message} if (r := state.steps.get(s.id)) else
                          {"status": "not-started"})} for s in plan.steps]}


def format_status(plan: Plan, state: RunState, now: float | None = None) -> str:
    """The status for people: one fact per line."""
    s = summarize(plan, state)
    age = (now or time.time()) - state.updated
    lines = [f"Run {state.run.id}: {state.run.from_version} → {state.run.to_version}, "
             f"{state.status} (last record {_when(state.updated)}, {age:.0f} s ago)",
             f"  {s.done} of {s.total} steps done: " + ", ".join(
                 f"{n} {k}" for k, n in s.counts.items() if n)]
    if s.current is not None:
        nodes = ", ".join(s.current.nodes[:6]) + (" …" if len(s.current.nodes) > 6 else "")
        lines.append(f"  current wave {s.current.index} [{s.current.hop}] {s.current.kind}: "
                     f"{s.current.done}/{s.current.total} steps ({nodes})")
    lines += [f"  failed: {step}" + (f" on node {node}" if node else "") + f": {message}"
              for step, node, message in s.failed]
    if s.in_flight:
        lines.append(f"  started, outcome not recorded: {', '.join(s.in_flight)}")
    lines += [f"  cordoned by this run: node {n} ({why})" for n, why in s.cordoned]
    if state.status is RunStatus.RUNNING and age > 60:
        lines.append("  (no record for a while: the run may have been killed; `kubehop apply` "
                     "resumes it)")
    if not state.status.finished:
        lines.append("  resume: kubehop apply")
    return "\n".join(lines) + "\n"
