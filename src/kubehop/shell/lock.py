"""The upgrade lock: a coordination.k8s.io/v1 Lease `kube-system/kubehop-upgrade`.

    async with LeaseLock(client, run_id) as lock:     # LockHeld names the holder
        ... run steps; stop starting new ones once `lock.lost` is set ...

One kubehop run at a time per cluster, wherever it runs from. The holder writes
`holderIdentity = user@host/pid run-id` and renews `renewTime` every `renew_every` seconds
(default 10) for `leaseDurationSeconds` (default 30). Another run is refused, naming the holder,
while the lease is fresh; a lease whose holder stopped renewing is taken over once
`renewTime + leaseDurationSeconds` has passed — at once when its holder is a process of this
host that no longer exists (a killed kubehop: resume without waiting). Every write carries the
resourceVersion it read, so two runs racing for a stale lease cannot both win (409 Conflict).
Released at the end: deleted with a resourceVersion precondition (a lease someone else took
over is left alone).

Times are the holders' clocks (as client-go's renewTime); hosts whose clocks disagree by more
than the lease duration may take over a live lease, so keep clocks in sync (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubehop.model.errors import OperationError
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.errors import ApiError

NAMESPACE = "kube-system"
NAME = "kubehop-upgrade"
DURATION = 30  # leaseDurationSeconds
RENEW_EVERY = 10.0  # seconds between renewals
_HOLDER_RE = re.compile(r"^(?P<user>[^@\s]*)@(?P<host>[^/\s]+)/(?P<pid>\d+)(?:\s+(?P<run>\S+))?$")


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


def holder_identity(run: str, *, user: str | None = None, host: str | None = None,
                    pid: int | None = None) -> str:
    """`user@host/pid run-id`: who holds the lock, readable in `kubectl get lease`."""
    try:
        user = user or getpass.getuser()
    except (KeyError, OSError):
        user = user or "unknown"
    return f"{user}@{host or socket.gethostname()}/{pid or os.getpid()} {run}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists (another user's)
        return False
    return False


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

    def free_for(self, me: str, now: float, host: str, gone: Callable[[int], bool]) -> str | None:
        """Why `me` may take this lease (None: it may not)."""
        if not self.holder:
            return "released"
        if self.holder == me:
            return "ours"
        if self.renewed is None or self.renewed + self.duration < now:
            return "expired"
        m = _HOLDER_RE.match(self.holder)
        if m and m.group("host") == host and int(m.group("pid")) != os.getpid() \
                and gone(int(m.group("pid"))):
            return "holder process gone"
        return None


class LeaseLock:
    """Hold the upgrade Lease for as long as the context lasts (see the module docstring)."""

    def __init__(self, client: KubeClient, run: str, *, duration: int = DURATION,
                 renew_every: float = RENEW_EVERY, identity: str | None = None,
                 namespace: str = NAMESPACE, name: str = NAME,
                 clock: Callable[[], float] = time.time,
                 process_gone: Callable[[int], bool] = _process_gone) -> None:
        self.client = client
        self.run = run
        self.duration = duration
        self.renew_every = renew_every
        self.identity = identity or holder_identity(run)
        self.namespace = namespace
        self.name = name
        self.lost = asyncio.Event()  # set when another holder took the lease over
        self.taken_over: str | None = None  # why we could take it (None: it was free)
        self._clock = clock
        self._gone = process_gone
        self._host = socket.gethostname()
        self._rv = ""
        self._transitions = 0
        self._acquired = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        return (f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/"
                f"{self.name}")

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

    def _remember(self, raw: bytes) -> None:
        import json

        self._rv = LeaseView.from_object(json.loads(raw)).resource_version

    async def acquire(self) -> None:
        """Take the lease or raise LockHeld naming its holder."""
        collection = self.path.rsplit("/", 1)[0]
        for _ in range(3):  # a race lost on a stale lease: look again
            now = self._clock()
            self._acquired, self._rv = now, ""
            try:
                self._remember(await self.client.request("POST", collection,
                                                         body=self._body(now)))
                self.taken_over = None
                return
            except ApiError as e:
                if e.status != 409:
                    raise
            try:
                current = LeaseView.from_object(await self.client.get_json(self.path))
            except ApiError as e:
                if e.status == 404:  # released between our create and get
                    continue
                raise
            why = current.free_for(self.identity, now, self._host, self._gone)
            if why is None:
                age = now - (current.renewed or now)
                raise LockHeld(
                    f"another kubehop run holds the upgrade lock (Lease {self.namespace}/"
                    f"{self.name}): {current.holder}, renewed {age:.0f} s ago; wait for it to "
                    f"finish (`kubehop status` on its machine), or if it died, retry after its "
                    f"lease expires ({max(0.0, current.duration - age):.0f} s)")
            self._rv = current.resource_version
            self._transitions = current.transitions + (why != "ours")
            try:
                self._remember(await self.client.request("PUT", self.path,
                                                         body=self._body(now)))
                self.taken_over = None if why == "ours" else f"{why}: {current.holder}"
                return
            except ApiError as e:
                if e.status not in (404, 409):
                    raise
        raise LockHeld(f"could not take the upgrade lock (Lease {self.namespace}/{self.name}): "
                       "other runs keep changing it; retry")

    async def renew(self) -> bool:
        """Renew once; False when someone else holds the lease now (`lost` is set)."""
        for _ in range(2):
            try:
                self._remember(await self.client.request("PUT", self.path,
                                                         body=self._body(self._clock())))
                return True
            except ApiError as e:
                if e.status not in (404, 409):
                    raise
            current = None
            with contextlib.suppress(ApiError):
                current = LeaseView.from_object(await self.client.get_json(self.path))
            if current is None or current.holder != self.identity:
                break
            self._rv = current.resource_version  # our own earlier write won: renew on top
        self.lost.set()
        return False

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
        body = {"apiVersion": "v1", "kind": "DeleteOptions",
                "preconditions": {"resourceVersion": self._rv}}
        try:
            await self.client.request("DELETE", self.path, body=body)
        except ApiError as e:
            if e.status not in (404, 409):
                raise
        self._rv = ""

    async def __aenter__(self) -> LeaseLock:
        await self.acquire()
        self._task = asyncio.create_task(self._renew_forever(), name="renew upgrade lease")
        return self

    async def __aexit__(self, *exc: object) -> None:
        # An unreachable apiserver must not hide the run's own outcome: the lease expires.
        with contextlib.suppress(ApiError):
            await self.release()
