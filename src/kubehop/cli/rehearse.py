"""`kubehop rehearse`: the exact upgrade, run first on a twin of the live cluster.

    kubehop rehearse --to 1.30 [plan options] [--snapshot FILE] [--timing FILE]
                     [--time-scale F] [-o text|json|yaml] [--out PLAN]

Snapshots the live cluster (`kubehop lab snapshot`; or reads `--snapshot FILE`), starts a lab
from it in this process (API on loopback, node commands straight to the lab's node agents),
and runs `check`, `plan` and the executor against the lab with the options given. Reports
whether it finished, its duration in lab seconds (and, with `--timing`, from a second run at
the user's timing), PDB waits with their causes, refused evictions, switchovers, the halt,
a per-wave timeline and the safety verdict judged from the lab's own history. Exit 0
rehearsed clean, 1 blocking findings, a halt or a broken invariant, 2 usage.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kubehop.cli.context import host_key_option, run
from kubehop.cli.output import MACHINE_FORMATS, emit
from kubehop.cli.plan import options_from, plan_options
from kubehop.model.errors import UsageError
from kubehop.shell.transports import Command, CommandResult, Transport, render_command

if TYPE_CHECKING:
    from kubehop.lab.lab import Lab
    from kubehop.lab.scenarios import Scenario
    from kubehop.model.plan import PlanOptions
    from kubehop.model.releases import ReleaseData
    from kubehop.shell.rehearse import RehearsalRun

DEFAULT_SCALE = 0.01


class LabNodeTransport(Transport):
    """Node commands straight to the lab's node agents (as root with `sudo`): no SSH, so a
    twin of a 1,000-node cluster needs no 1,000 SSH servers."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    async def run(self, node: str, command: Command, *, sudo: bool = False,
                  timeout: float = 300.0, stdin: str | None = None) -> CommandResult:
        line = render_command(command)
        started = time.monotonic()
        if self.lab.agents is None:
            raise UsageError("the lab's node agents are not running")
        result = await self.lab.agents.run(node, line, stdin=stdin or "", root=sudo)
        return CommandResult(node, line, result.exit_code, result.stdout, result.stderr,
                             time.monotonic() - started)

    async def close(self) -> None:
        return None


@dataclass
class Rehearsal:
    """One run on one twin (`kubehop.shell.rehearse.RehearsalRun`) and the twin's history,
    judged by the lab's own checker."""

    run: RehearsalRun
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    violations: list[str] = dataclasses.field(default_factory=list)


async def rehearse_on(scenario: Scenario, to: str, options: PlanOptions, data: ReleaseData,
                      day: date, time_scale: float, *, node_facts: bool = True) -> Rehearsal:
    """Start a lab from `scenario`; check, plan and execute against it; judge its history.

    `node_facts`: read the twin's nodes' packages as kubehop reads them over SSH — only when
    the live cluster's were read (an SSH inventory), so that both states, and so both
    fingerprints, hold the same facts."""
    from kubehop.cli.ui import ClickUi
    from kubehop.lab.history import check_history
    from kubehop.lab.lab import Lab
    from kubehop.shell.rehearse import rehearse
    from kubehop.shell.session import Session, SessionOptions

    async with Lab(scenario, time_scale=time_scale, ssh=False, tls=False) as lab:
        session = Session(SessionOptions(kubeconfig=str(lab.kubeconfig_path), today=day),
                          ClickUi(), transport=LabNodeTransport(lab), node_facts=node_facts,
                          data=data)
        async with session:
            with tempfile.TemporaryDirectory(prefix="kubehop-rehearse-") as tmp:
                outcome = await rehearse(session, to, options, lab.clock.now, Path(tmp))
        if outcome.plan is None:
            return Rehearsal(outcome)
        events = lab.history.since(0)
    violations = [str(v) for v in check_history(events,
                                                max_unavailable=outcome.plan.max_unavailable_nodes)]
    return Rehearsal(outcome, events, violations)


def with_timing(scenario: Scenario, timing: dict[str, float]) -> Scenario:
    """`scenario` with the user's durations (`--timing`)."""
    from kubehop.lab.scenarios import schema

    values = {schema.TIMING_KEYS[k]: v for k, v in timing.items()}
    return dataclasses.replace(scenario, timing=schema.ScenarioTiming(**values))


def twin_scenario(snapshot_file: str | None
                  ) -> tuple[Scenario, str | None, list[str], bool]:
    """The scenario to rehearse on, the live cluster's fingerprint (None from a file), what
    the snapshot could not reproduce, and whether node facts were read (see `rehearse_on`)."""
    from kubehop.lab.scenarios import load_scenario
    from kubehop.lab.scenarios.validate import parse_scenario

    if snapshot_file is not None:
        return load_scenario(snapshot_file), None, [], True
    from kubehop.cli.lab import read_live_cluster
    from kubehop.model.cluster_codec import state_fingerprint
    from kubehop.shell.observe.snapshot import build_snapshot

    facts = read_live_cluster()
    snap = build_snapshot(facts, name="live")
    return (parse_scenario(snap.document, "snapshot of the live cluster"),
            state_fingerprint(facts.state), snap.notes, facts.state.nodes_observed)


