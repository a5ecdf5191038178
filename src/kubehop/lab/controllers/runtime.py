"""The controllers' event loop: change routing, work queues, owner indexes and lab-time timers.

Store subscribers run synchronously on every write, so they only mark keys dirty; one asyncio
task then syncs dirty keys in batches and fires due timers. Work is driven by the key of each
change (never a rescan of every object), which keeps 150k pods on 5,000 nodes cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from kubehop.lab.api.store import Store
from kubehop.lab.api.watches import Change
from kubehop.lab.clock import LabClock

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Key = tuple[str, str]

# Resources whose objects the runtime indexes by their controller's uid.
OWNED = ("pods", "replicasets.apps", "poddisruptionbudgets.policy")


@dataclass(frozen=True, slots=True)
class Timing:
    """Lab durations in lab seconds (DESIGN scenario `timing`)."""

    podStart: float = 5.0  # bound pod → Running and Ready
    podStop: float = 2.0  # a deleted pod's containers stop (capped by its grace period)
    kubeletRestart: float = 10.0
    staticPodRestart: float = 20.0
    packageInstall: float = 8.0
    switchover: float = 3.0  # CNPG: demote the old primary, promote the new one
    schedulerBackoff: float = 1.0  # retry of unschedulable pods after a cluster change


def key_of(obj: Obj) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def controller_uid(obj: Obj | None) -> str | None:
    """The uid of the object's controller ownerReference, if any."""
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref.get("uid")
    return None


class Controller:
    """A reconciler: `on_change` marks keys dirty (cheap, synchronous), `sync` does the work."""

    resources: tuple[str, ...] = ()

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.store = rt.store
        self.dirty: dict[Hashable, None] = {}

    def mark(self, key: Hashable) -> None:
        self.dirty[key] = None
        self.rt.poke()

    def on_change(self, change: Change) -> None:
        """React to a change of one of `resources` (mark keys; no writes here)."""

    def resync(self) -> None:
        """Mark every key this controller owns (once, at start)."""

    def sync(self, key: Any) -> None:
        """Reconcile one key."""

    def after_batch(self) -> None:
        """Called once after each batch of syncs (coalesced work such as status totals)."""


class Runtime:
    """Routes store changes to controllers and runs their queues and timers on one task."""

    def __init__(self, store: Store, clock: LabClock, timing: Timing, *, seed: int = 0) -> None:
        self.store = store
        self.clock = clock
        self.timing = timing
        self.rand = random.Random(seed)
        self.controllers: list[Controller] = []
        self.errors: list[BaseException] = []
        self._routes: dict[str, list[Controller]] = {}
        self._owned: dict[str, dict[str, dict[Key, None]]] = {r: {} for r in OWNED}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.batch_size = 2000

    # --- wiring ---------------------------------------------------------------------------

    def add(self, controller: Controller) -> None:
        self.controllers.append(controller)
        for resource in controller.resources:
            self._routes.setdefault(resource, []).append(controller)

    def attach(self) -> None:
        """Index the store's objects, subscribe to its changes and resync every controller."""
        for resource, index in self._owned.items():
            for obj in self.store.iter(resource):
                uid = controller_uid(obj)
                if uid:
                    index.setdefault(uid, {})[key_of(obj)] = None
        self._unsubscribe = self.store.subscribe(self._on_change)
        for c in self.controllers:
            c.resync()

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def owned(self, resource: str, uid: str) -> list[Obj]:
        """Stored objects of `resource` whose controller has `uid` (read-only)."""
        keys = self._owned[resource].get(uid)
        if not keys:
            return []
        found = (self.store.peek(resource, ns, name) for ns, name in keys)
        return [o for o in found if o is not None and controller_uid(o) == uid]

    def _on_change(self, change: Change) -> None:
        index = self._owned.get(change.resource)
        if index is not None:
            key = key_of(change.object)
            old_uid = controller_uid(change.old) if change.type != "ADDED" else None
            new_uid = controller_uid(change.object) if change.type != "DELETED" else None
            if change.type == "DELETED":
                old_uid = controller_uid(change.object)
            if old_uid != new_uid and old_uid and (slot := index.get(old_uid)) is not None:
                slot.pop(key, None)
                if not slot:
                    del index[old_uid]
            if new_uid:
                index.setdefault(new_uid, {})[key] = None
        for c in self._routes.get(change.resource, ()):
            c.on_change(change)

    # --- timers and the loop --------------------------------------------------------------

    def after(self, delay: float, fn: Callable[[], None]) -> None:
        """Call `fn` once `delay` lab seconds have passed."""
        self.at(self.clock.now() + max(0.0, delay), fn)

    def at(self, lab_time: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (lab_time, next(self._seq), fn))
        self.poke()

    def poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def busy(self, horizon: float | None = None) -> bool:
        """Work is queued or a timer is due within `horizon` lab seconds (any, if None)."""
        if any(c.dirty for c in self.controllers):
            return True
        if not self._timers:
            return False
        return horizon is None or self._timers[0][0] <= self.clock.now() + horizon

    def run_ready(self) -> int:
        """Fire due timers and sync one batch of every queue; return how much was done."""
        done = 0
        now = self.clock.now()
        for c in self.controllers:
            if not c.dirty:
                continue
            keys = list(itertools.islice(c.dirty, self.batch_size))
            for k in keys:
                del c.dirty[k]
            for k in keys:
                self._guard(lambda c=c, k=k: c.sync(k))
            self._guard(c.after_batch)
            done += len(keys)
        # Timers after the queues: queued work answers changes that happened before now.
        fired = 0
        while self._timers and self._timers[0][0] <= now and fired < self.batch_size:
            _, _, fn = heapq.heappop(self._timers)
            self._guard(fn)
            fired += 1
        return done + fired

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as err:  # a controller bug must not stop the lab
            log.exception("lab controller failed")
            self.errors.append(err)

    def _next_delay(self) -> float | None:
        """Lab seconds until the first timer is due (None: no timer)."""
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - self.clock.now())

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            if self.run_ready():
                await asyncio.sleep(0)  # let the API server answer between batches
                continue
            await self.clock.wait(self._wake, self._next_delay())

    def start(self) -> None:
        """Run the loop as a task of the running event loop."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="lab-ctrl")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._wake = None

    @property
    def running(self) -> bool:
        return self._task is not None

    async def settle(self, timeout: float = 30.0, horizon: float | None = 60.0) -> None:
        """Wait (real seconds at most `timeout`) until no work is queued and no timer is due
        within `horizon` lab seconds (None: until no timer pends at all)."""
        self.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while quiet < 2:
            if loop.time() > deadline:
                raise TimeoutError(f"lab controllers still busy after {timeout}s")
            busy = self.busy(horizon)
            quiet = 0 if busy else quiet + 1
            delay = self._next_delay() if busy else None
            if delay is None:
                await asyncio.sleep(0.001)
            else:  # a timer is due: let lab time pass until it is (a virtual clock advances)
                await self.clock.elapse(delay, poll=0.05)


def sorted_keys(objs: Iterable[Obj]) -> list[Key]:
    return sorted(key_of(o) for o in objs)
