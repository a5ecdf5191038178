"""The lab's Kubernetes API server: an aiohttp application over a `Store`.

Serves `/version`, health endpoints, legacy and aggregated discovery, and the resources of
`discovery.RESOURCES` (get, list with paging and selectors, watch, create, update, patch, delete,
pods/eviction), answering JSON (clients asking protobuf first get JSON, as a real server would
for types without protobuf), server-side Tables and metav1.Status errors. Any bearer token is
accepted and never logged. Pod removal is delegated to `LabApi.on_pod_delete` when set (the
controllers own graceful termination); without it pods are removed at once. With `faults` set
(`kubehop.lab.api.faults.ApiFaults`) every request but `/lab/` ones goes through the
endpoint's API faults, which `/lab/v1/faults` lists, adds and removes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from kubehop.lab.api import discovery, verbs
from kubehop.lab.api import evict as evict_endpoint
from kubehop.lab.api import faults as api_faults
from kubehop.lab.api.patch import PatchError
from kubehop.lab.api.status import StatusError
from kubehop.lab.api.store import Store
from kubehop.lab.api.target import EvictHook, PodDeleteHook, parse_path

log = logging.getLogger(__name__)
Obj = dict[str, Any]
_encode = msgspec.json.Encoder().encode



def version_info(git_version: str) -> Obj:
    """The `/version` document for a server running `git_version` (`v1.28.9`)."""
    core = git_version.lstrip("v").split("-")[0].split("+")[0]
    major, minor = [*core.split("."), "0", "0"][:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": hashlib.sha1(git_version.encode()).hexdigest(),  # a stable fake commit
        "gitTreeState": "clean",
        "buildDate": "2024-04-16T15:03:34Z",
        "goVersion": "go1.22.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


DEPRECATED_APIS_HELP = (
    "# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been "
    "requested, broken out by API group, version, resource, subresource, and removed_release.\n"
    "# TYPE apiserver_requested_deprecated_apis gauge\n")


def metrics_text(deprecated: list[dict[str, str]]) -> str:
    """The `/metrics` body: the `apiserver_requested_deprecated_apis` gauge, labels sorted."""
    lines = [DEPRECATED_APIS_HELP]
    for series in deprecated:
        labels = {k: series.get(k, "") for k in
                  ("group", "removed_release", "resource", "subresource", "version")}
        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"apiserver_requested_deprecated_apis{{{text}}} 1\n")
    return "".join(lines)


def json_response(body: Any, status: int = 200, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> web.Response:
    """A response whose body is `body` encoded as JSON (msgspec: fast on 150k-item lists)."""
    all_headers = dict(headers or {})
    all_headers["Content-Type"] = content_type
    return web.Response(body=_encode(body), status=status, headers=all_headers)


def status_response(err: StatusError) -> web.Response:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
    return json_response(err.status(), err.code, headers=headers)


class LabApi:
    """The API of one lab cluster (several servers may share a store, e.g. HA apiservers)."""

    def __init__(self, store: Store, *, version: str = "v1.28.9",
                 server_address: str = "127.0.0.1:6443") -> None:
        self.store = store
        self.version = version  # settable: what /version answers (per apiserver endpoint)
        self.server_address = server_address
        self.on_pod_delete: PodDeleteHook | None = None
        self.on_evict: EvictHook | None = None
        # Per-endpoint behaviour of a control-plane node's apiserver (HA labs): what /version
        # answers follows that node's static pod; `faults` (shared by a lab's endpoints, this
        # one named `fault_name` there) refuses connections while it restarts, among others.
        self.version_source: Callable[[], str | None] | None = None
        self.faults: api_faults.ApiFaults | None = None
        self.fault_name = ""
        self.history: Any = None  # a kubehop.lab.history.History served at /lab/v1/history
        self.time_scale: float | None = None  # real seconds per lab second, at /lab/v1/clock
        # Series of `apiserver_requested_deprecated_apis` served at /metrics: dicts with group,
        # version, resource, subresource (optional) and removed_release, as if some client had
        # asked this apiserver for those deprecated APIs. Per endpoint, like the real gauge.
        self.deprecated_apis: list[dict[str, str]] = []

    def now(self) -> datetime:
        return self.store.clock()

    def app(self) -> web.Application:
        """A fresh aiohttp application serving this API."""
        app = web.Application(middlewares=[self._errors], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/lab/v1/history", self._history)
        app.router.add_get("/lab/v1/clock", self._clock)
        app.router.add_route("*", "/lab/v1/faults", self._faults)
        app.router.add_route("*", "/lab/v1/faults/{id}", self._faults)
        app.router.add_get("/version", self._version)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/version/", self._version)
        for path in ("/healthz", "/readyz", "/livez"):
            app.router.add_get(path, self._ok)
            app.router.add_get(path + "/{check:.*}", self._ok)
        app.router.add_get("/api", self._api)
        app.router.add_get("/api/", self._api)
        app.router.add_get("/apis", self._apis)
        app.router.add_get("/apis/", self._apis)
        app.router.add_get("/api/v1", self._resource_list)
        app.router.add_get("/apis/{group}", self._group)
        app.router.add_get("/apis/{group}/{version}", self._resource_list)
        app.router.add_route("*", "/{tail:.*}", self._resource)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _shutdown(self, _app: web.Application) -> None:
        self.store.close_watches()

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.faults is not None and not request.path.startswith("/lab/"):
            return await self.faults.serve(self.fault_name, request, parse_path(request.path),
                                           lambda r: self._handle(r, handler))
        return await self._handle(request, handler)

    async def _handle(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except StatusError as e:
            return status_response(e)
        except PatchError as e:
            reason = {400: "BadRequest", 415: "UnsupportedMediaType"}.get(e.code, "Invalid")
            return status_response(StatusError(e.code, reason, str(e)))
        except web.HTTPException:
            raise
        except ConnectionResetError:  # reset under the request (an API fault): nobody to answer
            return web.Response(status=503)
        except Exception as e:
            log.exception("lab apiserver: %s %s failed", request.method, request.path)
            return status_response(StatusError(500, "InternalError",
                                               f"Internal error occurred: {e}"))

    async def _version(self, _request: web.Request) -> web.Response:
        version = self.version_source() if self.version_source else None
        return json_response(version_info(version or self.version))

    async def _metrics(self, _request: web.Request) -> web.Response:
        """GET /metrics: Prometheus text exposition (only the deprecated-API gauge)."""
        return web.Response(text=metrics_text(self.deprecated_apis),
                            content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def _history(self, request: web.Request) -> web.Response:
        """GET /lab/v1/history[?since=SEQ]: every state change with its lab time (DESIGN)."""
        if self.history is None:
            raise _not_served()
        try:
            since = int(request.query.get("since", "0"))
        except ValueError as e:
            raise StatusError(400, "BadRequest", "since must be an integer") from e
        return json_response({"events": list(self.history.since(since))})

    async def _clock(self, _request: web.Request) -> web.Response:
        """GET /lab/v1/clock: the lab's wall time now (`now`, Unix seconds) and `timeScale`
        (real seconds per lab second), so a client can keep lab time (maintenance windows)."""
        if self.time_scale is None:
            raise _not_served()
        return json_response({"now": self.now().timestamp(), "timeScale": self.time_scale})

    async def _faults(self, request: web.Request) -> web.Response:
        """/lab/v1/faults[/ID]: list (GET), add (POST) and remove (DELETE) API faults."""
        return await api_faults.control(self.faults, request)

    async def _ok(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    async def _api(self, request: web.Request) -> web.Response:
        wanted = discovery.wanted_discovery(request.headers.get("Accept", ""))
        if wanted:
            return json_response(discovery.aggregated(True, wanted),
                                 content_type=discovery.aggregated_content_type(wanted))
        return json_response(discovery.api_versions(self.server_address))

    async def _apis(self, request: web.Request) -> web.Response:
        wanted = discovery.wanted_discovery(request.headers.get("Accept", ""))
        if wanted:
            return json_response(discovery.aggregated(False, wanted),
                                 content_type=discovery.aggregated_content_type(wanted))
        return json_response(discovery.api_group_list())

    async def _group(self, request: web.Request) -> web.Response:
        doc = discovery.api_group(request.match_info["group"])
        if doc is None:
            raise _not_served()
        return json_response(doc)

    async def _resource_list(self, request: web.Request) -> web.Response:
        group = request.match_info.get("group", "")
        version = request.match_info.get("version", "v1")
        doc = discovery.api_resource_list(group, version)
        if doc is None:
            raise _not_served()
        return json_response(doc)

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        target = parse_path(request.path)
        if target is None:
            raise _not_served()
        method = request.method
        t = target
        if method == "GET":
            if t.name is None:
                if t.legacy_watch or request.query.get("watch") in ("1", "true", "True"):
                    return await verbs.watch(self, request, t)
                return await verbs.list_(self, request, t)
            return await verbs.get(self, request, t)
        if method == "POST" and t.name is None:
            return await verbs.create(self, request, t)
        if method == "POST" and t.subresource == "eviction":
            if self.on_evict is not None:
                body = await verbs.read_body(request)
                code, answer, headers = self.on_evict(t.namespace or "", t.name or "", body,
                                                      request.query.getall("dryRun", []))
                return verbs.json_reply(answer, code, headers or None)
            return await evict_endpoint.evict(self, request, t)
        if method == "PUT" and t.name is not None:
            return await verbs.update(self, request, t)
        if method == "PATCH" and t.name is not None:
            return await verbs.patch(self, request, t)
        if method == "DELETE" and t.name is not None and t.subresource is None:
            return await verbs.delete(self, request, t)
        if method == "DELETE" and t.name is None:
            return await verbs.delete_collection(self, request, t)
        raise StatusError(405, "MethodNotAllowed",
                          "the server does not allow this method on the requested resource")


def _not_served() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource",
                       {"causes": [{"reason": "UnexpectedServerResponse",
                                    "message": "404 page not found"}]})
