"""The flows behind `apply`, `upgrade` and `status`: find the run, check the plan still fits,
take the lock, run the executor, report.

Which plans may run (the fingerprint rule):
- a plan with a run in the journal (same cluster, same plan) resumes it: the cluster has moved
  on through the plan's own steps, so its fingerprint is not compared again; every step's
  `expect` is checked against the live cluster before it runs, which is what makes a resume
  safe;
- a plan without a run must match the cluster: observed again, same fingerprint, else refused
  with the differences (from planning again, with every option the user gave, and comparing
  the steps);
- while another run of the cluster is unfinished, a new plan is refused: that run's nodes may be
  cordoned, and a new plan would take them for cordoned by hand. Resume it, or abandon it
  (`kubehop apply --abandon`).

A plan file is not a root shell: before anything is recorded or run, and on every resume, the
plan is checked against what the planner gives this cluster (`core.plan_verify`: each step's
kind, commands, expect and dependencies, then a re-simulation on the observed state); any
difference is refused with exit 2 naming the first differing step and field. A new run records
the state it was checked against, so a resume checks the plan against the planner again.

A cluster with an unfinished run (killed, halted, interrupted) that `upgrade` is asked to take
to the same target resumes that run with its recorded plan: planning again from a half-upgraded
cluster would take the nodes the run cordoned for cordoned by hand, and leave them so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubehop.model.errors import OperationError, UsageError
from kubehop.model.journal import RunState, RunStatus
from kubehop.model.plan import Plan
from kubehop.shell.session import fingerprint
from kubehop.shell.session.execute import execute
from kubehop.shell.session.runs import (
    ApplySettings,
    plan_run_id,
    refuse_other_run,
    same_target,
    save_plan,
    saved_plan_path,
)

if TYPE_CHECKING:
    from kubehop.model.cluster import ClusterState
    from kubehop.model.plan import PlanOptions
    from kubehop.shell.session.base import BaseSession


def _summary_line(plan: Plan, state: RunState | None) -> str:
    done = len(state.done & {s.id for s in plan.steps}) if state else 0
    how = f"resuming run {state.run.id} ({state.status})" if state else "new run"
    return (f"Applying {plan.from_version} → {plan.to_version}: {len(plan.steps)} steps, "
            f"{done} done earlier ({how})")


async def _release_stale_lock(session: BaseSession, rid: str) -> None:
    """A run killed after its last step but before it released the lock leaves its Lease
    behind until it expires: take it over (its holder is gone) and release it. A live run's
    lock is not ours to touch."""
    from kubehop.shell.executor.lock import LeaseLock, LockHeld

    try:
        async with LeaseLock(await session.client(), rid):
            pass
    except LockHeld:
        pass


async def apply_plan(session: BaseSession, plan: Plan, settings: ApplySettings, *,
                     plan_path: str | None, observed: ClusterState | None = None) -> None:
    """Apply `plan` to the session's cluster (see the module docstring)."""
    from kubehop.shell.executor.journal import Journal

    ui = session.ui
    cluster = await session.identity()
    with Journal.open() as journal:
        rid = plan_run_id(cluster, plan)
        state = journal.find(rid)
        if state is not None and state.status is RunStatus.SUCCEEDED:
            await _release_stale_lock(session, rid)
            ui.echo(f"Plan already applied (run {rid}): nothing to do.")
            return
        if state is not None and state.status is RunStatus.ABANDONED:
            raise OperationError(f"run {rid} of this plan was abandoned; plan again")
        refuse_other_run(journal, cluster, rid)
        if observed is None or not observed.workloads_observed:
            observed = await session.observe(workloads=True, node_facts=True)
        if state is None:
            await fingerprint.check_fingerprint(session, plan, observed)
        baseline = fingerprint.verify_before_running(session, plan, observed, journal, state)
        ui.people(_summary_line(plan, state))
        if settings.dry_run:
            from kubehop.shell.session.dry_run import dry_run

            ui.people("Plan checked: its steps are the planner's for this cluster, and "
                      "replayed on the cluster as observed now they break no invariant.")
            ui.dry_run(await dry_run(session, plan, state))
            return
        ui.confirm(f"Apply {len(plan.steps)} steps to the cluster?")
        if plan_path is None:
            plan_path = str(save_plan(plan, rid))
        await execute(session, journal, cluster, plan, settings,
                      resume=f"kubehop apply {plan_path}", baseline=baseline)
    await warn_node_kubectl(session)


