"""Lab time: scaled monotonic lab seconds, wall seconds for object timestamps, RFC3339."""

import pytest

from kubehop.lab.clock import LabClock, parse_rfc3339, rfc3339, rfc3339_micro

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
