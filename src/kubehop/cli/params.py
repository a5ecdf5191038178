"""Flag values every command family parses the same way (durations, as kubectl takes them)."""

from __future__ import annotations

import re

import click

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str, flag: str) -> float:
    """Seconds of a Go duration (`0`, `90s`, `5m`, `1h30m`, `1.5h`); a bare number is seconds.
    A bad value is a usage error naming `flag`."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _PART.finditer(value):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(value) or not value:
            raise click.BadParameter(f"{text!r} is not a duration (e.g. 90s, 5m, 1h30m, 0)",
                                     param_hint=flag) from None
    if seconds < 0:
        raise click.BadParameter("must not be negative", param_hint=flag)
    return seconds
