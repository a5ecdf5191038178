"""drain: evict the node's pods through the Eviction API, PodDisruptionBudgets honoured
(the drain library, `shell.drain`), with the plan's `ignoreDaemonsets`, `deleteEmptydirData`
and `force` params.

Its `expect`: `schedulable` false (read in `cordon`) and `evictablePods`, the number of pods
a drain would still remove (0 after it).
"""

from __future__ import annotations

from kubehop.core.drain.rules import DrainError, DrainOptions
from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.shell.steps.base import ExpectReader, Live, StepContext, StepFailed, node_of

KIND = StepKind.DRAIN


async def execute(run: StepContext, step: Step) -> str:
    node = node_of(step)
    p = step.params
    options = DrainOptions(ignore_daemonsets=bool(p.get("ignoreDaemonsets", True)),
                           delete_emptydir_data=bool(p.get("deleteEmptydirData", False)),
                           force=bool(p.get("force", False)),
                           timeout=run.options.drain_timeout,
                           switchover_timeout=run.options.switchover_timeout)
    try:
        await run.cluster.drain(node, options, run.forward(step))
    except DrainError as e:
        raise StepFailed(str(e)) from None
    return ""


async def _evictable(live: Live, want: ExpectValue) -> object:
    """The pods on the node a drain removes (a list: its length is judged)."""
    name = live.step.node
    return await live.cluster.evictable_pods(name) if name else None


def _count(want: ExpectValue, got: object) -> bool:
    return isinstance(got, list) and len(got) == want


READS = (ExpectReader(ExpectKey.EVICTABLE_PODS, "cluster", _evictable, _count),)
