"""switchover: move CloudNativePG primaries off the (cordoned) node before its drain.

Its `expect`: `primaryNotOnNode`, every primary of `params["databases"]` on another node
(the list of those still here while not).
"""

from __future__ import annotations

from kubehop.core.drain.explain import CNPG_CLUSTER_LABEL
from kubehop.core.drain.rules import DrainError, DrainOptions
from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.shell.steps.base import (
    ExpectReader,
    Live,
    StepContext,
    StepFailed,
    describe,
    node_of,
)

KIND = StepKind.SWITCHOVER


async def execute(run: StepContext, step: Step) -> str:
    """Move the databases' instances off the node, primary last: CloudNativePG promotes a
    replica on another node when this one is cordoned, but when every replica shares the
    node (a previous drain pushed them here) there is none to promote until the replicas
    move. The drain library evicts the replicas (their PodDisruptionBudget permitting) and
    evicts the primary only once the operator has switched over."""
    node = node_of(step)
    timeout = run.options.switchover_timeout
    missing = await run.checker.mismatches(step)
    for db in _database_list(step):
        if not missing:
            break
        name = db.partition("/")[2]
        options = DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True,
                               pod_selector=f"{CNPG_CLUSTER_LABEL}={name}",
                               timeout=timeout, switchover_timeout=timeout)
        try:
            await run.cluster.drain(node, options, run.forward(step))
        except DrainError as e:
            raise StepFailed(f"switchover of {db}: {e}") from None
        missing = await run.checker.mismatches(step)
    missing = await run.wait(step, timeout)
    if missing:
        raise StepFailed(
            f"CloudNativePG did not move the primary of {', '.join(_database_list(step))} off "
            f"node {node} within {timeout:g} s ({describe(missing)}); check the operator "
            f"(kubectl get clusters.postgresql.cnpg.io -A)")
    return ""


def _database_list(step: Step) -> tuple[str, ...]:
    value = step.params.get("databases", ())
    return (value,) if isinstance(value, str) else tuple(map(str, value))  # type: ignore[arg-type]


async def _primary_not_on_node(live: Live, want: ExpectValue) -> object:
    """True, or the primaries of the step's databases still on the node."""
    name = live.step.node
    databases = live.step.params.get("databases", ())
    dbs = (databases,) if isinstance(databases, str) else tuple(
        databases) if isinstance(databases, tuple) else ()
    on = await live.cluster.primaries_on(name, dbs) if name else []
    return on if on else True


READS = (ExpectReader(ExpectKey.PRIMARY_NOT_ON_NODE, "cluster", _primary_not_on_node),)
