"""The upgrade lock: a coordination.k8s.io/v1 Lease `kube-system/kubehop-upgrade`.

    async with LeaseLock(client, run_id) as lock:     # LockHeld names the holder
        if await lock.confirm() is None: ...           # before each mutating step

One kubehop run at a time per cluster, wherever it runs from. The holder writes
`holderIdentity = user@host/pid run-id boot=… pidns=… start=… machine=…` and renews `renewTime`
every `renew_every` seconds (default 10) for `leaseDurationSeconds` (default 30). The tail names
the process uniquely: the host's hostname is shared by containers and VM clones, its machine id by
clones, its boot id by every container of the host, and a PID by processes in other PID
namespaces; adding the PID namespace (`/proc/self/ns/pid`) and the process start time (which a
reused PID does not share) makes it unique.

Another run is refused, naming the holder and when its lease expires, while the lease is fresh;
a lease whose holder stopped renewing is taken over once `renewTime + leaseDurationSeconds` has
passed — early only when its holder is a process of this very PID namespace (same machine id,
boot id and namespace) that no longer runs (a killed kubehop: resume without waiting). A holder
in another container, PID namespace or VM clone cannot be judged from here: its lease expires.
Every write carries the resourceVersion it read, so two runs racing for a stale lease cannot both
win (409 Conflict), and a holder whose renewals failed for longer than the lease (an API outage)
keeps it only if its next write, still carrying its last resourceVersion, succeeds: nobody wrote
the Lease in between.

`confirm()` asks the apiserver before each mutating step whether this run still holds the lease,
so a takeover is noticed before the next renewal; once lost, `lost` is set and `lost_reason`
says why. Released at the end: deleted with a resourceVersion precondition (a lease someone else
took over is left alone). A stale lock (its holder certainly dead, its lease not expiring, e.g.
written by a clock far ahead) is broken with `kubectl -n kube-system delete lease
kubehop-upgrade`; a live holder notices at its next check and stops.

Times are the holders' clocks (as client-go's renewTime); hosts whose clocks disagree by more
than the lease duration may take over a live lease, so keep clocks in sync (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubehop.model.errors import OperationError
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.errors import ApiError, Conflict, NotFound

NAMESPACE = "kube-system"
NAME = "kubehop-upgrade"
DURATION = 30  # leaseDurationSeconds
RENEW_EVERY = 10.0  # seconds between renewals
BREAK = f"kubectl -n {NAMESPACE} delete lease {NAME}"


class LockHeld(OperationError):
    """Another kubehop run holds the upgrade lock."""


def micro_time(t: float) -> str:
    """A Kubernetes MicroTime (`2024-05-01T10:00:00.123456Z`)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# --- who holds it ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessKey:
    """What tells one process from every other (None: unknown here, so never matched)."""

    pid: int
    start: int | None = None  # /proc/PID/stat field 22, clock ticks after boot (proc(5))
    pidns: str | None = None  # inode of /proc/self/ns/pid: one per PID namespace
    boot: str | None = None  # /proc/sys/kernel/random/boot_id: new at each boot
    machine: str | None = None  # /etc/machine-id (machine-id(5)); VM clones share it

    def text(self) -> str:
        """`boot=… pidns=… start=… machine=…`: the holder identity's tail."""
        return " ".join(f"{f}={getattr(self, f)}" for f in ("boot", "pidns", "start", "machine")
                        if getattr(self, f) is not None)

    def shares_pid_namespace(self, other: ProcessKey) -> bool:
        """True when both are fully known and live in one PID namespace of one boot."""
        known = all(getattr(k, f.name) is not None for k in (self, other) for f in fields(k))
        return known and (self.machine, self.boot, self.pidns) == \
            (other.machine, other.boot, other.pidns)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def _stat(text: str) -> tuple[str, int] | None:
    """(state, start time) of a /proc/PID/stat; the name in field 2 may hold spaces and ')'."""
    rest = text.rsplit(")", 1)[-1].split()
    try:
        return rest[0], int(rest[19])  # fields 3 (state) and 22 (starttime) of proc(5)
    except (IndexError, ValueError):
        return None


def this_process() -> ProcessKey:
    """The ProcessKey of the running process (fields it cannot read stay None)."""
    stat = _stat(_read("/proc/self/stat") or "")
    try:
        pidns: str | None = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        pidns = None
    return ProcessKey(pid=os.getpid(), start=stat[1] if stat else None, pidns=pidns,
                      boot=_read("/proc/sys/kernel/random/boot_id"),
                      machine=_read("/etc/machine-id") or _read("/var/lib/dbus/machine-id"))


