"""The fingerprint rule and the plan check (see `kubehop.shell.session.apply`): a new plan must
still match the cluster, and every plan must be what the planner gives it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from kubehop.model.errors import OperationError, UsageError
from kubehop.model.journal import RunState, StepStatus
from kubehop.model.plan import Plan

if TYPE_CHECKING:
    from kubehop.model.cluster import ClusterState
    from kubehop.shell.executor.journal import Journal
    from kubehop.shell.session.base import BaseSession


async def plan_differences(session: BaseSession, plan: Plan) -> list[str]:
    """How the plan the cluster calls for now differs from `plan` (plans again, with the
    session's release data and day and the plan's own options)."""
    from kubehop.core.plan_diff import diff_plans

    state = await session.observe(workloads=True, node_facts=True)
    try:
        current = session.plan(state, plan.to_version, plan.strategy)
    except UsageError as e:
        return [f"planning again says: {e}"]
    return diff_plans(plan, current) or [
        "the steps are the same; the fingerprint also covers apiserver versions, "
        "schedulable nodes and (with --ssh-inventory) package facts: plan and apply with the "
        "same --ssh-inventory"]


async def check_fingerprint(session: BaseSession, plan: Plan,
                            observed: ClusterState | None) -> None:
    """Refuse a new plan that no longer matches the cluster, listing the differences."""
    from kubehop.model.cluster_codec import state_fingerprint

    state = observed or await session.observe(workloads=False, node_facts=True)
    now = state_fingerprint(state)
    if now == plan.fingerprint:
        return
    differences = await plan_differences(session, plan)
    for line in differences:
        session.ui.echo(f"  - {line}", err=True)
    raise OperationError(
        f"the cluster changed since this plan was made (fingerprint {plan.fingerprint}, now "
        f"{now}; {len(differences)} difference(s) above): plan again with `kubehop plan --to "
        f"{plan.to_version} -o json --out FILE`")


def verify_before_running(session: BaseSession, plan: Plan, observed: ClusterState,
                          journal: Journal, state: RunState | None) -> ClusterState | None:
    """Refuse (exit 2) a plan that is not what kubehop plans for this cluster; the state to
    record with a new run (None on a resume)."""
    from kubehop.core.plan_verify import verify_plan

    data = session.release_data(warn_stale=False)
    if state is None:
        baseline: ClusterState | None = observed
    else:
        baseline = journal.baseline_of(state.run.id)
        if baseline is None:
            session.ui.warn(
                f"run {state.run.id} was recorded without the state its plan was made from "
                f"(an older kubehop): its steps are checked against the cluster only, not "
                f"against the planner")
    begun = state.ids(*StepStatus) if state else set()
    mismatch = verify_plan(plan, observed, data, baseline=baseline,
                           done=state.done if state else (), started=begun)
    if mismatch is None:
        if state is not None:
            return None
        # Pods churn and the planner's steps do not depend on them (see `plan_verify`).
        return replace(observed, pods=(), pdbs=(), databases=(), manifests=(),
                       deprecated_api_uses=(), workloads_observed=False)
    if state is None:
        raise UsageError(f"refusing the plan: {mismatch}; it is not what kubehop plans for "
                         f"this cluster: plan again with `kubehop plan --to "
                         f"{plan.to_version} -o json --out FILE`")
    raise UsageError(f"refusing to resume run {state.run.id}: {mismatch}; give it up with "
                     f"`kubehop apply --abandon`, then plan again")
