"""`apply --dry-run`: what a run would do next, checked against the cluster; nothing changes.

The steps whose dependencies are done are checked now (their `expect` already holds: skipped;
else they would run and why); the rest are counted per wave. No lock, no journal record, no
command that changes a node (only the read-only package facts command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kubehop.cli.context import global_options
from kubehop.model.journal import RunState
from kubehop.model.plan import Plan, StepKind

if TYPE_CHECKING:
    from kubehop.cli.apply_run import ApplySettings
    from kubehop.shell.kube.client import KubeClient


async def dry_run(client: KubeClient, plan: Plan, state: RunState | None,
                  settings: ApplySettings) -> None:
    from kubehop.shell.executor.cluster import KubeCluster
    from kubehop.shell.executor.expect import ExpectChecker, NodeFacts, describe
    from kubehop.shell.transports.ssh import SSHTransport

    done = state.done if state else set()
    remaining = [s for s in plan.steps if s.id not in done]
    ready = [s for s in remaining if all(a in done for a in s.after)]
    transport = SSHTransport.from_file(global_options().ssh_inventory,
                                       accept_new_host_keys=settings.accept_new_host_keys)
    kube = KubeCluster(client)
    try:
        await kube.start()
        checker = ExpectChecker(kube, NodeFacts(transport))
        click.echo(f"Dry run: {len(remaining)} of {len(plan.steps)} steps to go; next:")
        for step in ready:
            if step.kind is StepKind.GATE:
                click.echo(f"  would pass   {step.id}")
                continue
            missing = await checker.mismatches(step) if step.expect else None
            if missing == []:
                click.echo(f"  would skip   {step.id} (already done)")
            else:
                why = f" ({describe(missing)})" if missing else ""
                click.echo(f"  would run    {step.id}{why}")
                for command in step.commands:
                    click.echo(f"                 {step.node}$ {command.line}")
        later: dict[int, int] = {}
        for s in remaining:
            if s not in ready and s.wave is not None:
                later[s.wave] = later.get(s.wave, 0) + 1
        for wave, count in sorted(later.items()):
            click.echo(f"  then wave {wave}: {count} steps")
    finally:
        await kube.close()
        await transport.close()