def process_running(key: ProcessKey) -> bool:
    """Whether `key`, a process of our PID namespace, still runs (True when unsure)."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            return True  # /proc shows another PID namespace (`unshare --pid` without remount)
    except OSError:
        return True
    try:
        text = Path(f"/proc/{key.pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    stat = _stat(text)
    if stat is None:
        return True
    state, start = stat
    # A reused PID starts later; a zombie (Z) or dead (X) task never writes again.
    return start == key.start and state not in ("Z", "X")


def holder_identity(run: str, *, user: str | None = None, host: str | None = None,
                    process: ProcessKey | None = None) -> str:
    """`user@host/pid run-id boot=… pidns=… start=… machine=…` (see the module docstring).

    The apiserver puts no limit on its length (kubernetes/kubernetes
    pkg/apis/coordination/validation/validation.go validates only durations and strategy).
    """
    try:
        user = user or getpass.getuser()
    except (KeyError, OSError):
        user = user or "unknown"
    process = process or this_process()
    tail = process.text()
    return f"{user}@{host or socket.gethostname()}/{process.pid} {run}" + \
        (f" {tail}" if tail else "")


def holder_process(holder: str) -> ProcessKey | None:
    """The ProcessKey a holder identity names (None: not written by this kubehop)."""
    head, *rest = holder.split() or [""]
    pid = head.rpartition("/")[2]
    if "@" not in head or not pid.isdigit():
        return None
    facts = dict(p.split("=", 1) for p in rest if "=" in p)
    start = facts.get("start", "")
    return ProcessKey(pid=int(pid), start=int(start) if start.isdigit() else None,
                      pidns=facts.get("pidns"), boot=facts.get("boot"),
                      machine=facts.get("machine"))


@dataclass(frozen=True, slots=True)
class LeaseView:
    """The facts of a Lease that decide who may hold it."""

    holder: str
    renewed: float | None
    duration: int
    transitions: int
    resource_version: str

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> LeaseView:
        spec = obj.get("spec") or {}
        return cls(holder=spec.get("holderIdentity") or "",
                   renewed=parse_time(spec.get("renewTime") or spec.get("acquireTime")),
                   duration=int(spec.get("leaseDurationSeconds") or DURATION),
                   transitions=int(spec.get("leaseTransitions") or 0),
                   resource_version=(obj.get("metadata") or {}).get("resourceVersion", ""))

    def free_for(self, me: str, now: float, mine: ProcessKey,
                 running: Callable[[ProcessKey], bool]) -> str | None:
        """Why `me` (process `mine`) may take this lease (None: it may not)."""
        if not self.holder:
            return "released"
        if self.holder == me:
            return "ours"
        if self.renewed is None or self.renewed + self.duration < now:
            return "expired"
        theirs = holder_process(self.holder)
        if theirs is not None and theirs.shares_pid_namespace(mine) and not running(theirs):
            return "holder process gone"
        return None


# --- holding it ------------------------------------------------------------------------------


class LeaseLock:
    """Hold the upgrade Lease for as long as the context lasts (see the module docstring)."""

    def __init__(self, client: KubeClient, run: str, *, duration: int = DURATION,
                 renew_every: float = RENEW_EVERY, identity: str | None = None,
                 namespace: str = NAMESPACE, name: str = NAME,
                 clock: Callable[[], float] = time.time, process: ProcessKey | None = None,
                 running: Callable[[ProcessKey], bool] = process_running) -> None:
        self.client = client
        self.run = run
        self.duration = duration
        self.renew_every = renew_every
        self.process = process or this_process()
        self.identity = identity or holder_identity(run, process=self.process)
        self.namespace = namespace
        self.name = name
        self.lost = asyncio.Event()  # set once this run no longer holds the lease
        self.lost_reason: str | None = None  # why, for the halt report
        self.taken_over: str | None = None  # why we could take it (None: it was free)
        self._clock = clock
        self._running = running
        self._rv = ""
        self._transitions = 0
        self._acquired = 0.0
        self._renewed = 0.0  # renewTime of our last successful write
        self._write = asyncio.Lock()  # one write at a time: each carries the last resourceVersion
        self._confirming: asyncio.Future[str | None] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        return rq.get_lease(self.namespace, self.name).path

    @property
    def lease(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    @property
    def held(self) -> bool:
        return bool(self._rv) and not self.lost.is_set()

    def _body(self, now: float) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": {"app.kubernetes.io/managed-by": "kubehop"}}
        if self._rv:
            meta["resourceVersion"] = self._rv
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                         "acquireTime": micro_time(self._acquired or now),
                         "renewTime": micro_time(now), "leaseTransitions": self._transitions}}

    async def _put(self, create: bool, now: float) -> None:
        body = self._body(now)
        request = rq.create_lease(self.namespace, body) if create else \
            rq.replace_lease(self.namespace, self.name, body)
        raw = await self._send(request)
        self._rv = LeaseView.from_object(json.loads(raw)).resource_version
        self._renewed = now

    async def _send(self, request: rq.Request) -> bytes:
        # Through `request` (not `send`): the lock's tests wrap a client offering only that.
        return await self.client.request(request.method, request.path, body=request.body,
                                         content_type=request.content_type)

    async def _get(self) -> LeaseView | None:
        try:
            return LeaseView.from_object(
                await self.client.get_json(rq.get_lease(self.namespace, self.name)))
        except NotFound:
            return None

    def _lose(self, reason: str) -> str:
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()
        return self.lost_reason or reason

    def _gone_reason(self, current: LeaseView | None) -> str:
        if current is None or not current.holder:
            return (f"the upgrade lock ({self.lease}) was deleted or released by someone else "
                    "while this run held it")
        return f"another kubehop run took over the upgrade lock ({self.lease}): {current.holder}"

    async def acquire(self) -> None:
        """Take the lease or raise LockHeld naming its holder and how to break a stale lock.

        A live-looking lease is refused at once rather than waited for: the run's checks were
        made before the lock, and waiting would let another run change the cluster under them.
        """
        for _ in range(3):  # a race lost on a stale lease: look again
            now = self._clock()
            self._acquired, self._rv = now, ""
            try:
                await self._put(True, now)
                self.taken_over = None
                return
            except Conflict:
                pass
            current = await self._get()
            if current is None:  # released between our create and get
                continue
            why = current.free_for(self.identity, now, self.process, self._running)
            if why is None:
                raise self._held(current, now)
            self._rv = current.resource_version
            self._transitions = current.transitions + (why != "ours")
            try:
                await self._put(False, now)
                self.taken_over = None if why == "ours" else f"{why}: {current.holder}"
                return
            except (NotFound, Conflict):
                pass
        raise LockHeld(f"could not take the upgrade lock ({self.lease}): other runs keep "
                       "changing it; retry")

    def _held(self, current: LeaseView, now: float) -> LockHeld:
        age = now - (current.renewed or now)
        left = max(0.0, current.duration - age)
        return LockHeld(
            f"another kubehop run holds the upgrade lock ({self.lease}): {current.holder}, "
            f"renewed {age:.0f} s ago; wait for it to finish (`kubehop status` on its "
            f"machine), or if it died, retry after its lease expires ({left:.0f} s); if it is "
            f"certainly gone and its lease does not expire, break the lock with `{BREAK}`")

    async def renew(self) -> bool:
        """Renew once; False when this run no longer holds the lease (`lost` is set)."""
        if self.lost.is_set():
            return False
        if not self._rv:  # never taken or already released: a write would clobber the holder's
            self._lose(f"this run does not hold the upgrade lock ({self.lease})")
            return False
        async with self._write:
            current: LeaseView | None = None
            for _ in range(2):
                try:
                    await self._put(False, self._clock())
                    return True
                except (NotFound, Conflict):
                    pass
                current = None
                with contextlib.suppress(ApiError):
                    current = await self._get()
                if current is None or current.holder != self.identity:
                    break
                self._rv = current.resource_version  # our own earlier write won: renew on top
            self._lose(self._gone_reason(current))
            return False

    async def confirm(self) -> str | None:
        """None while this run holds the lease; else why not (and `lost` is set).

        Asks the apiserver (one request shared by concurrent callers). When our last renewal
        is older than the lease, the lease may have been taken over: it is renewed first, and
        if that fails too the lease counts as lost.
        """
        if self.lost.is_set():
            return self.lost_reason
        if self._confirming is None:
            self._confirming = asyncio.ensure_future(self._confirm_once())
            self._confirming.add_done_callback(self._confirmed)
        return await asyncio.shield(self._confirming)

    def _confirmed(self, _: asyncio.Future[str | None]) -> None:
        self._confirming = None

    async def _confirm_once(self) -> str | None:
        try:
            if self._clock() - self._renewed < self.duration:
                current = await self._get()
                if current is not None and current.holder == self.identity:
                    return None
                return self._lose(self._gone_reason(current))
            return None if await self.renew() else self.lost_reason
        except ApiError as e:
            age = self._clock() - self._renewed
            if age < self.duration:  # unexpired: nobody else may take it yet
                return None
            return self._lose(
                f"could not renew the upgrade lock ({self.lease}) for {age:.0f} s, longer "
                f"than its {self.duration} s lease, so another run may hold it now: {e}")

    async def _renew_forever(self) -> None:
        while not self.lost.is_set():
            await asyncio.sleep(self.renew_every)
            try:
                await self.renew()
            except ApiError:  # an apiserver restarting: try again soon
                await asyncio.sleep(min(1.0, self.renew_every))

    async def release(self) -> None:
        """Stop renewing and delete the lease unless someone else took it over."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not self._rv or self.lost.is_set():
            return
        with contextlib.suppress(NotFound, Conflict):
            await self._send(rq.delete_lease(self.namespace, self.name, self._rv))
        self._rv = ""

    async def __aenter__(self) -> LeaseLock:
        await self.acquire()
        self._task = asyncio.create_task(self._renew_forever(), name="renew upgrade lease")
        return self

    async def __aexit__(self, *exc: object) -> None:
        # An unreachable apiserver must not hide the run's own outcome: the lease expires.
        with contextlib.suppress(ApiError):
            await self.release()
