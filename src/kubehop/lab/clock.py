"""Lab time: a monotonic clock that runs `1 / time_scale` times faster than real time.

Two timelines meet here. *Lab seconds* (`LabClock.now()`) start at `start` and drive every lab
duration (pod start, kubelet restart, the disruption controller's 2-minute DeletionTimeout).
*Wall seconds* (`LabClock.wall()`) are Unix seconds on the same scale, `epoch + lab seconds`;
they are what object timestamps (`creationTimestamp`, `status.disruptedPods`, condition
`lastTransitionTime`) are written in, so the pure lab logic can compare an RFC3339 timestamp read
back from an object with "now" without knowing the epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class LabClock:
    """Lab time derived from a monotonic real clock.

    `time_scale` is real seconds per lab second (DESIGN, `--time-scale`): 1 runs as life,
    0.05 runs 20x faster. `real_clock` (default `time.monotonic`) and `epoch` (Unix seconds at
    lab time 0; default the wall time at construction) are injectable for tests.
    """

    def __init__(
        self,
        time_scale: float,
        start: float = 0.0,
        *,
        real_clock: Callable[[], float] = time.monotonic,
        epoch: float | None = None,
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time scale must be positive, got {time_scale!r}")
        self.time_scale = float(time_scale)
        self.start = float(start)
        self._real_clock = real_clock
        self._real_origin = real_clock()
        self.epoch = time.time() if epoch is None else float(epoch)

    def now(self) -> float:
        """Lab seconds elapsed since lab time 0 (never goes backwards)."""
        return self.start + (self._real_clock() - self._real_origin) / self.time_scale

    def real_seconds(self, lab_seconds: float) -> float:
        """How long to sleep, in real seconds, for `lab_seconds` of lab time to pass."""
        return max(0.0, lab_seconds) * self.time_scale

    def wall(self, lab_seconds: float | None = None) -> float:
        """Unix seconds for a lab time (default: now), the timeline object timestamps use."""
        return self.epoch + (self.now() if lab_seconds is None else lab_seconds)

    def lab(self, wall_seconds: float) -> float:
        """The lab time of a wall (Unix) time: the inverse of `wall`."""
        return wall_seconds - self.epoch

    def timestamp(self, lab_seconds: float | None = None) -> str:
        """An RFC3339 object timestamp for a lab time (default: now)."""
        return rfc3339(self.wall(lab_seconds))


def rfc3339(unix_seconds: float) -> str:
    """Format as metav1.Time does: UTC, whole seconds (Go's RFC3339 truncates), `Z` suffix."""
    whole = int(unix_seconds // 1)
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(unix_seconds: float) -> str:
    """Format as metav1.MicroTime does: UTC with six fractional digits."""
    micros = int(unix_seconds * 1_000_000 // 1)
    whole, frac = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:06d}Z"


def parse_rfc3339(text: str) -> float:
    """Unix seconds of an RFC3339 timestamp (`2024-05-01T12:00:00Z`, fractions and offsets ok)."""
    parsed = datetime.fromisoformat(text.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return parsed.timestamp()
