"""Output for people and machines: JSON/YAML writers, kubectl-like rich tables, warnings.

Machine output is plain data: `to_plain` turns dates, enums, versions and objects with a
`to_dict()` into JSON types, so JSON and YAML always have the same shape. People get rich
tables; `NO_COLOR` (https://no-color.org) turns colour off, and so does a pipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import IO, Any

import click
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kubehop.model.versions import KubeVersion, MinorVersion

MACHINE_FORMATS = ("json", "yaml")
NONE = "<none>"  # kubectl's placeholder for an absent value


def to_plain(value: Any) -> Any:
    """`value` as JSON types: ISO dates, enum values, `v1.28.9`, dicts with string keys."""
    if isinstance(value, Enum):  # before str: a StrEnum is a str
        return to_plain(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, KubeVersion | MinorVersion):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_plain(to_dict())
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def format_json(value: Any) -> str:
    """Indented JSON (4 spaces, as kubectl writes it), ending with a newline."""
    return json.dumps(to_plain(value), indent=4, ensure_ascii=False) + "\n"


def format_yaml(value: Any) -> str:
    """Block-style YAML in the key order given (not sorted), same shape as the JSON."""
    return yaml.safe_dump(to_plain(value), sort_keys=False, allow_unicode=True,
                          default_flow_style=False)


def format_machine(value: Any, output: str) -> str:
    """`value` as `output` (`json` or `yaml`)."""
    if output == "json":
        return format_json(value)
    if output == "yaml":
        return format_yaml(value)
    raise ValueError(f"not a machine format: {output!r} (expected one of {MACHINE_FORMATS})")


def emit(value: Any, output: str, file: IO[str] | None = None) -> None:
    """Write `value` as JSON or YAML to `file` (default: standard output)."""
    click.echo(format_machine(value, output), nl=False, file=file)


def color_disabled() -> bool:
    """Whether the user asked for no colour (`NO_COLOR` set to anything non-empty)."""
    return bool(os.environ.get("NO_COLOR"))


def make_console(file: IO[str] | None = None, *, stderr: bool = False,
                 no_color: bool | None = None, width: int | None = None) -> Console:
    """A rich console for people: no syntax highlighting, colour unless NO_COLOR or a pipe."""
    return Console(
        file=file,
        stderr=stderr,
        no_color=color_disabled() if no_color is None else no_color,
        highlight=False,
        width=width,
    )


def make_table(headers: Sequence[str], rows: Iterable[Sequence[str | Text | None]]) -> Table:
    """A kubectl-like table: upper-case headers, no borders, `<none>` for missing cells."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header.upper(), no_wrap=True)
    for row in rows:
        table.add_row(*(NONE if cell is None else cell for cell in row))
    return table


def styled(text: str, styles: Mapping[str, str]) -> Text:
    """`text` in the style `styles[text]` (plain when absent): status columns and the like."""
    return Text(text, style=styles.get(text, ""))


def warn(message: str) -> None:
    """One warning line on standard error; never changes the exit code."""
    click.echo(f"kubehop: warning: {message}", err=True)


_machine_stdout: list[IO[str]] = []  # the real standard output while `json_stdout` is active


@contextlib.contextmanager
def json_stdout(log_format: str) -> Iterator[None]:
    """With `--log-format json`, keep standard output pure JSON: text for people written inside
    (plans, dry runs, summaries) goes to standard error; JSON writers use `machine_stdout()`."""
    if log_format != "json":
        yield
        return
    _machine_stdout.append(sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _machine_stdout.pop()


def machine_stdout() -> IO[str]:
    """Where JSON lines go: standard output, even inside `json_stdout`."""
    return _machine_stdout[-1] if _machine_stdout else sys.stdout