async def resume(session: BaseSession, settings: ApplySettings) -> None:
    """Resume the cluster's unfinished run with its recorded plan."""
    from kubehop.shell.executor.journal import Journal

    cluster = await session.identity()
    with Journal.open() as journal:
        state = journal.latest(cluster, unfinished=True)
        if state is None:
            last = journal.latest(cluster)
            if last is not None and last.status is RunStatus.SUCCEEDED:
                # e.g. the process was killed after the run's last record: nothing to resume
                session.ui.echo(
                    f"Nothing to resume: the last run on this cluster, {last.run.id} "
                    f"({last.run.from_version} → {last.run.to_version}), finished "
                    "successfully.")
                return
            why = (f"the last run, {last.run.id}, was {last.status}" if last is not None
                   else "none was recorded")
            raise UsageError(f"no unfinished run on this cluster ({why}): give a PLAN_FILE "
                             "(kubehop plan --to VERSION -o json --out FILE)")
        plan = journal.plan_of(state.run.id)
    path = saved_plan_path(state.run.id)
    await apply_plan(session, plan, settings, plan_path=str(path) if path.exists() else None)


async def upgrade(session: BaseSession, to: str, options: PlanOptions,
                  settings: ApplySettings) -> None:
    """Check, plan, show, confirm, apply — or resume the unfinished run towards `to`."""
    from kubehop.shell.executor.journal import Journal

    ui = session.ui
    cluster = await session.identity()
    with Journal.open() as journal:
        unfinished = journal.latest(cluster, unfinished=True)
        recorded = journal.plan_of(unfinished.run.id) if unfinished else None
    if unfinished is not None and recorded is not None:
        match = same_target(to, unfinished.run.to_version)
        if match is False:
            raise OperationError(
                f"run {unfinished.run.id} towards {unfinished.run.to_version} is unfinished on "
                f"this cluster: finish it first (`kubehop apply`), or give it up "
                f"(`kubehop apply --abandon`)")
        ui.echo(f"Resuming the unfinished run {unfinished.run.id} "
                f"({unfinished.run.from_version} → {unfinished.run.to_version}).", err=True)
        path = saved_plan_path(unfinished.run.id)
        await apply_plan(session, recorded, settings,
                         plan_path=str(path) if path.exists() else None)
        return
    state = await session.observe_for_plan(to)
    plan = session.plan(state, to, options)
    now = None
    if settings.windows:
        from kubehop.shell.executor.windows import cluster_clock

        now = (await cluster_clock(await session.client())).now()
    ui.plan_ready(plan, settings.hooks, settings.windows, now)
    path = save_plan(plan, plan_run_id(cluster, plan))
    ui.echo(f"Plan saved to {path}.", err=True)
    await apply_plan(session, plan, settings, plan_path=str(path), observed=state)


async def abandon(session: BaseSession) -> None:
    """Give up the cluster's unfinished run (it will not be resumed), saying what it left."""
    from kubehop.core.progress import summarize
    from kubehop.shell.executor.journal import Journal

    ui = session.ui
    cluster = await session.identity()
    with Journal.open() as journal:
        state = journal.latest(cluster, unfinished=True)
        if state is None:
            ui.echo("No unfinished run on this cluster: nothing to abandon.")
            return
        summary = summarize(journal.plan_of(state.run.id), state)
        journal.set_status(state, RunStatus.ABANDONED, "abandoned by the user")
        ui.echo(f"Run {state.run.id} abandoned after {summary.done} of {summary.total} steps.")
        for node, why in summary.cordoned:
            ui.echo(f"  node {node} may still be cordoned ({why}): `kubehop uncordon {node}`")


async def warn_node_kubectl(session: BaseSession) -> None:
    """After a run: nodes whose kubectl is now outside the skew window of the apiservers (a
    node's kubectl plays no part in the upgrade, but whoever uses it there gets errors)."""
    if not session.options.ssh_inventory:
        return
    from kubehop.core.checks.host import node_kubectl_findings

    for f in node_kubectl_findings(await session.observe(workloads=False, node_facts=True)):
        session.ui.warn(f"{f.message}; {f.fix}")
