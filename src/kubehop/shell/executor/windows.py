"""Keeping an apply inside its maintenance windows (`--window`), on an injectable clock.

The executor asks `WindowGuard.admit()` before a step that starts a node's work in a wave (a
new node, hence also a new hop): inside a window it starts; outside, with `--wait-for-window`
the step sleeps until the next opening, else the run stops starting steps (running ones finish)
and halts with exit 3 naming the next opening. Steps in the middle of a node's sequence are
never held back: a node that started finishes.

The clock is the operator's machine's (UTC) by default; against the lab it is the lab's
(`/lab/v1/clock`: its wall time and time scale), so a test of a window that closes in an hour
of lab time takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kubehop.core.windows import Window, describe_opening, is_open, next_opening
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube.errors import ApiError

Now = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Clock:
    """Wall time (aware) and a sleep in the same time; `refresh` (if any) reads the time
    again from its source before each decision."""

    now: Now
    sleep: Sleep
    name: str = "local"
    refresh: Callable[[], Awaitable[None]] | None = None


def system_clock() -> Clock:
    return Clock(lambda: datetime.now(UTC), asyncio.sleep)


def scaled_clock(wall: float, scale: float, name: str = "lab",
                 monotonic: Callable[[], float] = time.monotonic,
                 read: Callable[[], Awaitable[tuple[float, float]]] | None = None) -> Clock:
    """A clock at `wall` (Unix seconds) now that runs `1 / scale` times faster than real time;
    `read` gives (wall, scale) from the source again (`Clock.refresh`)."""
    state = [wall, scale, monotonic()]

    def now() -> datetime:
        return datetime.fromtimestamp(state[0] + (monotonic() - state[2]) / state[1], UTC)

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) * state[1])

    async def refresh() -> None:
        if read is not None:
            state[0], state[1] = await read()
            state[2] = monotonic()

    return Clock(now, sleep, name, refresh if read is not None else None)


async def cluster_clock(client: object) -> Clock:
    """The lab's clock when the API server is a lab's (`GET /lab/v1/clock`: read again before
    each decision, so a test may move it), else this machine's."""
    async def read() -> tuple[float, float]:
        data = await client.get_json(rq.lab_clock())  # type: ignore[attr-defined]
        return float(data["now"]), float(data["timeScale"])

    try:
        wall, scale = await read()
    except (ApiError, KeyError, TypeError, ValueError):
        return system_clock()
    return scaled_clock(wall, scale, read=read)


class WindowClosed(Exception):
    """No window is open: `message` says when the next one opens and how to resume."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class WindowGuard:
    """Admits steps that start a node only inside a window (see the module docstring)."""

    def __init__(self, windows: Sequence[Window], clock: Clock, *, wait: bool = False,
                 resume: str = "kubehop apply",
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.windows = tuple(windows)
        self.clock = clock
        self.wait = wait
        self.resume = resume
        self.on_wait = on_wait

    def next_text(self, now: datetime) -> str:
        opening = next_opening(self.windows, now)
        if opening is None:
            return "no window opens in the next eight weeks"
        zone = min(self.windows, key=lambda w: next_opening([w], now) or opening).zone
        return f"next window opens {describe_opening(opening, zone)}"

    async def admit(self) -> None:
        """Return once a window is open; WindowClosed when closed and not waiting."""
        while True:
            if self.clock.refresh is not None:
                # an apiserver restarting (kubeadm): keep counting from the last reading
                with contextlib.suppress(ApiError, KeyError, TypeError, ValueError):
                    await self.clock.refresh()
            now = self.clock.now()
            if is_open(self.windows, now):
                return
            opening = next_opening(self.windows, now)
            if not self.wait or opening is None:
                raise WindowClosed(f"maintenance window closed: resume with `{self.resume}` "
                                   f"({self.next_text(now)})")
            if self.on_wait is not None:
                self.on_wait(f"outside the maintenance windows: waiting ({self.next_text(now)})")
            await self.clock.sleep(min((opening - now).total_seconds() + 1,
                                       timedelta(hours=1).total_seconds()))
