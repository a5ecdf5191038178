"""The resource verbs of the lab API server: get, list, watch, create, update, patch, delete
and deletecollection (pods/eviction lives in `kubehop.lab.api.evict`). Each takes the server, the
request and its parsed `ResourceTarget`.

Upstream rules kept: PUT/PATCH on a resource with a status subresource leave status alone, and
on `/status` change only status; `dryRun=All` validates without writing; DELETE of a pod answers
the pod, of anything else a Status; DELETE bodies that do not parse (kubectl 1.32+ may send
protobuf) are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from datetime import timedelta
from typing import Any

import msgspec
from aiohttp import web

from kubehop.lab.api import patch as patches
from kubehop.lab.api import tables
from kubehop.lab.api.status import BadRequest, Invalid, NotFoundStatus, StatusError, success
from kubehop.lab.api.store import Obj, format_time
from kubehop.lab.api.target import ApiContext, ResourceTarget

_encode = msgspec.json.Encoder().encode
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json",
                        headers=headers)


def _representation(accept: str) -> tuple[str, str]:
    """("table" | "pom" | "json", meta.k8s.io version) from the first usable Accept entry."""
    for part in accept.split(","):
        fields = [p.strip() for p in part.split(";")]
        params = dict(p.split("=", 1) for p in fields[1:] if "=" in p)
        if params.get("g") == "meta.k8s.io" and params.get("as") == "Table":
            return "table", params.get("v", "v1")
        if params.get("g") == "meta.k8s.io" and params.get("as", "").startswith(
                "PartialObjectMetadata"):
            return "pom", params.get("v", "v1")
        if fields[0] in ("application/json", "*/*", "application/*", "application/yaml"):
            return "json", "v1"
    return "json", "v1"


def _int(request: web.Request, key: str) -> int | None:
    value = request.query.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as e:
        raise BadRequest(f"invalid {key} {value!r}: must be an integer") from e


def is_dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])


async def read_body(request: web.Request) -> Obj:
    raw = await request.read()
    if "protobuf" in request.headers.get("Content-Type", ""):
        raise StatusError(415, "UnsupportedMediaType",
                          "the body of the request was in an unknown format - accepted media "
                          "types include: application/json, application/yaml")
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise BadRequest(f"the object provided is unrecognized: {e}") from e
    if not isinstance(body, dict):
        raise BadRequest("the object provided is unrecognized (must be a JSON object)")
    return body


def _ns(api: ApiContext, namespace: str | None) -> str:
    ns = namespace or ""
    if ns and api.store.peek("namespaces", "", ns) is None:
        raise NotFoundStatus("namespaces", ns)
    return ns


# --- reads ---------------------------------------------------------------------------------

async def get(api: ApiContext, request: web.Request, t: ResourceTarget) -> web.Response:
    obj = api.store.peek(t.rt.id, t.namespace or "", t.name or "")
    if obj is None:
        raise NotFoundStatus(t.rt.id, t.name or "")
    kind, version = _representation(request.headers.get("Accept", ""))
    if kind == "table":
        return json_reply(tables.table(
            t.rt.id, [obj], api.now(), resource_version=obj["metadata"]["resourceVersion"],
            include_object=request.query.get("includeObject", "Metadata"),
            table_version=version))
    if kind == "pom":
        return json_reply(tables.partial_metadata(obj, version))
    return json_reply(obj)


async def list_(api: ApiContext, request: web.Request, t: ResourceTarget) -> web.Response:
    q = request.query
    result = api.store.list(t.rt.id, t.namespace, q.get("labelSelector"), q.get("fieldSelector"),
                            limit=_int(request, "limit"), continue_token=q.get("continue"))
    kind, version = _representation(request.headers.get("Accept", ""))
    if kind == "table":
        return json_reply(tables.table(
            t.rt.id, result.items, api.now(), resource_version=result.resource_version,
            continue_token=result.continue_token, remaining=result.remaining,
            include_object=q.get("includeObject", "Metadata"), table_version=version))
    meta: Obj = {"resourceVersion": result.resource_version}
    if result.continue_token:
        meta["continue"] = result.continue_token
    if result.remaining is not None:
        meta["remainingItemCount"] = result.remaining
    if kind == "pom":
        return json_reply({
            "kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": meta,
            "items": [tables.partial_metadata(o, version) for o in result.items],
        })
    return json_reply({"kind": f"{t.rt.kind}List", "apiVersion": t.rt.api_version,
                       "metadata": meta, "items": result.items})


async def watch(api: ApiContext, request: web.Request,
                t: ResourceTarget) -> web.StreamResponse:
    q = request.query
    timeout = _int(request, "timeoutSeconds")
    kind, version = _representation(request.headers.get("Accept", ""))
    response = web.StreamResponse(headers={"Content-Type": "application/json",
                                           "Cache-Control": "no-cache, private"})
    response.enable_chunked_encoding()
    try:
        w = api.store.watch(t.rt.id, t.namespace, resource_version=q.get("resourceVersion"),
                            label_selector=q.get("labelSelector"),
                            field_selector=q.get("fieldSelector"))
    except StatusError as e:
        if e.code != 410:
            raise
        await response.prepare(request)  # upstream reports expiry as an ERROR event
        await response.write(_encode({"type": "ERROR", "object": e.status()}) + b"\n")
        await response.write_eof()
        return response
    await response.prepare(request)
    first = True

    def frame(etype: str, obj: Obj) -> bytes:
        nonlocal first
        if kind == "table":
            obj = tables.table(t.rt.id, [obj], api.now(), table_version=version,
                               resource_version=obj["metadata"]["resourceVersion"],
                               include_object=q.get("includeObject", "Metadata"),
                               with_columns=first)
            first = False
        return _encode({"type": etype, "object": obj}) + b"\n"

    try:
        async with asyncio.timeout(timeout if timeout and timeout > 0 else None):
            async for etype, obj in w:
                # events queued meanwhile (one store write often makes several) go out with it
                more = w.pending()
                if more:
                    await response.write(b"".join(
                        [frame(etype, obj), *(frame(e.type, e.object) for e in more)]))
                else:
                    await response.write(frame(etype, obj))
    except (TimeoutError, ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        w.close()
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await response.write_eof()
    return response


# --- writes --------------------------------------------------------------------------------

def _check_identity(t: ResourceTarget, body: Obj, *, creating: bool) -> Obj:
    """Fill and check apiVersion, kind, namespace and name of a request body."""
    rt = t.rt
    if body.get("apiVersion", rt.api_version) != rt.api_version and t.subresource is None:
        raise BadRequest(f"the API version in the data ({body['apiVersion']}) does not match the "
                         f"expected API version ({rt.api_version})")
    if body.get("kind", rt.kind) != rt.kind and t.subresource is None:
        raise BadRequest(f"the kind in the data ({body['kind']}) does not match the expected "
                         f"kind ({rt.kind})")
    body["apiVersion"], body["kind"] = rt.api_version, rt.kind
    meta = body.setdefault("metadata", {})
    if rt.namespaced:
        if meta.get("namespace") and meta["namespace"] != t.namespace:
            raise BadRequest("the namespace of the provided object does not match the namespace "
                             "sent on the request")
        meta["namespace"] = t.namespace
    else:
        meta.pop("namespace", None)
    if not creating and meta.get("name") != t.name:
        raise BadRequest(f"the name of the object ({meta.get('name')}) does not match the name "
                         f"on the URL ({t.name})")
    return body


def _validate(t: ResourceTarget, body: Obj) -> None:
    name = body["metadata"].get("name") or ""
    pattern = _DNS_LABEL if t.rt.plural == "namespaces" else _DNS1123
    if name and (len(name) > 253 or not pattern.match(name)):
        raise Invalid(t.rt.id, t.rt.kind, name, [(
            "metadata.name",
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
            "case alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")])
    if t.rt.id == "pods" and not (body.get("spec") or {}).get("containers"):
        raise Invalid(t.rt.id, t.rt.kind, name, [("spec.containers", "Required value")])


async def create(api: ApiContext, request: web.Request, t: ResourceTarget) -> web.Response:
    body = _check_identity(t, await read_body(request), creating=True)
    _ns(api, t.namespace)
    _validate(t, body)
    if t.rt.id == "pods":
        body.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
    if t.rt.id == "namespaces":
        body.setdefault("status", {"phase": "Active"})
        body["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = \
            body["metadata"].get("name", "")
    if is_dry_run(request):
        return json_reply(body, 201)
    return json_reply(api.store.create(t.rt.id, body), 201)


def _merge_subresource(t: ResourceTarget, current: Obj, new: Obj) -> Obj:
    """Keep status on main-resource writes and only status on /status writes."""
    if t.subresource == "status":
        out = dict(current)
        out["status"] = new.get("status")
        out["metadata"] = dict(current["metadata"],
                               resourceVersion=new["metadata"].get("resourceVersion"))
        return out
    if t.rt.has_status() and t.rt.id != "namespaces":
        new = dict(new)
        if "status" in current:
            new["status"] = current["status"]
        else:
            new.pop("status", None)
    return new


async def update(api: ApiContext, request: web.Request, t: ResourceTarget) -> web.Response:
    body = _check_identity(t, await read_body(request), creating=False)
    current = api.store.peek(t.rt.id, t.namespace or "", t.name or "")
    if current is None:
        raise NotFoundStatus(t.rt.id, t.name or "")
    new = _merge_subresource(t, current, body)
    _validate(t, new)
    if is_dry_run(request):
        return json_reply(new)
    return json_reply(api.store.update(t.rt.id, new))


async def patch(api: ApiContext, request: web.Request, t: ResourceTarget) -> web.Response:
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
    if ctype not in patches.PATCH_TYPES:
        raise StatusError(415, "UnsupportedMediaType",
                          f"the body of the request was in an unknown format - accepted media "
                          f"types include: {', '.join(patches.PATCH_TYPES)}")
    raw = await request.read()
    ns, name = t.namespace or "", t.name or ""
    current = api.store.peek(t.rt.id, ns, name)
    if ctype == patches.APPLY and not request.query.get("fieldManager"):
        raise BadRequest("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                         "value: is required for apply patch")
    if current is None:
        if ctype != patches.APPLY or t.subresource is not None:
            raise NotFoundStatus(t.rt.id, name)
        body = patches.decode(raw, ctype)
        if not isinstance(body, dict):
            raise BadRequest("apply patch must be an object")
        body = _check_identity(t, body, creating=False)
        _ns(api, t.namespace)
        _validate(t, body)
        return json_reply(body if is_dry_run(request) else api.store.create(t.rt.id, body), 201)
    new = patches.apply_patch(current, raw, ctype)
    if not isinstance(new, dict):
        raise StatusError(422, "Invalid", "the patch produced something that is not an object")
    meta = new.setdefault("metadata", {})
    if meta.get("name") != name or (t.rt.namespaced and meta.get("namespace") != ns):
        raise BadRequest("metadata.name and metadata.namespace cannot be changed by a patch")
    new["apiVersion"], new["kind"] = t.rt.api_version, t.rt.kind
    new = _merge_subresource(t, current, new)
    _validate(t, new)
    if is_dry_run(request):
        return json_reply(new)
    return json_reply(api.store.update(t.rt.id, new))


async def _delete_options(request: web.Request) -> Obj:
    """DeleteOptions from the body (ignored when unparsable) overlaid by query parameters."""
    opts: Obj = {}
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        raw = await request.read()
        parsed = json.loads(raw) if raw.strip() else {}
        if isinstance(parsed, dict):
            opts = parsed
    grace = _int(request, "gracePeriodSeconds")
    if grace is not None:
        opts["gracePeriodSeconds"] = grace
    if request.query.get("propagationPolicy"):
        opts["propagationPolicy"] = request.query["propagationPolicy"]
    return opts


def remove_pod(api: ApiContext, pod: Obj, grace: int | None, by: str) -> Obj:
    """Delete a pod as the API server does: mark it terminating and let `on_pod_delete` finish,
    or (no hook, or grace 0) remove it at once. Returns the pod as the DELETE answers it."""
    meta = pod["metadata"]
    if grace is None:
        grace = int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
    hook = api.on_pod_delete
    if hook is None or grace <= 0:
        return api.store.delete("pods", meta["namespace"], meta["name"])
    if meta.get("deletionTimestamp"):
        return pod
    when = format_time(api.now() + timedelta(seconds=grace))

    def mark(p: Obj) -> None:
        p["metadata"]["deletionTimestamp"] = when
        p["metadata"]["deletionGracePeriodSeconds"] = grace

    marked = api.store.mutate("pods", meta["namespace"], meta["name"], mark)
    hook(marked, grace, by)
    return marked


def check_preconditions(t: ResourceTarget, obj: Obj, opts: Obj) -> None:
    pre = opts.get("preconditions") or {}
    meta = obj["metadata"]
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        raise StatusError(409, "Conflict", f'Operation cannot be fulfilled on {t.rt.id} '
                          f'"{meta["name"]}": Precondition failed: UID in precondition: '
                          f'{pre["uid"]}, UID in object meta: {meta.get("uid")}')
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
        raise StatusError(409, "Conflict", f'Operation cannot be fulfilled on {t.rt.id} '
                          f'"{meta["name"]}": Precondition failed: ResourceVersion in '
                          f'precondition: {pre["resourceVersion"]}, ResourceVersion in object '
                          f'meta: {meta.get("resourceVersion")}')


def _delete_one(api: ApiContext, t: ResourceTarget, obj: Obj, opts: Obj,
                dry: bool) -> web.Response:
    check_preconditions(t, obj, opts)
    meta = obj["metadata"]
    if t.rt.id == "pods":
        grace = opts.get("gracePeriodSeconds")
        return json_reply(obj if dry else remove_pod(api, obj, grace, "delete"))
    if not dry:
        if t.rt.id == "namespaces":
            for rid in api.store.resources():
                for child in list(api.store.iter(rid, meta["name"])):
                    cm = child["metadata"]
                    api.store.delete(rid, cm.get("namespace", ""), cm["name"])
        api.store.delete(t.rt.id, meta.get("namespace", ""), meta["name"])
    details: Obj = {"name": meta["name"]}
    if t.rt.group:
        details["group"] = t.rt.group
    details.update(kind=t.rt.plural, uid=meta.get("uid"))
    return json_reply(success(details))


async def delete(api: ApiContext, request: web.Request, t: ResourceTarget) -> web.Response:
    obj = api.store.peek(t.rt.id, t.namespace or "", t.name or "")
    if obj is None:
        raise NotFoundStatus(t.rt.id, t.name or "")
    return _delete_one(api, t, obj, await _delete_options(request), is_dry_run(request))


async def delete_collection(api: ApiContext, request: web.Request,
                            t: ResourceTarget) -> web.Response:
    if "deletecollection" not in t.rt.verbs:
        raise StatusError(405, "MethodNotAllowed",
                          "the server does not allow this method on the requested resource")
    opts = await _delete_options(request)
    q = request.query
    items = list(api.store.list(t.rt.id, t.namespace, q.get("labelSelector"),
                                q.get("fieldSelector")).items)
    for obj in items:
        _delete_one(api, t, obj, opts, is_dry_run(request))
    return json_reply(success())
