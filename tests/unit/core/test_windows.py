"""Maintenance windows (core.windows): parsing, open or closed at an instant (time zones, past
midnight, daylight saving), the next opening, and how many windows an estimate needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kubehop.core.windows import (
    describe_opening,
    is_open,
    next_opening,
    parse_window,
    parse_windows,
    windows_needed,
)
from kubehop.model.errors import UsageError

BERLIN = ZoneInfo("Europe/Berlin")
WEEKEND = parse_windows(["Sat,Sun 01:00-05:00 Europe/Berlin"])


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.mark.parametrize(("when", "open_"), [
    (berlin(2026, 9, 5, 1, 0), True),     # Saturday 01:00: opens
    (berlin(2026, 9, 5, 4, 59), True),
    (berlin(2026, 9, 5, 5, 0), False),    # the end is exclusive
    (berlin(2026, 9, 6, 3, 0), True),     # Sunday
    (berlin(2026, 9, 4, 23, 0), False),   # Friday night
    (datetime(2026, 9, 4, 23, 30, tzinfo=UTC), True),  # 01:30 in Berlin (CEST, UTC+2)
])
def test_a_window_is_open_on_its_days_between_its_hours_in_its_zone(when, open_):
    assert is_open(WEEKEND, when) is open_


def test_a_window_ending_before_it_starts_runs_past_midnight():
    (w,) = parse_windows(["Fri 22:00-02:00"])
    assert is_open([w], datetime(2026, 9, 5, 1, 0, tzinfo=UTC))  # Saturday 01:00
    assert not is_open([w], datetime(2026, 9, 6, 1, 0, tzinfo=UTC))
    assert w.zone == "UTC"


def test_ranges_and_daily():
    assert parse_window("Mon-Fri 09:00-17:00").days == frozenset(range(5))
    assert parse_window("Sat-Mon 09:00-17:00").days == frozenset({5, 6, 0})
    assert parse_window("daily 00:00-24:00").length == timedelta(hours=24)


def test_the_next_opening_is_named_in_the_windows_zone():
    wednesday = berlin(2026, 9, 2, 12, 0)
    opening = next_opening(WEEKEND, wednesday)
    assert opening == berlin(2026, 9, 5, 1, 0)
    assert describe_opening(opening, "Europe/Berlin") == "Sat 2026-09-05 01:00 CEST"
    assert next_opening(WEEKEND, berlin(2026, 9, 5, 2, 0)) == berlin(2026, 9, 5, 2, 0)


def test_local_hours_follow_daylight_saving():
    # Sunday 2026-03-29 Berlin moves from CET (UTC+1) to CEST (UTC+2) at 02:00: the window
    # opens at 01:00 CET (00:00 UTC) and closes at 05:00 CEST (03:00 UTC), three hours later.
    assert is_open(WEEKEND, datetime(2026, 3, 29, 0, 0, tzinfo=UTC))
    assert not is_open(WEEKEND, datetime(2026, 3, 28, 23, 59, tzinfo=UTC))
    assert is_open(WEEKEND, datetime(2026, 3, 29, 2, 59, tzinfo=UTC))
    assert not is_open(WEEKEND, datetime(2026, 3, 29, 3, 0, tzinfo=UTC))


def test_windows_needed_by_an_estimate():
    wednesday = berlin(2026, 9, 2, 12, 0)
    assert windows_needed(WEEKEND, 3 * 3600, wednesday) == 1
    assert windows_needed(WEEKEND, 6 * 3600, wednesday) == 2
    assert windows_needed(WEEKEND, 9 * 3600, wednesday) == 3
    assert windows_needed((), 9 * 3600, wednesday) == 0
    # Starting inside a window uses what is left of it.
    assert windows_needed(WEEKEND, 2 * 3600, berlin(2026, 9, 5, 4, 0)) == 2


@pytest.mark.parametrize(("text", "why"), [
    ("Sat 1-5", "bad time '1' (expected HH:MM)"),
    ("Caturday 01:00-02:00", "unknown day 'caturday'"),
    ("Sat 01:00-02:00 Mars/Olympus",
     "unknown time zone 'Mars/Olympus' (an IANA name such as Europe/Berlin)"),
    ("Sat", "expected DAYS HH:MM-HH:MM [ZONE]"),
])
def test_bad_windows_are_one_line_with_an_example(text, why):
    with pytest.raises(UsageError) as e:
        parse_window(text)
    assert str(e.value) == (f"bad --window {text!r}: {why}; e.g. \"Sat,Sun 01:00-05:00 "
                            f"Europe/Berlin\"")
