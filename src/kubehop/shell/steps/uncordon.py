"""uncordon: mark the node schedulable again.

Its `expect`: `schedulable` (read in `cordon`) and the node's `kubelet` version (read in
`kubelet_restart`), so a resumed run does not uncordon a node whose kubelet is not done.
"""

from __future__ import annotations

from kubehop.model.plan import Step, StepKind
from kubehop.shell.steps.base import ExpectReader, StepContext, node_of

KIND = StepKind.UNCORDON
READS: tuple[ExpectReader, ...] = ()


async def execute(run: StepContext, step: Step) -> str:
    await run.cluster.set_schedulable(node_of(step), True)
    return ""
