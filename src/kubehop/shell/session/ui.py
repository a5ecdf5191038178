"""What a session tells people and asks them: the one port between a run and its front end.

The session decides *what* to say (a line, a warning, a plan ready to show, a halt report); the
front end (`kubehop.cli`) decides *how* it looks. Tests hand in a recorder.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kubehop.core.hooks import Hook
    from kubehop.core.windows import Window
    from kubehop.model.plan import Plan
    from kubehop.shell.executor.events import HaltReport
    from kubehop.shell.session.reports import DryRun


class Ui(Protocol):
    """The front end of a session."""

    def echo(self, text: str, *, err: bool = False) -> None:
        """A line for people on standard output (`err`: on standard error)."""

    def people(self, text: str) -> None:
        """A line for people that must stay off a JSON event stream (`--log-format json`)."""

    def warn(self, message: str) -> None:
        """A warning: never changes the outcome."""

    def confirm(self, question: str) -> None:
        """Ask before changing the cluster; raises to refuse."""

    def plan_ready(self, plan: Plan, hooks: tuple[Hook, ...], windows: tuple[Window, ...],
                   now: datetime | None) -> None:
        """`upgrade`: show the plan about to be applied (with where hooks run and, given
        windows, `now` on the cluster's clock)."""

    def dry_run(self, report: DryRun) -> None:
        """Show what a run would do next."""

    def reporter(self) -> Any:
        """A progress listener for the executor's events: callable with each event and a
        context manager around the run (optionally with `wave_sizes(dict)`)."""

    def halted(self, report: HaltReport) -> None:
        """Show the report of a halted run."""


class QuietUi:
    """A Ui that shows nothing and agrees to everything: for tests and embedding."""

    def __init__(self, warn: Callable[[str], None] | None = None) -> None:
        self.lines: list[str] = []
        self.warnings: list[str] = []
        self._warn = warn

    def echo(self, text: str, *, err: bool = False) -> None:
        self.lines.append(text)

    def people(self, text: str) -> None:
        self.lines.append(text)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)

    def confirm(self, question: str) -> None:
        return None

    def plan_ready(self, plan: Plan, hooks: tuple[Hook, ...], windows: tuple[Window, ...],
                   now: datetime | None) -> None:
        return None

    def dry_run(self, report: DryRun) -> None:
        return None

    def reporter(self) -> Any:
        return _NoReporter()

    def halted(self, report: HaltReport) -> None:
        return None


class _NoReporter:
    def __call__(self, event: object) -> None:
        return None

    def __enter__(self) -> _NoReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