@click.command("rehearse")
@plan_options
@click.option("--snapshot", "snapshot_file", metavar="FILE",
              help="Rehearse on this scenario (`kubehop lab snapshot -o FILE`) instead of a "
                   "fresh snapshot of the cluster.")
@click.option("--timing", "timing_file", metavar="FILE",
              help="Your cluster's durations in seconds (YAML: podStart, podStop, "
                   "kubeletRestart, staticPodRestart, packageInstall, switchover; defaults 5, "
                   "2, 10, 20, 8, 3): reported from a second run at them.")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_SCALE, show_default=True, metavar="F",
              help="Real seconds per lab second.")
@click.option("-o", "--output", type=click.Choice(["text", *MACHINE_FORMATS]), default="text",
              show_default=True, help="text for people; json/yaml the report.")
@click.option("--out", metavar="FILE",
              help="Write the rehearsed plan (JSON) to FILE: `kubehop apply FILE` runs it on "
                   "the live cluster while its fingerprint still matches.")
@host_key_option
@click.pass_context
def rehearse(ctx: click.Context, to: str, max_unavailable: str, worker_strategy: str,
             drain_policy: str, strict_kubeadm_skew: bool, allow_unknown_version: bool,
             ignore_findings: tuple[str, ...], from_state: str | None, today: str | None,
             release_data: str | None, snapshot_file: str | None, timing_file: str | None,
             time_scale: float, output: str, out: str | None) -> None:
    """Rehearse an upgrade on a twin of the cluster (a lab in this process) before running it.

    \b
    Runs check, plan and kubehop's executor with exactly these options against a lab
    started from a snapshot of the cluster, then reports: finished or where it would
    halt, duration (lab seconds; with --timing also at yours), every wait on a
    PodDisruptionBudget and why, refused evictions, database switchovers, a per-wave
    timeline, and the safety verdict from the lab's own history. Exit 0 clean; 1
    blocking findings, a halt or a broken invariant; 2 usage error.
    """
    from kubehop.cli.check import print_findings
    from kubehop.cli.releases import load_release_data_checked, resolve_today
    from kubehop.core.planner.target import check_target_text
    from kubehop.model.findings import Severity
    from kubehop.shell.rehearse import DEFAULT_TIMING, build_report, exit_status, load_timing
    from kubehop.shell.rehearse import report_lines as lines_of

    if from_state:
        raise UsageError("--from-state: rehearse runs on a twin of the cluster; give "
                         "--snapshot FILE to rehearse on a saved snapshot")
    options = options_from(max_unavailable, worker_strategy, drain_policy,
                           allow_unknown_version, ignore_findings, strict_kubeadm_skew)
    check_target_text(to)
    timing = None
    if timing_file is not None:
        try:
            text = Path(timing_file).read_text(encoding="utf-8")
        except OSError as e:
            raise UsageError(f"timing {timing_file}: cannot read: {e.strerror or e}") from None
        timing = load_timing(text, timing_file)
    day = resolve_today(today)
    data = load_release_data_checked(release_data, day)
    scenario, live_fingerprint, notes, node_facts = twin_scenario(snapshot_file)
    for note in notes:
        click.echo(f"kubehop rehearse: snapshot: {note}", err=True)
    rehearsal = run(rehearse_on(scenario, to, options, data, day, time_scale,
                                node_facts=node_facts))
    first = rehearsal.run
    if first.plan is None or first.recorder is None:
        blocking = [f for f in first.findings if f.severity is Severity.BLOCKING]
        if output in MACHINE_FORMATS:
            emit({"finished": False, "findings": [f.to_dict() for f in first.findings]}, output)
        else:
            print_findings(first.findings)
            click.echo("Rehearsal not run: blocking findings on the twin: "
                       + ", ".join(f"{f.id} {f.subject}" for f in blocking))
        ctx.exit(1)
    user_seconds = None
    if timing is not None:
        again = run(rehearse_on(with_timing(scenario, timing), to, options, data, day,
                                time_scale, node_facts=node_facts))
        user_seconds = again.run.t1 - again.run.t0 if again.run.plan is not None else None
    report = build_report(first.plan, first.recorder, first.halted, first.t0, first.t1,
                          rehearsal.events, rehearsal.violations,
                          timing=scenario.timing.to_dict() if timing is None else timing,
                          user_seconds=user_seconds, live_fingerprint=live_fingerprint)
    report["labTiming"] = dict(DEFAULT_TIMING) | scenario.timing.to_dict()
    if out is not None:
        from kubehop.cli.output import format_machine
        from kubehop.cli.plan import write_output

        write_output(format_machine(first.plan.to_dict(), "json"), out)
    if output in MACHINE_FORMATS:
        emit(report, output)
    else:
        click.echo("\n".join(lines_of(report)))
    ctx.exit(exit_status(report))
