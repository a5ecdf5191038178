"""The session's front end on a terminal: lines through click, the plan and reports rendered
for people, progress as bars, lines or JSON events (`--log-format`)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from kubehop.cli.output import warn
from kubehop.model.errors import OperationError, UsageError

if TYPE_CHECKING:
    from kubehop.core.hooks import Hook
    from kubehop.core.windows import Window
    from kubehop.model.plan import Plan
    from kubehop.shell.executor.events import HaltReport
    from kubehop.shell.session import DryRun


class ClickUi:
    """`kubehop.shell.session.Ui` for the command line."""

    def __init__(self, log_format: str = "text", *, yes: bool = False) -> None:
        self.log_format = log_format
        self.yes = yes

    def echo(self, text: str, *, err: bool = False) -> None:
        click.echo(text, err=err)

    def people(self, text: str) -> None:
        click.echo(text, err=self.log_format == "json")

    def warn(self, message: str) -> None:
        warn(message)

    def confirm(self, question: str) -> None:
        if self.yes:
            return
        if not sys.stdin.isatty():
            raise UsageError("refusing to change the cluster without confirmation: pass --yes "
                             "(standard input is not a terminal)")
        if not click.confirm(question, default=False, err=True):
            raise OperationError("not confirmed: nothing changed")

    def plan_ready(self, plan: Plan, hooks: tuple[Hook, ...], windows: tuple[Window, ...],
                   now: datetime | None) -> None:
        from kubehop.cli.plan_render import format_hooks, format_text, format_windows

        err = self.log_format == "json"
        click.echo(format_text(plan), nl=False, err=err)
        if hooks:
            click.echo(format_hooks(plan, hooks), nl=False, err=err)
        if windows and now is not None:
            click.echo(format_windows(plan, windows, now), nl=False, err=err)

    def dry_run(self, report: DryRun) -> None:
        click.echo(f"Dry run: {report.remaining} of {report.total} steps to go; next:")
        for step in report.next:
            if step.verdict == "pass":
                click.echo(f"  would pass   {step.step}")
            elif step.verdict == "skip":
                click.echo(f"  would skip   {step.step} (already done)")
            else:
                click.echo(f"  would run    {step.step}" + (f" ({step.why})" if step.why else ""))
                for line in step.commands:
                    click.echo(f"                 {step.node}$ {line}")
        for wave, count in report.later.items():
            click.echo(f"  then wave {wave}: {count} steps")

    def reporter(self) -> Any:
        from kubehop.cli.apply_progress import make_reporter

        return make_reporter(self.log_format)

    def halted(self, report: HaltReport) -> None:
        import json

        from kubehop.cli.output import machine_stdout

        if self.log_format == "json":
            click.echo(json.dumps({"event": "halt-report", **report.to_dict()},
                                  ensure_ascii=False), file=machine_stdout())
        else:
            for line in report.lines():
                click.echo(line, err=True)
