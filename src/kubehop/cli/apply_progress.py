"""Showing an apply's progress: rich bars for people at a terminal, lines in a pipe, JSON lines
with `--log-format json`.

At a terminal: one bar for the whole run, one for the current wave, and a line per node with a
step running (at most `NODE_LINES`; the rest are counted). In a pipe (or with NO_COLOR and no
terminal): one line per finished, skipped or failed step and per wave, nothing that redraws.
"""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from kubehop.shell.executor.events import ProgressEvent

NODE_LINES = 8
WAITING_EVERY = 30.0  # seconds between the plain lines of a step still waiting
_MARKS = {"step-succeeded": "✓", "step-skipped": "=", "step-failed": "✗"}


def format_line(event: ProgressEvent) -> str | None:
    """The plain line for an event (None: not shown in plain output)."""
    counter = f"[{event.done}/{event.total}]"
    if event.kind in _MARKS:
        took = f" ({event.seconds:.1f} s)" if event.seconds is not None else ""
        why = f": {event.message}" if event.kind != "step-succeeded" and event.message else ""
        return f"{counter} {_MARKS[event.kind]} {event.step}{took}{why}"
    if event.kind == "step-verifying":
        return f"{counter} ? {event.step}: {event.message}"
    if event.kind == "wave-started":
        return f"{counter} wave {event.wave} [{event.hop}] started"
    if event.kind == "drain" and event.message.startswith(("blocked", "waiting", "warning")):
        return f"{counter}   {event.node}: {event.message}"
    if event.kind in ("run-started", "run-finished"):
        return f"{counter} {event.kind.removeprefix('run-')}: {event.message}"
    if event.kind == "run-halted":
        return f"{counter} {event.message}"
    if event.kind == "hook" and not event.message.endswith(": started"):
        return f"{counter} hook {event.message}"
    return None


class JsonEvents:
    """Every event as one JSON object per line on standard output."""

    def __init__(self, file: IO[str] | None = None) -> None:
        self.file = file

    def __call__(self, event: ProgressEvent) -> None:
        from kubehop.cli.output import machine_stdout

        click.echo(json.dumps(event.to_dict(), ensure_ascii=False),
                   file=self.file or machine_stdout())

    def __enter__(self) -> JsonEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class PlainLines(JsonEvents):
    """`format_line` for each event; for a step that has been waiting WAITING_EVERY seconds,
    what it waits for, again every WAITING_EVERY seconds (never minutes of silence)."""

    def __init__(self, file: IO[str] | None = None) -> None:
        super().__init__(file)
        self._started: dict[str, float] = {}  # step → run time it started
        self._said: dict[str, float] = {}  # step → run time of its last waiting line

    def __call__(self, event: ProgressEvent) -> None:
        step = event.step
        if step and event.kind == "step-started":
            self._started[step] = self._said[step] = event.elapsed
        elif step and event.kind == "step-waiting":
            from kubehop.shell.steps.kubeadm_runner import RETRYING

            started = self._started.setdefault(step, event.elapsed)
            said = self._said.setdefault(step, event.elapsed)
            if event.elapsed - said >= WAITING_EVERY or RETRYING in event.message:
                self._said[step] = event.elapsed
                click.echo(f"[{event.done}/{event.total}] … {step} "
                           f"({event.elapsed - started:.0f} s): {event.message}", file=self.file)
            return
        elif step and event.kind in _MARKS:
            self._started.pop(step, None)
            self._said.pop(step, None)
        line = format_line(event)
        if line is not None:
            click.echo(line, file=self.file)


class RichProgress:
    """Bars for the run and the current wave, a line per busy node (a terminal only)."""

    def __init__(self, console: Any = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from kubehop.cli.output import make_console

        self.console = console or make_console(stderr=False)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), console=self.console, transient=False)
        self._overall: Any = None
        self._wave: Any = None
        self._wave_index: int | None = None
        self._wave_total: dict[int, int] = {}
        self._busy: dict[str, tuple[Any, str]] = {}  # node → (task, step)

    def wave_sizes(self, sizes: dict[int, int]) -> None:
        self._wave_total = sizes

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        p = self.progress
        if self._overall is None:
            self._overall = p.add_task("upgrade", total=event.total, completed=event.done)
        p.update(self._overall, completed=event.done)
        if event.wave is not None and event.wave != self._wave_index and \
                event.kind in ("wave-started", "step-started"):
            if self._wave is not None:
                p.remove_task(self._wave)
            self._wave_index = event.wave
            self._wave = p.add_task(f"wave {event.wave} [{event.hop}]",
                                    total=self._wave_total.get(event.wave) or None)
        if self._wave is not None and event.wave == self._wave_index and \
                event.kind in ("step-succeeded", "step-skipped", "wave-finished"):
            p.advance(self._wave)
        node = event.node
        if node and event.kind == "step-started":
            self._show(node, f"  {node}: {event.step_kind}")
        elif node and event.kind in ("step-waiting", "drain") and node in self._busy:
            self._show(node, f"  {node}: {event.step_kind} — {event.message[:80]}")
        elif node and event.kind in ("step-succeeded", "step-skipped", "step-failed"):
            task = self._busy.pop(node, (None, ""))[0]
            if task is not None:
                p.remove_task(task)
        line = format_line(event)
        if line is not None and event.kind in ("step-failed", "run-halted", "run-finished"):
            self.console.print(line)

    def _show(self, node: str, text: str) -> None:
        task, _ = self._busy.get(node, (None, ""))
        if task is None:
            if len(self._busy) >= NODE_LINES:
                return
            task = self.progress.add_task(text, total=None)
        else:
            self.progress.update(task, description=text)
        self._busy[node] = (task, text)


def make_reporter(log_format: str) -> JsonEvents | PlainLines | RichProgress:
    """The event sink for `--log-format` and the terminal we write to."""
    if log_format == "json":
        return JsonEvents()
    if sys.stdout.isatty():
        return RichProgress()
    return PlainLines()
