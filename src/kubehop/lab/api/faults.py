"""API faults: lab apiserver endpoints that misbehave on purpose, as real ones do.

    faults = ApiFaults(clock, resource_version=lambda: store.resource_version)
    faults.register("cp-1", pause=server.pause, resume=server.resume)   # every endpoint
    fid = faults.add(ApiFault("api-errors", "cp-1", {"code": 429, "rate": 0.5}))
    faults.status(), faults.remove(fid), faults.clear()     # also GET/POST/DELETE /lab/v1/faults

Kinds and their options: `scenarios.schema.API_FAULT_KINDS`; lab seconds throughout, `after`
counted from when the fault is added (the lab's start for a scenario's). A fault names an
endpoint: a control-plane node's apiserver, the `loadbalancer`, or `all` control-plane
apiservers. The load balancer sends each request to the next control-plane apiserver that
listens (round-robin, as an HTTP-mode balancer) and that apiserver's faults apply to it besides
its own; with none listening it closes the connection, as HAProxy does without a live server.

Down: an endpoint does not listen while its kube-apiserver static pod restarts (the kubelet
says so through `set_pod_running`) or while an `api-refuse` or `api-restart` lasts. New
connections are refused, open ones reset, and requests in flight through it, the load
balancer's included, lose their connection. A kube-apiserver that starts again builds its watch
cache from a fresh list at the current resourceVersion, so a watch from an older one is answered
with an ERROR event 410 Expired "too old resource version: RV (LISTED)" (kubernetes/kubernetes
staging/src/k8s.io/apiserver/pkg/storage/cacher/watch_cache.go, getAllEventsSinceLocked: after
the first list `oldest = listResourceVersion + 1`, and `resourceVersion < oldest-1` is expired).
`api-gone` moves that window to now without a restart (etcd compacted): lists continued with a
token from before, or asking `resourceVersionMatch=Exact` for an older version, then answer 410
too (staging/src/k8s.io/apiserver/pkg/storage/etcd3/errors.go).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from kubehop.lab.api.paging import decode_continue
from kubehop.lab.api.status import StatusError
from kubehop.lab.api.target import ResourceTarget
from kubehop.lab.clock import LabClock
from kubehop.lab.scenarios import schema
from kubehop.lab.scenarios.schema import ApiFault
from kubehop.lab.scenarios.validate import api_fault_option, api_fault_target

__all__ = ["ROUTED", "ApiFault", "ApiFaults"]

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode
LOAD_BALANCER = "loadbalancer"
POD = "static-pod"  # the reason an endpoint is down while its kube-apiserver pod restarts
MAX_RECORDED_HITS = 100
# The control-plane apiserver the load balancer chose for the request being served (what the
# load balancer's /version answers).
ROUTED: contextvars.ContextVar[str | None] = contextvars.ContextVar("routed", default=None)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Hook = Callable[[], Awaitable[None]]

# The Status a real server sends for each error code: 429 is the max-in-flight and priority and
# fairness filters' plain-text answer (staging/src/k8s.io/apiserver/pkg/server/filters/
# maxinflight.go, tooManyRequests); 504 the timeout filter's (filters/timeout.go); 503 what an
# unavailable aggregated API or a terminating apiserver answers; 502 what a balancer says when
# the backend broke the connection.
_ERRORS: Mapping[int, tuple[str, str]] = {
    500: ("InternalError", "Internal error occurred: injected fault"),
    502: ("", "Bad Gateway: the apiserver closed the connection"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "Timeout: request did not complete within the allotted timeout"),
}


@dataclass(eq=False)
class _Active:
    """One added fault: its endpoints, state (pending, active, done) and the requests it hit."""

    id: int
    fault: ApiFault
    endpoints: tuple[str, ...]
    state: str = "pending"
    hits: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def option(self, key: str) -> Any:
        return self.fault.options.get(key, schema.API_FAULT_KINDS[self.fault.kind][key])

    def matches(self, method: str, target: ResourceTarget | None) -> bool:
        want = self.option("method")
        if want and want.upper() != method:
            return False
        resource, name = self.option("resource"), self.option("name")
        if not (resource or name):
            return True
        if target is None:
            return False
        if resource and resource not in (target.rt.id, target.rt.plural):
            return False
        return not name or name == target.name

    def body(self) -> str:
        return str(self.option("body")) if "body" in schema.API_FAULT_KINDS[self.fault.kind] \
            else ""

    def to_dict(self) -> dict[str, Any]:
        f = self.fault
        return {"id": self.id, "kind": f.kind, "apiserver": f.apiserver,
                **schema.API_FAULT_KINDS[f.kind], **f.options, "state": self.state,
                "hits": self.hits, "requests": list(self.requests)}


@dataclass(eq=False)
class _Endpoint:
    """What the faults model knows of one endpoint."""

    name: str
    pause: Hook | None
    resume: Hook | None
    balancer: bool = False
    down: set[str] = field(default_factory=set)  # why it does not listen (POD, fault ids)
    listening: bool = True
    window: int = 0  # watches and continued lists from an older resourceVersion → 410
    rules: list[_Active] = field(default_factory=list)  # active api-errors and api-slow
    # Requests being served through it: task → (its connection, whether it is a watch).
    inflight: dict[asyncio.Task[Any], tuple[asyncio.BaseTransport | None, bool]] = \
        field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ApiFaults:
    """The API faults of one lab's endpoints, and their effect on each request."""

    def __init__(self, clock: LabClock | None = None, *,
                 resource_version: Callable[[], int] = lambda: 0, seed: int = 0) -> None:
        self.clock = clock or LabClock(1.0)
        self.resource_version = resource_version
        self.rng = random.Random(seed)
        self._endpoints: dict[str, _Endpoint] = {}
        self._faults: dict[int, _Active] = {}
        self._ids = itertools.count(1)
        self._turn = itertools.count()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- endpoints ---------------------------------------------------------------------------

    def register(self, name: str, *, pause: Hook | None = None, resume: Hook | None = None,
                 balancer: bool = False) -> None:
        """Add an endpoint: `pause` stops it listening and resets its connections, `resume`
        listens again; `balancer` for the load balancer in front of the others."""
        self._endpoints[name] = _Endpoint(name, pause, resume, balancer)

    @property
    def backends(self) -> list[str]:
        """The control-plane apiserver endpoints, in registration order."""
        return [e.name for e in self._endpoints.values() if not e.balancer]

    def set_pod_running(self, node: str, running: bool) -> None:
        """The kubelet started or stopped `node`'s kube-apiserver static pod."""
        if node in self._endpoints:
            self._set_down(self._endpoints[node], POD, not running, restarted=True)

    def _set_down(self, ep: _Endpoint, reason: str, down: bool, *, restarted: bool) -> None:
        was = bool(ep.down)
        if down:
            ep.down.add(reason)
        else:
            ep.down.discard(reason)
        if bool(ep.down) == was:
            return
        if ep.down:
            self._drop_inflight(ep, reset=True)
        elif restarted and not ep.balancer:  # a balancer restarts without a watch cache
            ep.window = max(ep.window, self.resource_version())
        self._spawn(self._reconcile(ep))

    async def _reconcile(self, ep: _Endpoint) -> None:
        """Make the endpoint's socket follow `down` (one change at a time)."""
        async with ep.lock:
            if ep.down and ep.listening:
                ep.listening = False
                if ep.pause is not None:
                    await ep.pause()
            elif not ep.down and not ep.listening:
                if ep.resume is not None:
                    await ep.resume()
                ep.listening = True

    def _drop_inflight(self, ep: _Endpoint, *, reset: bool) -> None:
        """End the watches served through `ep`; with `reset`, break every request's
        connection too (the process behind it died)."""
        for task, (transport, watch) in list(ep.inflight.items()):
            if reset and transport is not None:
                transport.abort()
            if watch:
                task.cancel()

    # --- adding and removing faults -----------------------------------------------------------

    def add(self, fault: ApiFault) -> int:
        """Add `fault` (it acts `after` lab seconds from now); returns its id."""
        if fault.apiserver == "all":
            names = tuple(self.backends)
        elif fault.apiserver in self._endpoints:
            names = (fault.apiserver,)
        else:
            raise ValueError(f"no apiserver endpoint {fault.apiserver!r}")
        active = _Active(next(self._ids), fault, names)
        self._faults[active.id] = active
        active.task = self._spawn(self._run(active))
        return active.id

    def parse(self, doc: Any) -> ApiFault:
        """An ApiFault from a request body (ValueError naming the problem)."""
        if not isinstance(doc, dict):
            raise ValueError("expected a JSON object with kind, apiserver and options")
        kind = doc.get("kind")
        if kind not in schema.API_FAULT_KINDS:
            raise ValueError(f"kind: expected one of {', '.join(schema.API_FAULT_KINDS)}, "
                             f"got {kind!r}")
        allowed = schema.API_FAULT_KINDS[kind]
        unknown = sorted(set(doc) - {"kind", "apiserver", *allowed})
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field for {kind} "
                             f"(known: apiserver, {', '.join(allowed)})")
        try:
            target = api_fault_target(doc.get("apiserver", "all"), self.backends,
                                      LOAD_BALANCER in self._endpoints)
        except ValueError as e:
            raise ValueError(f"apiserver: {e}") from None
        options: dict[str, float | int | str] = {}
        for key, default in allowed.items():
            try:
                options[key] = api_fault_option(kind, key, doc.get(key, default))
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
        return ApiFault(kind, target, options)

    def remove(self, fault_id: int) -> bool:
        """Stop fault `fault_id` now (whatever it still had to do); False if unknown."""
        active = self._faults.get(fault_id)
        if active is None:
            return False
        if active.task is not None:
            active.task.cancel()
        self._end(active)
        return True

    def clear(self) -> None:
        """Stop every fault."""
        for fault_id in list(self._faults):
            self.remove(fault_id)

    def get(self, fault_id: int) -> dict[str, Any] | None:
        """Fault `fault_id` as `status()` shows it, or None."""
        active = self._faults.get(fault_id)
        return None if active is None else active.to_dict()

    def status(self) -> list[dict[str, Any]]:
        """Every fault added, in order, with its state and the requests it hit."""
        return [a.to_dict() for a in self._faults.values()]

    async def stop(self) -> None:
        """Cancel pending work (the lab stops)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, active: _Active) -> None:
        """Wait `after`, act, and for lasting kinds wait `seconds` (0: until removed)."""
        await self.clock.sleep(active.option("after"))
        kind = active.fault.kind
        endpoints = [self._endpoints[n] for n in active.endpoints]
        active.state = "active"
        if kind == "api-close-watches":
            for ep in endpoints:
                self._drop_inflight(ep, reset=False)
        elif kind == "api-gone":
            rv = self.resource_version()
            for ep in endpoints:
                ep.window = max(ep.window, rv)
        elif kind in ("api-refuse", "api-restart"):
            for ep in endpoints:
                self._set_down(ep, f"fault {active.id}", True, restarted=False)
        else:
            for ep in endpoints:
                ep.rules.append(active)
        if kind in ("api-close-watches", "api-gone"):
            active.state = "done"
            return
        seconds = active.option("seconds")
        if seconds > 0:
            await self.clock.sleep(seconds)
            self._end(active)

    def _end(self, active: _Active) -> None:
        if active.state == "active":
            for name in active.endpoints:
                ep = self._endpoints[name]
                if active in ep.rules:
                    ep.rules.remove(active)
                self._set_down(ep, f"fault {active.id}", False,
                               restarted=active.fault.kind == "api-restart")
        active.state = "done"

    # --- serving -----------------------------------------------------------------------------

    def _route(self) -> str | None:
        """The next listening control-plane apiserver, round-robin (None: none listens)."""
        names = self.backends
        start = next(self._turn)
        for i in range(len(names)):
            name = names[(start + i) % len(names)]
            if not self._endpoints[name].down:
                return name
        return None

    async def serve(self, name: str, request: web.Request, target: ResourceTarget | None,
                    handler: Handler) -> web.StreamResponse:
        """Serve `request` on endpoint `name` through the faults that act on it."""
        ep = self._endpoints[name]
        chain = [ep]
        if ep.balancer:
            backend = self._route()
            if backend is None:
                return _drop(request)
            chain.append(self._endpoints[backend])
            ROUTED.set(backend)
        if any(e.down for e in chain):  # accepted just before the socket closed
            return _drop(request)
        method = request.method.upper()
        for e in chain:
            for rule in list(e.rules):
                if rule.matches(method, target) and await _body_has(request, rule) and \
                        self._hit(rule, e, request):
                    if rule.fault.kind == "api-slow":
                        await self.clock.sleep(rule.option("delay"))
                    else:
                        return _error(int(rule.option("code")))
        watch = target is not None and target.name is None and method == "GET" and (
            target.legacy_watch or request.query.get("watch") in ("1", "true", "True"))
        window = max(e.window for e in chain)
        if window and target is not None and method == "GET" and target.name is None:
            expired = await _expired(request, window, watch)
            if expired is not None:
                return expired
        task = asyncio.current_task()
        if task is None:
            return await handler(request)
        for e in chain:
            e.inflight[task] = (request.transport, watch)
        try:
            return await handler(request)
        finally:
            for e in chain:
                e.inflight.pop(task, None)

    def _hit(self, rule: _Active, ep: _Endpoint, request: web.Request) -> bool:
        """Whether `rule` acts on this request (its rate, its count); records the hit."""
        count = rule.option("count")
        if rule.state != "active" or self.rng.random() >= rule.option("rate"):
            return False
        rule.hits += 1
        if len(rule.requests) < MAX_RECORDED_HITS:
            rule.requests.append({"t": round(self.clock.now(), 3), "apiserver": ep.name,
                                  "method": request.method, "path": request.path})
        if count and rule.hits >= count:
            self._end(rule)
        return True


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer (aiohttp drops the response it cannot write)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=503)


def _error(code: int) -> web.Response:
    if code == 429:
        return web.Response(status=429, text="Too many requests, please try again later.\n",
                            headers={"Retry-After": "1", "X-Content-Type-Options": "nosniff"})
    reason, message = _ERRORS[code]
    body = StatusError(code, reason, message).status()
    return web.Response(body=_encode(body), status=code, content_type="application/json")


async def _expired(request: web.Request, window: int, watch: bool
                   ) -> web.StreamResponse | None:
    """The 410 answer to a watch or list from before the window, or None."""
    q = request.query
    rv = _int(q.get("resourceVersion"))
    if watch:
        if rv is None or rv == 0 or rv >= window:
            return None
        return await _watch_expired(request, f"too old resource version: {rv} ({window})")
    token = q.get("continue")
    if token:
        with contextlib.suppress(ValueError, StatusError):
            if decode_continue(token)[0] < window:
                return _gone("The provided continue parameter is too old to display a "
                             "consistent list result. You can start a new list without the "
                             "continue parameter.")
        return None
    if q.get("resourceVersionMatch") == "Exact" and rv is not None and 0 < rv < window:
        return _gone("The resourceVersion for the provided list is too old.")
    return None


def _gone(message: str) -> web.Response:
    body = StatusError(410, "Expired", message).status()
    return web.Response(body=_encode(body), status=410, content_type="application/json")


async def _watch_expired(request: web.Request, message: str) -> web.StreamResponse:
    """A watch the cache cannot serve: 200 with one ERROR event, as the cacher answers."""
    response = web.StreamResponse(headers={"Content-Type": "application/json",
                                           "Cache-Control": "no-cache, private"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    event = {"type": "ERROR", "object": StatusError(410, "Expired", message).status()}
    await response.write(_encode(event) + b"\n")
    await response.write_eof()
    return response


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


# --- the control endpoint: /lab/v1/faults -----------------------------------------------------

async def control(faults: ApiFaults | None, request: web.Request) -> web.Response:
    """GET lists the faults, POST adds one (JSON: kind, apiserver, options), DELETE removes one
    (`/lab/v1/faults/ID`) or all of them."""
    if faults is None:
        raise StatusError(404, "NotFound", "this server has no API faults")
    fault_id = request.match_info.get("id")
    if request.method == "GET" and fault_id is None:
        return _json({"faults": faults.status()})
    if request.method == "POST" and fault_id is None:
        try:
            fault = faults.parse(json.loads(await request.read() or b"null"))
        except ValueError as e:
            raise StatusError(400, "BadRequest", f"fault: {e}") from None
        return _json(faults.get(faults.add(fault)), 201)
    if request.method == "DELETE":
        if fault_id is None:
            faults.clear()
            return _json({"faults": faults.status()})
        if fault_id.isdigit() and faults.remove(int(fault_id)):
            return _json(faults.get(int(fault_id)))
        raise StatusError(404, "NotFound", f"no fault {fault_id}")
    raise StatusError(405, "MethodNotAllowed", "GET, POST or DELETE /lab/v1/faults[/ID]")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


async def _body_has(request: web.Request, rule: _Active) -> bool:
    """Whether the request's body contains the rule's `body` text (always, without one):
    aiohttp keeps the body it read, so the handler still gets it."""
    text = rule.body()
    return not text or text.encode() in await request.read()
