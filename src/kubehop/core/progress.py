"""Where a run stands, from its plan and its journal records (what `kubehop status` shows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubehop.model.journal import RunState, StepStatus
from kubehop.model.plan import Plan, Step, StepKind


@dataclass(frozen=True, slots=True)
class WaveProgress:
    index: int
    hop: str
    kind: str
    nodes: tuple[str, ...]
    done: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "hop": self.hop, "kind": self.kind,
                "nodes": list(self.nodes), "done": self.done, "total": self.total}


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run at a glance: counts, the current wave, what failed, what is left cordoned."""

    done: int
    total: int
    counts: dict[str, int]
    current: WaveProgress | None
    failed: tuple[tuple[str, str | None, str], ...]  # (step, node, message)
    in_flight: tuple[str, ...]  # started or needs-verification
    cordoned: tuple[tuple[str, str], ...]  # (node, why) by the journal's account
    waves: tuple[WaveProgress, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "counts": self.counts,
                "currentWave": self.current.to_dict() if self.current else None,
                "failed": [{"step": s, "node": n, "message": m} for s, n, m in self.failed],
                "inFlight": list(self.in_flight),
                "cordoned": [{"node": n, "why": w} for n, w in self.cordoned],
                "waves": [w.to_dict() for w in self.waves]}


def _left_cordoned(plan: Plan, state: RunState) -> list[tuple[str, str]]:
    """Nodes a cordon or drain of this run touched whose uncordon has not happened."""
    uncordon: dict[str, Step] = {s.node: s for s in plan.steps
                                 if s.kind is StepKind.UNCORDON and s.node}
    out: dict[str, str] = {}
    for s in plan.steps:
        if s.kind not in (StepKind.CORDON, StepKind.DRAIN) or s.node not in uncordon:
            continue
        if state.status_of(s.id) is None:
            continue
        last = state.status_of(uncordon[s.node].id)
        if last is not None and last.done:
            continue
        out[s.node] = f"cordoned for its upgrade to {s.hop}"
    return sorted(out.items())


def summarize(plan: Plan, state: RunState) -> RunSummary:
    """The summary of `state`, a run of `plan`."""
    ids = {s.id for s in plan.steps}
    done = len(state.done & ids)
    counts = {str(s): 0 for s in StepStatus}
    counts["not-started"] = 0
    per_wave: dict[int, list[int]] = {}
    for s in plan.steps:
        status = state.status_of(s.id)
        counts[str(status) if status else "not-started"] += 1
        if s.wave is not None:
            tally = per_wave.setdefault(s.wave, [0, 0])
            tally[1] += 1
            tally[0] += bool(status and status.done)
    waves = tuple(WaveProgress(w.index, w.hop, w.kind, w.nodes, *per_wave.get(w.index, [0, 0]))
                  for w in plan.waves)
    current = next((w for w in waves if w.done < w.total), None)
    failed = tuple((s.id, s.node, state.steps[s.id].message) for s in plan.steps
                   if state.status_of(s.id) is StepStatus.FAILED)
    in_flight = tuple(s.id for s in plan.steps if s.id in state.interrupted)
    return RunSummary(done, len(plan.steps), counts, current, failed, in_flight,
                      tuple(_left_cordoned(plan, state)), waves)
