"""`kubehop check`: what is wrong with the cluster, and what stands in the way of an upgrade.

Findings grouped by severity, blocking first; exit 1 when any is blocking, 0 otherwise.
"""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from kubehop.cli.context import host_key_option, make_session, run_session
from kubehop.cli.output import MACHINE_FORMATS, emit, make_console, styled
from kubehop.cli.releases import release_data_option, resolve_today, today_option
from kubehop.core.planner.target import check_target_text
from kubehop.model.findings import Finding, Severity

SEVERITY_STYLES = {"blocking": "bold red", "warning": "yellow", "info": "cyan"}


def check_document(findings: list[Finding]) -> dict[str, Any]:
    """The machine-readable shape of `check -o json|yaml`."""
    return {"findings": [f.to_dict() for f in findings]}


def print_findings(findings: list[Finding]) -> None:
    """Findings for people, grouped by severity (blocking first), each with its fix, then a
    summary line."""
    console = make_console()
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    for severity in Severity:
        group = [f for f in findings if f.severity is severity]
        if not group:
            continue
        title = f"{severity.upper()} ({len(group)})"
        console.print(styled(title, {title: SEVERITY_STYLES[str(severity)]}))
        for f in group:
            # soft_wrap: long lines are the terminal's to wrap (and stay whole in a pipe)
            console.print(Text.assemble("  ", (f.id, "bold"), "  ", f.subject), soft_wrap=True)
            console.print(Text(f"    {f.message}"), soft_wrap=True)
            console.print(Text(f"    fix: {f.fix}", style="dim"), soft_wrap=True)
        console.print()
    console.print(f"{counts[Severity.BLOCKING]} blocking, {counts[Severity.WARNING]} warnings, "
                  f"{counts[Severity.INFO]} info"
                  + ("" if counts[Severity.BLOCKING] else ": nothing blocks an upgrade"))


@click.command("check")
@click.option("--to", "to", metavar="VERSION",
              help="Also judge an upgrade to VERSION (1.29: its newest patch, or v1.29.15).")
@click.option("-o", "--output", type=click.Choice(["table", *MACHINE_FORMATS]), default="table",
              show_default=True, help="Output format.")
@today_option
@release_data_option
@host_key_option
@click.pass_context
def check(ctx: click.Context, to: str | None, output: str, today: str | None,
          release_data: str | None) -> None:
    """Check the cluster before an upgrade; exit 1 when anything blocks it.

    \b
    Areas: version skew, support status, drift from kubeadm's knowledge (hand-
    edited static pods), packages and repositories (with --ssh-inventory), how
    the cluster was installed, drains (PDBs, bare pods, single-instance databases),
    capacity, and with --to: removed APIs still in use and CNI support.
    """
    if to is not None:
        check_target_text(to)  # a bad --to is refused before the cluster is touched
    session = make_session(release_data=release_data, today=resolve_today(today))
    session.release_data(warn_stale=False)  # a bad --release-data before the cluster is touched
    findings = run_session(session, lambda s: s.check(to))
    if output in MACHINE_FORMATS:
        emit(check_document(findings), output)
    else:
        print_findings(findings)
    ctx.exit(1 if any(f.severity is Severity.BLOCKING for f in findings) else 0)
