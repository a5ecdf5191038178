"""cordon: mark the node unschedulable (`spec.unschedulable`), so no new pods land on it.

Its `expect`: `schedulable` false, read from the Node here for `drain` and `uncordon` too.
"""

from __future__ import annotations

from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.shell.steps.base import ExpectReader, Live, StepContext, node_of

KIND = StepKind.CORDON


async def execute(run: StepContext, step: Step) -> str:
    await run.cluster.set_schedulable(node_of(step), False)
    return ""


async def _schedulable(live: Live, want: ExpectValue) -> object:
    return live.view.schedulable if live.view is not None else None


READS = (ExpectReader(ExpectKey.SCHEDULABLE, "node", _schedulable),)
