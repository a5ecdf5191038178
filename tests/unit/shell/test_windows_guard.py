"""WindowGuard on a fake clock: inside a window a step starts at once; outside it the run is
refused naming the next opening, or with --wait-for-window sleeps (clock time) until it opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubehop.core.windows import parse_windows
from kubehop.shell.executor.windows import Clock, WindowClosed, WindowGuard, scaled_clock

WINDOWS = parse_windows(["Sat,Sun 01:00-05:00 Europe/Berlin"])


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.t = now
        self.slept: list[float] = []

    def clock(self) -> Clock:
        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)
            self.t += timedelta(seconds=seconds)
        return Clock(lambda: self.t, sleep, "fake")


async def test_outside_a_window_the_step_is_refused_naming_the_next_opening():
    fake = FakeClock(datetime(2026, 9, 2, 10, 0, tzinfo=UTC))  # a Wednesday
    guard = WindowGuard(WINDOWS, fake.clock(), resume="kubehop apply plan.json")
    with pytest.raises(WindowClosed) as e:
        await guard.admit()
    assert e.value.message == ("maintenance window closed: resume with `kubehop apply "
                               "plan.json` (next window opens Sat 2026-09-05 01:00 CEST)")
    assert fake.slept == []


async def test_waiting_sleeps_until_the_window_opens():
    fake = FakeClock(datetime(2026, 9, 4, 22, 0, tzinfo=UTC))  # Saturday 00:00 in Berlin
    told: list[str] = []
    guard = WindowGuard(WINDOWS, fake.clock(), wait=True, on_wait=told.append)
    await guard.admit()
    assert fake.t >= datetime(2026, 9, 4, 23, 0, tzinfo=UTC)  # 01:00 CEST
    assert sum(fake.slept) <= 3601
    assert told == ["outside the maintenance windows: waiting (next window opens "
                    "Sat 2026-09-05 01:00 CEST)"]


async def test_a_scaled_clock_sleeps_real_seconds_times_the_scale():
    real = [0.0]
    clock = scaled_clock(datetime(2026, 9, 5, 0, 0, tzinfo=UTC).timestamp(), 0.01,
                         monotonic=lambda: real[0])
    real[0] = 36.0  # 36 real seconds at 0.01 real seconds per clock second: an hour
    assert clock.now() == datetime(2026, 9, 5, 1, 0, tzinfo=UTC)
