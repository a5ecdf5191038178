"""`kubehop upgrade`: check, plan, show, confirm, apply — or resume the unfinished run.

A cluster with an unfinished run (killed, halted, interrupted) towards the same target resumes
that run with its recorded plan: planning again from a half-upgraded cluster would take the
nodes the run cordoned for cordoned by hand, and leave them so.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from kubehop.cli.apply_run import (
    ApplySettings,
    apply_plan,
    cluster_identity,
    plan_run_id,
    save_plan,
    saved_plan_path,
)
from kubehop.cli.context import connect
from kubehop.model.errors import OperationError, VersionError
from kubehop.model.plan import PlanOptions
from kubehop.model.versions import parse_kube_version, parse_minor_version


def same_target(to: str, recorded: str) -> bool | None:
    """Whether `--to` names the recorded target (None: a keyword such as `latest`, which
    cannot be told apart without planning)."""
    try:
        return parse_kube_version(to.strip()) == parse_kube_version(recorded)
    except VersionError:
        pass
    try:
        return parse_minor_version(to.strip()) == parse_kube_version(recorded).minor_version
    except VersionError:
        return None


async def upgrade_flow(to: str, options: PlanOptions, settings: ApplySettings, *,
                       release_data: str | None, today: str | None,
                       confirm: Callable[[str], None]) -> None:
    from kubehop.cli.plan import make_plan, trial_for
    from kubehop.cli.plan_render import format_hooks, format_text, format_windows
    from kubehop.cli.versions import observe_cluster
    from kubehop.shell.executor.journal import Journal

    client = await connect()
    try:
        cluster = await cluster_identity(client)
    finally:
        await client.close()
    with Journal.open() as journal:
        unfinished = journal.latest(cluster, unfinished=True)
        plan = journal.plan_of(unfinished.run.id) if unfinished else None
    if unfinished is not None and plan is not None:
        match = same_target(to, unfinished.run.to_version)
        if match is False:
            raise OperationError(
                f"run {unfinished.run.id} towards {unfinished.run.to_version} is unfinished on "
                f"this cluster: finish it first (`kubehop apply`), or give it up "
                f"(`kubehop apply --abandon`)")
        click.echo(f"Resuming the unfinished run {unfinished.run.id} "
                   f"({unfinished.run.from_version} → {unfinished.run.to_version}).", err=True)
        path = saved_plan_path(unfinished.run.id)
        await apply_plan(plan, settings, plan_path=str(path) if path.exists() else None,
                         confirm=confirm)
        return
    state = await observe_cluster(workloads=True, node_facts=True,
                                  trial_for=trial_for(to, release_data, today))
    plan = make_plan(state, to, options, release_data, today)
    click.echo(format_text(plan), nl=False, err=settings.log_format == "json")
    if settings.hooks:
        click.echo(format_hooks(plan, settings.hooks), nl=False,
                   err=settings.log_format == "json")
    if settings.windows:
        from kubehop.shell.executor.windows import cluster_clock

        client = await connect()
        try:
            now = (await cluster_clock(client)).now()
        finally:
            await client.close()
        click.echo(format_windows(plan, settings.windows, now), nl=False,
                   err=settings.log_format == "json")
    path = save_plan(plan, plan_run_id(cluster, plan))
    click.echo(f"Plan saved to {path}.", err=True)
    await apply_plan(plan, settings, plan_path=str(path), observed=state, confirm=confirm)
