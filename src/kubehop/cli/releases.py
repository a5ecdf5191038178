"""`kubehop releases`: every Kubernetes minor the release data knows, and its status today.

Also the shared `--today` and `--release-data` options, for every command that judges versions
against release data (`check`, `plan`, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import click

from kubehop.cli.output import MACHINE_FORMATS, emit, make_console, make_table, styled, warn
from kubehop.core.support import is_stale, staleness_warning, support_table
from kubehop.data import load_release_data
from kubehop.model.errors import UsageError
from kubehop.model.releases import MinorSupport, ReleaseData, SupportStatus

_F = TypeVar("_F", bound=Callable[..., Any])
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

STATUS_STYLES = {
    str(SupportStatus.SUPPORTED): "green",
    str(SupportStatus.MAINTENANCE): "yellow",
    str(SupportStatus.END_OF_LIFE): "red",
    str(SupportStatus.UNRELEASED): "cyan",
    str(SupportStatus.UNKNOWN_NEWER): "magenta",
}


def today_option(f: _F) -> _F:
    """`--today DATE`: judge support as on DATE instead of the system date."""
    return click.option(
        "--today", metavar="DATE",
        help="Judge support as on DATE (YYYY-MM-DD) instead of today's date.",
    )(f)


def release_data_option(f: _F) -> _F:
    """`--release-data FILE`: use FILE (kubehop's release-data format) instead of shipped data."""
    return click.option(
        "--release-data", metavar="FILE", envvar="KUBEHOP_RELEASE_DATA",
        help="Release data file in the format of the shipped kubehop/data/releases.yaml "
             "(also $KUBEHOP_RELEASE_DATA); default: the data shipped with kubehop.",
    )(f)


def resolve_today(text: str | None) -> date:
    """The `--today` value as a date; the system date when not given."""
    if text is None:
        return date.today()
    if _DATE_RE.match(text.strip()):
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            pass
    raise UsageError(f"bad --today {text!r}: expected a date like 2026-11-25")


def load_release_data_checked(path: str | None, today: date, *,
                              warn_stale: bool = True) -> ReleaseData:
    """Load release data (shipped or `path`) and warn on standard error when it is stale, once
    per command (`upgrade` loads it again to check its plan); `warn_stale=False` for commands
    that report it otherwise (`check`: the `data.stale` finding)."""
    data = load_release_data(path)
    message = staleness_warning(data, today)
    ctx = click.get_current_context(silent=True)
    warned: set[str] = ctx.find_root().meta.setdefault("kubehop.warned", set()) if ctx else set()
    if message and warn_stale and message not in warned:
        warned.add(message)
        warn(message)
    return data


def releases_document(data: ReleaseData, today: date, rows: list[MinorSupport]) -> dict[str, Any]:
    """The machine-readable shape of `releases -o json|yaml`."""
    return {
        "dataDate": data.data_date.isoformat(),
        "today": today.isoformat(),
        "stale": is_stale(data, today),
        "releases": [row.to_dict() for row in rows],
    }


@click.command("releases")
@click.option("-o", "--output", type=click.Choice(["table", *MACHINE_FORMATS]), default="table",
              show_default=True, help="Output format.")
@today_option
@release_data_option
def releases(output: str, today: str | None, release_data: str | None) -> None:
    """List Kubernetes minors: GA, maintenance start, end of life, latest patch, status.

    \b
    Newest minor first. Status on DATE (default today): supported (GA to maintenance
    start), maintenance (critical fixes only, until end of life), end-of-life, or
    unreleased (GA after DATE). Latest patch: the newest tagged on or before DATE.
    Warns on standard error when the data is more than 60 days old.
    """
    day = resolve_today(today)
    data = load_release_data_checked(release_data, day)
    rows = support_table(data, day)
    if output in MACHINE_FORMATS:
        emit(releases_document(data, day, rows), output)
        return
    console = make_console()
    console.print(make_table(
        ["minor", "ga", "maintenance", "end of life", "latest patch", "status"],
        [
            [f"{row.minor}*" if row.unsure else str(row.minor), row.ga.isoformat(),
             row.maintenance_start.isoformat(), row.eol.isoformat(),
             str(row.latest_patch) if row.latest_patch else None,
             styled(str(row.status), STATUS_STYLES)]
            for row in rows
        ],
    ))
    for row in rows:
        if row.unsure:
            console.print(f"* {row.minor}: unsure: {row.note or 'not confirmed from two sources'}")
