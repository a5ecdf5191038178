"""Lab time: scaled monotonic lab seconds, wall seconds for object timestamps, RFC3339, and the
virtual clock tests drive."""

import asyncio
import time

import pytest

from kubehop.lab.clock import LabClock, VirtualClock, parse_rfc3339, rfc3339, rfc3339_micro

EPOCH = 1714564800.0  # 2024-05-01T12:00:00Z


class FakeReal:
    """A real clock the test moves by hand."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("scale", "real_elapsed", "lab_elapsed"),
    [(1.0, 10.0, 10.0), (0.05, 1.0, 20.0), (2.0, 10.0, 5.0), (0.001, 0.5, 500.0)],
)
def test_now_runs_one_over_time_scale_faster_than_real_time(scale, real_elapsed, lab_elapsed):
    real = FakeReal()
    clock = LabClock(scale, real_clock=real, epoch=EPOCH)
    assert clock.now() == 0.0
    real.value += real_elapsed
    assert clock.now() == pytest.approx(lab_elapsed)


def test_start_offsets_lab_time():
    real = FakeReal()
    clock = LabClock(0.5, start=100.0, real_clock=real, epoch=EPOCH)
    real.value += 3
    assert clock.now() == pytest.approx(106.0)


def test_real_seconds_is_how_long_to_sleep():
    clock = LabClock(0.05, real_clock=FakeReal(), epoch=EPOCH)
    assert clock.real_seconds(20) == pytest.approx(1.0)
    assert clock.real_seconds(-5) == 0.0


@pytest.mark.parametrize("scale", [0, -1, float("nan")])
def test_time_scale_must_be_positive(scale):
    with pytest.raises(ValueError, match="time scale must be positive"):
        LabClock(scale)


def test_wall_and_lab_are_inverse_and_timestamps_use_the_epoch():
    real = FakeReal()
    clock = LabClock(1.0, real_clock=real, epoch=EPOCH)
    assert clock.wall(0) == EPOCH
    assert clock.lab(clock.wall(42.5)) == 42.5
    real.value += 61
    assert clock.timestamp() == "2024-05-01T12:01:01Z"
    assert clock.timestamp(3600) == "2024-05-01T13:00:00Z"


@pytest.mark.parametrize(
    ("unix", "text"),
    [
        (EPOCH, "2024-05-01T12:00:00Z"),
        (EPOCH + 0.999, "2024-05-01T12:00:00Z"),  # Go's RFC3339 truncates fractions
        (0, "1970-01-01T00:00:00Z"),
    ],
)
def test_rfc3339_is_whole_seconds_utc(unix, text):
    assert rfc3339(unix) == text


def test_rfc3339_micro_keeps_microseconds():
    assert rfc3339_micro(EPOCH + 0.25) == "2024-05-01T12:00:00.250000Z"


@pytest.mark.parametrize(
    ("text", "unix"),
    [
        ("2024-05-01T12:00:00Z", EPOCH),
        ("2024-05-01T12:00:00.5Z", EPOCH + 0.5),
        ("2024-05-01T14:00:00+02:00", EPOCH),
        ("2024-05-01T12:00:00.123456789Z", EPOCH + 0.123456),
    ],
)
def test_parse_rfc3339(text, unix):
    assert parse_rfc3339(text) == pytest.approx(unix, abs=1e-6)


def test_parse_rfc3339_round_trips_and_rejects_naive_times():
    assert parse_rfc3339(rfc3339(EPOCH + 7)) == EPOCH + 7
    with pytest.raises(ValueError, match="without a time zone"):
        parse_rfc3339("2024-05-01T12:00:00")


# --- waits through the clock -------------------------------------------------------------------

async def test_a_real_clock_sleeps_and_waits_scaled_real_time():
    clock = LabClock(0.001)
    start = time.monotonic()
    await clock.sleep(20)  # 20 ms
    assert time.monotonic() - start >= 0.019
    event = asyncio.Event()
    assert await clock.wait(event, 5) is False
    event.set()
    assert await clock.wait(event, 5) is True


async def test_virtual_sleepers_wake_in_order_of_their_lab_time_only_when_advanced():
    clock = VirtualClock(start=100.0, epoch=EPOCH)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in
             (("c", 30), ("a", 10), ("b", 20), ("b2", 20))]
    await clock.run_until_idle()
    assert clock.pending() == [110.0, 120.0, 120.0, 130.0]
    assert woke == []  # nothing moves by itself
    await clock.advance(20)
    assert woke == [("a", 110.0), ("b", 120.0), ("b2", 120.0)]  # equal times: as they began
    assert clock.now() == 120.0
    assert clock.timestamp() == "2024-05-01T12:02:00Z"
    await clock.advance(100)
    assert woke[-1] == ("c", 130.0)
    assert clock.now() == 220.0
    await asyncio.gather(*tasks)


async def test_a_woken_task_that_sleeps_again_within_the_advance_wakes_again():
    clock = VirtualClock()
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            await clock.sleep(10)
            ticks.append(clock.now())

    task = asyncio.create_task(ticker())
    await clock.advance(35)
    assert ticks == [10.0, 20.0, 30.0]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await clock.advance(100)  # a cancelled sleeper is skipped
    assert ticks == [10.0, 20.0, 30.0]


async def test_virtual_wait_ends_with_the_event_or_at_its_lab_timeout():
    clock = VirtualClock()
    event = asyncio.Event()
    waiting = asyncio.create_task(clock.wait(event, 60))
    await clock.advance(59)
    assert not waiting.done()
    await clock.advance(1)
    assert await waiting is False
    waiting = asyncio.create_task(clock.wait(event, 60))
    await clock.run_until_idle()
    event.set()
    assert await waiting is True
    assert await clock.wait(event, None) is True
    assert clock.pending() == []  # the timer of the wait that the event ended is gone


async def test_an_auto_clock_jumps_to_the_next_sleeper_when_nothing_else_runs():
    clock = VirtualClock(auto=True)
    start = time.monotonic()
    await clock.sleep(3600)  # an hour of lab time
    await clock.advance(600)  # with auto: waits until the clock has moved on its own
    assert clock.now() == 4200.0
    assert time.monotonic() - start < 1
    assert clock.real_seconds(3600) == 0.0
    clock.close()
