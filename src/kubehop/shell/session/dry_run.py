"""`apply --dry-run`: what a run would do next, checked against the cluster; nothing changes.

The steps whose dependencies are done are checked now (their `expect` already holds: skipped;
else they would run and why); the rest are counted per wave. No lock, no journal record, no
command that changes a node (only the read-only package facts command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubehop.model.journal import RunState
from kubehop.model.plan import Plan, StepKind
from kubehop.shell.session.reports import DryRun, NextStep

if TYPE_CHECKING:
    from kubehop.shell.session.base import BaseSession


async def dry_run(session: BaseSession, plan: Plan, state: RunState | None) -> DryRun:
    """Check the ready steps of `plan` against the cluster (read only)."""
    from kubehop.shell.executor.cluster import KubeCluster
    from kubehop.shell.executor.expect import ExpectChecker
    from kubehop.shell.steps.base import describe
    from kubehop.shell.steps.facts import NodeFacts

    done = state.done if state else set()
    remaining = [s for s in plan.steps if s.id not in done]
    ready = [s for s in remaining if all(a in done for a in s.after)]
    kube = KubeCluster(await session.client())
    steps: list[NextStep] = []
    try:
        await kube.start()
        checker = ExpectChecker(kube, NodeFacts(session.transport()))
        for step in ready:
            if step.kind is StepKind.GATE:
                steps.append(NextStep(step.id, "pass"))
                continue
            missing = await checker.mismatches(step) if step.expect else None
            if missing == []:
                steps.append(NextStep(step.id, "skip"))
            else:
                steps.append(NextStep(step.id, "run", describe(missing) if missing else None,
                                      step.node, tuple(c.line for c in step.commands)))
    finally:
        await kube.close()
    later: dict[int, int] = {}
    for s in remaining:
        if s not in ready and s.wave is not None:
            later[s.wave] = later.get(s.wave, 0) + 1
    return DryRun(len(remaining), len(plan.steps), tuple(steps), dict(sorted(later.items())))
