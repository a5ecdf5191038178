"""The resources the lab serves, and the discovery documents that describe them.

Legacy discovery: `/api` (APIVersions), `/apis` (APIGroupList), `/api/v1` and `/apis/G/V`
(APIResourceList). Aggregated discovery (`apidiscovery.k8s.io` v2, and v2beta1 for kubectl
1.27-1.29): one APIGroupDiscoveryList for `/api` and one for `/apis`, chosen by the Accept header.
`pods/eviction` is listed with kind Eviction in group policy, version v1, as kubectl drain expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True, slots=True)
class Subresource:
    """A subresource such as `status` or `eviction` (kind/group/version of its body)."""

    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # None: the parent's group/version
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served resource: where it lives, what it is called, and what it allows."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def id(self) -> str:
        """The store's name for it: `pods`, `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def has_status(self) -> bool:
        return any(s.name == "status" for s in self.subresources)


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, STATUS_VERBS)


def _scale() -> Subresource:
    return Subresource("scale", "Scale", STATUS_VERBS, "autoscaling", "v1")


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False, "namespace", ("ns",),
                 subresources=(Subresource("finalize", "Namespace", ("update",)),
                               _status("Namespace")),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    ResourceType("", "v1", "nodes", "Node", False, "node", ("no",),
                 subresources=(Subresource("proxy", "NodeProxyOptions", ("create", "delete",
                                                                         "get", "patch",
                                                                         "update")),
                               _status("Node"))),
    ResourceType("", "v1", "pods", "Pod", True, "pod", ("po",), ("all",),
                 subresources=(Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
                               _status("Pod"))),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",)),
    ResourceType("", "v1", "secrets", "Secret", True, "secret"),
    ResourceType("", "v1", "services", "Service", True, "service", ("svc",), ("all",),
                 subresources=(_status("Service"),)),
    ResourceType("", "v1", "endpoints", "Endpoints", True, "endpoints", ("ep",)),
    ResourceType("", "v1", "events", "Event", True, "event", ("ev",)),
    ResourceType("apps", "v1", "deployments", "Deployment", True, "deployment", ("deploy",),
                 ("all",), (_scale(), _status("Deployment"))),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True, "replicaset", ("rs",),
                 ("all",), (_scale(), _status("ReplicaSet"))),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True, "daemonset", ("ds",),
                 ("all",), (_status("DaemonSet"),)),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True, "statefulset", ("sts",),
                 ("all",), (_scale(), _status("StatefulSet"))),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True,
                 "poddisruptionbudget", ("pdb",), subresources=(_status("PodDisruptionBudget"),)),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, "lease"),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True,
                 "endpointslice"),
    ResourceType("postgresql.cnpg.io", "v1", "clusters", "Cluster", True, "cluster",
                 categories=(), subresources=(_scale(), _status("Cluster"))),
)

BY_PATH: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}


def groups() -> list[tuple[str, list[str]]]:
    """Non-core groups and their versions, in serving order."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return list(out.items())


# --- legacy discovery ----------------------------------------------------------------------

def api_versions(server_address: str) -> Obj:
    """`GET /api`."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": server_address}],
    }


def _group_entry(name: str, versions: list[str]) -> Obj:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> Obj:
    """`GET /apis`."""
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_entry(g, vs) for g, vs in groups()]}


def api_group(name: str) -> Obj | None:
    """`GET /apis/G`, or None when the group is not served."""
    for g, vs in groups():
        if g == name:
            return dict(_group_entry(g, vs), kind="APIGroup", apiVersion="v1")
    return None


def api_resource_list(group: str, version: str) -> Obj | None:
    """`GET /api/v1` or `/apis/G/V`, or None when not served."""
    rs = [r for r in RESOURCES if r.group == group and r.version == version]
    if not rs:
        return None
    out: list[Obj] = []
    for r in rs:
        entry: Obj = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                      "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for s in r.subresources:
            sub: Obj = {"name": f"{r.plural}/{s.name}", "singularName": "",
                        "namespaced": r.namespaced, "kind": s.kind, "verbs": list(s.verbs)}
            if s.group is not None:
                sub["group"] = s.group
                sub["version"] = s.version
            out.append(sub)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


# --- aggregated discovery ------------------------------------------------------------------

def _resource_discovery(r: ResourceType) -> Obj:
    entry: Obj = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    if r.subresources:
        entry["subresources"] = [
            {
                "subresource": s.name,
                "responseKind": {"group": s.group if s.group is not None else r.group,
                                 "version": s.version or r.version, "kind": s.kind},
                "verbs": list(s.verbs),
            }
            for s in r.subresources
        ]
    return entry


def aggregated(core: bool, version: str = "v2") -> Obj:
    """The APIGroupDiscoveryList for `/api` (core) or `/apis`, as `version` v2 or v2beta1."""
    names = [""] if core else [g for g, _ in groups()]
    items = []
    for g in names:
        versions = []
        for v in dict.fromkeys(r.version for r in RESOURCES if r.group == g):
            resources = [_resource_discovery(r) for r in RESOURCES
                         if r.group == g and r.version == v]
            versions.append({"version": v, "resources": resources, "freshness": "Current"})
        meta: Obj = {"creationTimestamp": None}
        if g:
            meta["name"] = g
        items.append({"metadata": meta, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}


def aggregated_content_type(version: str) -> str:
    return f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"


def wanted_discovery(accept: str) -> str | None:
    """The aggregated discovery version the Accept header asks for first ("v2", "v2beta1"),
    or None for legacy discovery."""
    for part in accept.split(","):
        params = _params(part)
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == \
                "APIGroupDiscoveryList" and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
        media = part.split(";", 1)[0].strip()
        if media in ("application/json", "*/*", "application/*") and len(params) == 0:
            return None
    return None


def _params(part: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in part.split(";")[1:]:
        k, _, v = p.strip().partition("=")
        if k:
            out[k.strip()] = v.strip()
    return out
