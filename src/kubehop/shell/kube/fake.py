"""`FakeReader`: an in-memory cluster behind the `Reader` seam, recording what it was asked.

    api = FakeReader()
    api.add_node("w1")
    api.add_pod("web", "front-1", node="w1", labels={"app": "front"}, owner=("ReplicaSet", "f"))
    api.add_pdb("web", "front", {"matchLabels": {"app": "front"}}, allowed=0)
    drainer = Drainer(api, DrainOptions(ignore_daemonsets=True))
    ...
    api.set_pdb("web", "front", allowed=1)          # the watch wakes the waiting eviction
    api.actions                                     # [("cordon", "w1"), ("evict", "web/front-1")]

Objects are kept as the API's JSON (dicts) and served through the same wire structs as the real
reader, so list pages, watch events (ADDED, MODIFIED, DELETED with resourceVersions) and typed
errors are what `ClusterReader` would give. An eviction is refused (TooManyRequests) while a PDB
selecting the pod allows no disruption, as the eviction subresource does
(kubernetes/kubernetes pkg/registry/core/pod/storage/eviction.go); accepted, it deletes the pod
at once and uses up one disruption. Label selectors in list requests are matched by
kubehop.core.selectors (terms `k=v`, `k!=v`, `k in (…)`, `k notin (…)`, `k`, `!k`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Self, TypeVar

import msgspec

from kubehop.core.selectors import Requirement, Selector, selects
from kubehop.model.cluster import PdbInfo, PodInfo
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube import wire
from kubehop.shell.kube.errors import ApiError, NotFound, ServerError, TooManyRequests
from kubehop.shell.kube.reader import DEFAULT_TIMEOUT, decode_pdbs, decode_pods
from kubehop.shell.kube.requests import Request

T = TypeVar("T")
Obj = dict[str, Any]
_TERM = re.compile(r"^\s*(!?)\s*([^\s!=]+)\s*(?:(==?|!=)\s*(\S*)|\s+(in|notin)\s*\((.*)\))?\s*$")


def parse_selector(text: str | None) -> Selector:
    """A `labelSelector=` string as a Selector (the forms kubehop itself sends)."""
    if not text:
        return Selector()
    terms = re.split(r",(?![^(]*\))", text)
    reqs = []
    for term in terms:
        m = _TERM.match(term)
        if m is None:
            raise ValueError(f"unsupported label selector term {term!r}")
        bang, key, eq, value, op, values = m.groups()
        if eq:
            reqs.append(Requirement(key, "NotIn" if eq == "!=" else "In", frozenset({value})))
        elif op:
            reqs.append(Requirement(key, "In" if op == "in" else "NotIn",
                                    frozenset(v.strip() for v in values.split(","))))
        else:
            reqs.append(Requirement(key, "DoesNotExist" if bang else "Exists"))
    return Selector(tuple(reqs))


def _kind_of(path: str) -> tuple[str, str | None, str | None]:
    """(plural, namespace, name) of a path built by kubehop.shell.kube.requests."""
    parts = path.strip("/").split("/")
    parts = parts[2:] if parts[0] == "api" else parts[3:]
    namespace = None
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        namespace, parts = parts[1], parts[2:]
    return parts[0], namespace, parts[1] if len(parts) > 1 else None


class FakeReader:
    """An in-memory `Reader` for unit tests (see the module docstring)."""

    def __init__(self, server: str = "https://127.77.0.1:6443") -> None:
        self._server = server
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {}  # plural → (ns, name) → obj
        self.actions: list[tuple[str, str]] = []
        self.endpoints: list[str] = []  # what `apiserver_endpoints` answers
        self.readyz_text: dict[str, str | ApiError] = {}  # endpoint ("" the server) → answer
        self.kubeadm_version: str | None = None
        self.fail: dict[tuple[str, str], ApiError] = {}  # (action, object) → raised once
        self._rv = 0
        self._watches: list[tuple[str, str | None, Callable[[Obj], bool],
                                  asyncio.Queue[bytes]]] = []
        self._history: list[tuple[int, str, Obj, bytes]] = []  # (rv, plural, object, line)
        self._endpoint = ""

    @property
    def server(self) -> str:
        return self._server

    # --- building the cluster ----------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def put(self, plural: str, obj: Obj, event: str | None = None) -> Obj:
        """Store `obj` (a new resourceVersion) and tell the watches."""
        meta = obj.setdefault("metadata", {})
        key = (meta.get("namespace", ""), meta["name"])
        store = self.objects.setdefault(plural, {})
        event = event or ("MODIFIED" if key in store else "ADDED")
        meta["resourceVersion"] = self._next_rv()
        store[key] = obj
        self._tell(plural, event, obj)
        return obj

    def remove(self, plural: str, namespace: str, name: str) -> None:
        obj = self.objects.get(plural, {}).pop((namespace, name), None)
        if obj is not None:
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._tell(plural, "DELETED", obj)

    def get_obj(self, plural: str, namespace: str, name: str) -> Obj:
        found = self.objects.get(plural, {}).get((namespace, name))
        if found is None:
            raise NotFound(f"not found (404): {plural} \"{name}\" not found", status=404)
        return found

    def add_node(self, name: str, *, unschedulable: bool = False, ready: bool = True,
                 kubelet: str = "v1.28.9") -> Obj:
        return self.put("nodes", {
            "metadata": {"name": name}, "spec": {"unschedulable": unschedulable},
            "status": {"nodeInfo": {"kubeletVersion": kubelet},
                       "conditions": [{"type": "Ready", "status": str(ready)}]}})

    def add_pod(self, namespace: str, name: str, *, node: str | None = None,
                labels: Mapping[str, str] | None = None, owner: tuple[str, str] | None = None,
                ready: bool = True, phase: str = "Running", empty_dir: bool = False,
                mirror: bool = False) -> Obj:
        meta: Obj = {"namespace": namespace, "name": name, "uid": f"uid-{namespace}-{name}",
                     "labels": dict(labels or {})}
        if owner is not None:
            meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
        if mirror:
            meta["annotations"] = {"kubernetes.io/config.mirror": "x"}
        spec: Obj = {"nodeName": node, "containers": [{"name": "c", "image": "app:1"}]}
        if empty_dir:
            spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        return self.put("pods", {"metadata": meta, "spec": spec, "status": {
            "phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}})

    def add_pdb(self, namespace: str, name: str, selector: Obj | None, *, allowed: int,
                expected: int = 1, desired: int = 1, healthy: int = 1) -> Obj:
        return self.put("poddisruptionbudgets", {
            "metadata": {"namespace": namespace, "name": name, "generation": 1},
            "spec": {"selector": selector},
            "status": {"disruptionsAllowed": allowed, "expectedPods": expected,
                       "desiredHealthy": desired, "currentHealthy": healthy,
                       "observedGeneration": 1}})

    def set_pdb(self, namespace: str, name: str, *, allowed: int) -> None:
        """What the disruption controller does when a replacement becomes Ready."""
        pdb = self.get_obj("poddisruptionbudgets", namespace, name)
        pdb["status"]["disruptionsAllowed"] = allowed
        self.put("poddisruptionbudgets", pdb)

    def add_daemonset(self, namespace: str, name: str) -> None:
        self.put("daemonsets", {"metadata": {"namespace": namespace, "name": name}})

    def add_cnpg(self, namespace: str, name: str, *, instances: int, primary: str | None = None,
                 enable_pdb: bool = True) -> None:
        self.put("clusters", {"metadata": {"namespace": namespace, "name": name},
                              "spec": {"instances": instances, "enablePDB": enable_pdb},
                              "status": {"currentPrimary": primary}})

    def pod_names(self, node: str | None = None) -> list[str]:
        return sorted(f"{ns}/{name}" for (ns, name), p in self.objects.get("pods", {}).items()
                      if node is None or p["spec"].get("nodeName") == node)

    # --- matching and watching ---------------------------------------------------------------

    def _matcher(self, request: Request) -> Callable[[Obj], bool]:
        query = request.query
        selector = parse_selector(query.get("labelSelector"))
        field = query.get("fieldSelector", "")
        node = field.removeprefix("spec.nodeName=") if field else None

        def matches(obj: Obj) -> bool:
            if node is not None and (obj.get("spec") or {}).get("nodeName") != node:
                return False
            return selector.matches((obj.get("metadata") or {}).get("labels") or {})
        return matches

    def _listed(self, request: Request) -> list[Obj]:
        plural, namespace, _ = _kind_of(request.path)
        matches = self._matcher(request)
        return [o for (ns, _), o in sorted(self.objects.get(plural, {}).items())
                if (namespace is None or ns == namespace) and matches(o)]

    def _tell(self, plural: str, event: str, obj: Obj) -> None:
        line = json.dumps({"type": event, "object": obj}).encode() + b"\n"
        snapshot = json.loads(line)["object"]
        self._history.append((self._rv, plural, snapshot, line))
        for kind, namespace, matches, queue in self._watches:
            if self._watched(kind, namespace, matches, plural, snapshot):
                queue.put_nowait(line)

    @staticmethod
    def _watched(kind: str, namespace: str | None, matches: Callable[[Obj], bool],
                 plural: str, obj: Obj) -> bool:
        ns = obj["metadata"].get("namespace", "")
        return kind == plural and (namespace is None or namespace == ns) and matches(obj)

    # --- the Reader seam ---------------------------------------------------------------------

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def for_endpoint(self, endpoint: str) -> FakeReader:
        """The same fake, answering `readyz` as `readyz_text[endpoint]` says."""
        direct = FakeReader.__new__(FakeReader)
        direct.__dict__.update(self.__dict__)
        direct._endpoint = endpoint
        return direct

    async def raw(self, request: Request, *, timeout: float | None = DEFAULT_TIMEOUT,
                  retry: bool = True) -> bytes:
        if request.method != "GET":
            raise NotImplementedError(f"FakeReader.raw does not write ({request.method})")
        plural, namespace, name = _kind_of(request.path)
        if name is not None:
            return json.dumps(self.get_obj(plural, namespace or "", name)).encode()
        return json.dumps({"metadata": {"resourceVersion": str(self._rv)},
                           "items": self._listed(request)}).encode()

    async def get(self, request: Request, kind: type[T]) -> T:
        return msgspec.json.decode(await self.raw(request), type=kind)

    async def items(self, request: Request, decode: Callable[[bytes], list[T]]) -> list[T]:
        return decode(await self.raw(request))

    async def page(self, request: Request, continue_: str = "") -> bytes:
        return await self.raw(request)

    async def watch(self, request: Request, resource_version: str,
                    timeout_seconds: int) -> AsyncIterator[bytes]:
        plural, namespace, _ = _kind_of(request.path)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        matches = self._matcher(request)
        since = int(resource_version or 0)
        for rv, kind, obj, line in self._history:  # what changed since the list
            if rv > since and self._watched(plural, namespace, matches, kind, obj):
                queue.put_nowait(line)
        entry = (plural, namespace, matches, queue)
        self._watches.append(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            self._watches.remove(entry)

    async def node(self, name: str) -> wire.NodeWire:
        return msgspec.convert(self.get_obj("nodes", "", name), wire.NodeWire)

    async def pods(self, namespace: str | None = None, *, node: str | None = None,
                   label_selector: str | None = None) -> list[PodInfo]:
        return decode_pods(await self.raw(rq.list_pods(namespace, node=node,
                                                       label_selector=label_selector)))

    async def pdbs(self, namespace: str) -> list[PdbInfo]:
        return decode_pdbs(await self.raw(rq.list_pdbs(namespace)))

    async def daemonset_exists(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self.objects.get("daemonsets", {})

    async def cnpg_cluster(self, namespace: str, name: str) -> wire.CnpgWire:
        return msgspec.convert(self.get_obj("clusters", namespace, name), wire.CnpgWire)

    async def pod(self, namespace: str, name: str) -> wire.PodWire:
        return msgspec.json.decode(json.dumps(self.get_obj("pods", namespace, name)),
                                   type=wire.PodWire)

    async def kubeadm_kubernetes_version(self) -> str | None:
        if self.kubeadm_version is None:
            raise NotFound('not found (404): configmaps "kubeadm-config" not found', status=404)
        return self.kubeadm_version

    async def apiserver_endpoints(self) -> list[str]:
        return list(self.endpoints)

    async def readyz(self, timeout: float | None = DEFAULT_TIMEOUT) -> str:
        answer = self.readyz_text.get(self._endpoint, "ok")
        if isinstance(answer, ApiError):
            raise answer
        return answer

    # --- the drain's writes ------------------------------------------------------------------

    def _act(self, action: str, what: str) -> None:
        self.actions.append((action, what))
        error = self.fail.pop((action, what), None)
        if error is not None:
            raise error

    async def set_unschedulable(self, node: str, unschedulable: bool) -> None:
        self._act("cordon" if unschedulable else "uncordon", node)
        obj = self.get_obj("nodes", "", node)
        obj["spec"]["unschedulable"] = unschedulable
        self.put("nodes", obj)

    def _covering(self, pod: Obj) -> list[Obj]:
        ns = pod["metadata"]["namespace"]
        labels = pod["metadata"].get("labels") or {}
        return [b for (bns, _), b in self.objects.get("poddisruptionbudgets", {}).items()
                if bns == ns and selects(b["spec"].get("selector"), labels)]

    async def evict(self, namespace: str, name: str, grace_period: int = -1) -> None:
        self._act("evict", f"{namespace}/{name}")
        pod = self.get_obj("pods", namespace, name)
        covering = self._covering(pod)
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in pod["status"].get("conditions") or ())
        if len(covering) > 1:
            raise ServerError("This pod has more than one PodDisruptionBudget, which the "
                              "eviction subresource does not support.", status=500)
        if len(covering) == 1 and ready:
            pdb = covering[0]
            if pdb["status"]["disruptionsAllowed"] <= 0:
                raise TooManyRequests(
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    status=429, reason="TooManyRequests")
            pdb["status"]["disruptionsAllowed"] -= 1
            self.put("poddisruptionbudgets", pdb)
        self.remove("pods", namespace, name)

    async def delete_pod(self, namespace: str, name: str, grace_period: int = -1) -> None:
        self._act("delete", f"{namespace}/{name}")
        self.get_obj("pods", namespace, name)
        self.remove("pods", namespace, name)

