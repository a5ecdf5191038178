"""Lab time: a monotonic clock that runs `1 / time_scale` times faster than real time, and a
virtual one for tests whose time moves only when told.

Every lab wait goes through the clock: `sleep(lab_seconds)`, `wait(event, lab_timeout)` and
`elapse(lab_seconds)` (let lab time pass: a poller's step). `LabClock` sleeps scaled real time;
`VirtualClock` wakes its sleepers only when a test calls `advance(lab_seconds)` (or, with
`auto=True`, whenever the event loop has nothing else to run), in the order they are due, so a
test of a 5-minute back-off takes milliseconds and always sees the same order of events.

Two timelines meet here. *Lab seconds* (`LabClock.now()`) start at `start` and drive every lab
duration (pod start, kubelet restart, the disruption controller's 2-minute DeletionTimeout).
*Wall seconds* (`LabClock.wall()`) are Unix seconds on the same scale, `epoch + lab seconds`;
they are what object timestamps (`creationTimestamp`, `status.disruptedPods`, condition
`lastTransitionTime`) are written in, so the pure lab logic can compare an RFC3339 timestamp read
back from an object with "now" without knowing the epoch.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
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

    async def sleep(self, lab_seconds: float) -> None:
        """Wait until `lab_seconds` of lab time have passed."""
        await asyncio.sleep(self.real_seconds(lab_seconds))

    async def wait(self, event: asyncio.Event, lab_timeout: float | None) -> bool:
        """Wait until `event` is set (True) or `lab_timeout` lab seconds passed (False; None:
        no time limit)."""
        timeout = None if lab_timeout is None else self.real_seconds(lab_timeout)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def elapse(self, lab_seconds: float, *, poll: float | None = None) -> None:
        """Let `lab_seconds` of lab time pass; with `poll`, a poller's step: at least 0.5 ms
        and at most `poll` real seconds."""
        real = self.real_seconds(lab_seconds)
        if poll is not None:
            real = min(max(real, 0.0005), poll)
        await asyncio.sleep(real)

    def close(self) -> None:
        """Stop background work of the clock (none for a real clock)."""


class VirtualClock(LabClock):
    """Lab time that moves only when a test says so: `await clock.advance(lab_seconds)`.

    `advance` wakes the sleepers (and timed `wait`s) due on the way in the order they are due
    (equal times: in the order they began), and lets the woken tasks run until the event loop
    has nothing ready before it moves on. With `auto=True` a background task does the same on
    its own: whenever the loop has nothing ready, time jumps to the next sleeper. Nothing waits
    real time. `time_scale` is only reported (`/lab/v1/clock`); `epoch` as for `LabClock`.
    """

    IDLE_ROUNDS = 3  # loop passes with nothing ready that count as idle
    MAX_ROUNDS = 1000  # a task that never waits (a poller): stop waiting for it

    def __init__(self, start: float = 0.0, *, auto: bool = False, time_scale: float = 1.0,
                 epoch: float | None = None) -> None:
        self.time_scale = float(time_scale)
        self.start = float(start)
        self.epoch = time.time() if epoch is None else float(epoch)
        self.auto = auto
        self._now = self.start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._auto_task: asyncio.Task[None] | None = None
        self._added: asyncio.Event | None = None

    def now(self) -> float:
        return self._now

    def real_seconds(self, lab_seconds: float) -> float:
        """Nothing waits real time on a virtual clock."""
        return 0.0

    def _sleeper(self, lab_seconds: float) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, lab_seconds), next(self._seq),
                                        future))
        if self.auto:
            if self._auto_task is None or self._auto_task.done():
                self._added = asyncio.Event()
                self._auto_task = loop.create_task(self._run_auto(), name="lab-virtual-clock")
            assert self._added is not None
            self._added.set()
        return future

    async def sleep(self, lab_seconds: float) -> None:
        if lab_seconds <= 0:
            await asyncio.sleep(0)
            return
        future = self._sleeper(lab_seconds)
        try:
            await future
        finally:
            future.cancel()  # a cancelled sleeper stays queued, done: advance skips it

    async def wait(self, event: asyncio.Event, lab_timeout: float | None) -> bool:
        if event.is_set():
            return True
        if lab_timeout is None:
            await event.wait()
            return True
        if lab_timeout <= 0:
            return False
        timer = self._sleeper(lab_timeout)
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({timer, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            waiter.cancel()
        return event.is_set()

    async def elapse(self, lab_seconds: float, *, poll: float | None = None) -> None:
        await self.advance(lab_seconds)

    def pending(self) -> list[float]:
        """The lab times at which sleepers wait to be woken, in order."""
        return sorted(t for t, _, f in self._sleepers if not f.done())

    async def advance(self, lab_seconds: float) -> None:
        """Move lab time `lab_seconds` forward, waking every sleeper due on the way in order
        (with `auto`, the clock moves itself: this waits until it has moved that far)."""
        if self.auto:
            await self.sleep(lab_seconds)
            return
        target = self._now + max(0.0, lab_seconds)
        await self.run_until_idle()
        while self._sleepers and self._sleepers[0][0] <= target:
            await self._wake_next()
        self._now = max(self._now, target)
        await self.run_until_idle()

    async def _wake_next(self) -> None:
        """Jump to the first sleeper's time and wake every sleeper due then."""
        self._now = max(self._now, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        await self.run_until_idle()

    async def run_until_idle(self) -> None:
        """Let every task run until the event loop has nothing ready (pending socket reads
        already arrived are served too: each pass polls for I/O)."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)  # CPython's queue of runnable callbacks
        quiet = 0
        for _ in range(self.MAX_ROUNDS):
            await asyncio.sleep(0)
            quiet = quiet + 1 if ready is None or not ready else 0
            if quiet >= self.IDLE_ROUNDS:
                return

    async def _run_auto(self) -> None:
        assert self._added is not None
        while True:
            await self.run_until_idle()
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # cancelled sleepers
            if not self._sleepers:
                self._added.clear()
                await self._added.wait()
                continue
            await self._wake_next()

    def close(self) -> None:
        """Stop the auto-advancing task, if any."""
        task, self._auto_task = self._auto_task, None
        if task is not None:
            task.cancel()


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
