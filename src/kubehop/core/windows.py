"""Maintenance windows: `--window "Sat,Sun 01:00-05:00 Europe/Berlin"`, pure (time is an
argument).

    windows = parse_windows(["Sat,Sun 01:00-05:00 Europe/Berlin", "Wed 22:00-02:00 UTC"])
    is_open(windows, now)           # a new node or hop may start
    next_opening(windows, now)      # when the next one opens (aware datetime)
    windows_needed(windows, seconds, now)   # how many openings `seconds` of work take

Days are `Mon`…`Sun`, comma-separated, with ranges (`Mon-Fri`), or `daily`; times are local
to the time zone (an IANA name; default UTC), `HH:MM-HH:MM`, the end exclusive; an end at or
before the start runs past midnight into the next day. Local times follow the zone's daylight
saving rules (zoneinfo).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kubehop.model.errors import UsageError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HORIZON_DAYS = 8 * 7  # how far ahead `next_opening` looks


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly window: on `days` (0 = Monday) from `start` for `length`, in zone `zone`."""

    text: str
    days: frozenset[int]
    start: time
    length: timedelta
    zone: str

    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def spans_around(self, now: datetime) -> list[tuple[datetime, datetime]]:
        """The (open, close) spans that start from yesterday to `_HORIZON_DAYS` ahead."""
        tz = self._tz()
        local = now.astimezone(tz)
        out = []
        for d in range(-1, _HORIZON_DAYS):
            day = (local + timedelta(days=d)).date()
            if day.weekday() in self.days:
                opens = datetime.combine(day, self.start, tz)
                out.append((opens, opens + self.length))
        return out


def _parse_days(text: str) -> frozenset[int]:
    if text.lower() in ("daily", "*"):
        return frozenset(range(7))
    out: set[int] = set()
    for part in text.lower().split(","):
        first, _, last = part.strip().partition("-")
        if first[:3] not in DAYS or (last and last[:3] not in DAYS):
            raise ValueError(f"unknown day {part.strip()!r}")
        a = DAYS.index(first[:3])
        b = DAYS.index(last[:3]) if last else a
        out.update((a + k) % 7 for k in range(((b - a) % 7) + 1))
    return frozenset(out)


def _parse_time(text: str) -> time:
    hours, sep, minutes = text.partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit()) or len(minutes) != 2:
        raise ValueError(f"bad time {text!r} (expected HH:MM)")
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        return time(0, 0)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"bad time {text!r}")
    return time(h, m)


def parse_window(text: str) -> Window:
    """`DAYS HH:MM-HH:MM [ZONE]`; UsageError with an example otherwise."""
    words = text.split()
    try:
        if len(words) not in (2, 3):
            raise ValueError("expected DAYS HH:MM-HH:MM [ZONE]")
        days = _parse_days(words[0])
        first, sep, last = words[1].partition("-")
        if not sep:
            raise ValueError(f"bad hours {words[1]!r} (expected HH:MM-HH:MM)")
        start, end = _parse_time(first), _parse_time(last)
        zone = words[2] if len(words) == 3 else "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as "
                             f"Europe/Berlin)") from None
    except ValueError as e:
        raise UsageError(f"bad --window {text!r}: {e}; e.g. \"Sat,Sun 01:00-05:00 "
                         f"Europe/Berlin\"") from None
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if minutes <= 0:
        minutes += 24 * 60  # past midnight
    return Window(text, days, start, timedelta(minutes=minutes), zone)


def parse_windows(texts: Iterable[str]) -> tuple[Window, ...]:
    return tuple(parse_window(t) for t in texts)


def _spans(windows: Sequence[Window], now: datetime) -> list[tuple[datetime, datetime]]:
    return sorted(s for w in windows for s in w.spans_around(now))


def is_open(windows: Sequence[Window], now: datetime) -> bool:
    """Whether `now` (aware) is inside a window (no windows: always)."""
    if not windows:
        return True
    return any(a <= now < b for a, b in _spans(windows, now))


def closes_at(windows: Sequence[Window], now: datetime) -> datetime | None:
    """When the window open at `now` closes (overlapping windows merged); None if closed."""
    end = None
    for a, b in _spans(windows, now):
        inside = a <= now < b or (end is not None and a <= end)
        if inside and (end is None or b > end):
            end = b
    return end


def next_opening(windows: Sequence[Window], now: datetime) -> datetime | None:
    """The next time a window opens after `now` (`now` itself when one is open)."""
    if is_open(windows, now):
        return now
    return next((a for a, _ in _spans(windows, now) if a > now), None)


def windows_needed(windows: Sequence[Window], seconds: float, now: datetime) -> int:
    """How many window openings `seconds` of work take, starting at `now` (work runs only
    inside windows; 0 without windows)."""
    if not windows or seconds <= 0:
        return 0
    left, count, at = seconds, 0, now
    for _ in range(1000):
        opening = next_opening(windows, at)
        if opening is None:
            break
        end = closes_at(windows, opening)
        if end is None:
            break
        count += 1
        left -= (end - opening).total_seconds()
        if left <= 0:
            return count
        at = end + timedelta(seconds=1)
    # windows further than the horizon: assume each as long as the shortest one
    shortest = min(w.length.total_seconds() for w in windows)
    return count + math.ceil(left / shortest)


def describe_opening(when: datetime, zone: str) -> str:
    """`Sat 2026-09-05 01:00 CEST` in the window's zone."""
    local = when.astimezone(ZoneInfo(zone))
    return local.strftime("%a %Y-%m-%d %H:%M %Z")
