"""Every Kubernetes API request kubehop makes, built purely: method, path, query, body.

Building is apart from sending (as lightkube `core/generic_client.py` `prepare_request()`):
`KubeClient.send(request)` does the I/O, and no module outside `kubehop.shell.kube` writes an
API URL. Paths follow the API's REST layout (kubernetes/kubernetes
staging/src/k8s.io/apiserver/pkg/endpoints/installer.go): `/api/v1/...` for the core group,
`/apis/GROUP/VERSION/...` otherwise; names are percent-quoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

JSON = "application/json"
TEXT = "text/plain"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
# Metadata only (PartialObjectMetadataList): much smaller than whole objects.
METADATA_ACCEPT = ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,"
                   "application/json")
PAGE_LIMIT = 500  # kubectl's --chunk-size default
KUBE_SYSTEM = "kube-system"
CNPG = ("postgresql.cnpg.io", "v1", "clusters")


@dataclass(frozen=True, slots=True)
class Request:
    """One API request, not yet sent."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Any = field(default=None, hash=False)
    content_type: str = JSON
    accept: str = JSON

    @property
    def query(self) -> dict[str, str]:
        return dict(self.params)

    def with_params(self, **params: str) -> Request:
        """This request with `params` added (or replaced)."""
        return replace(self, params=tuple({**self.query, **params}.items()))


def _q(name: str) -> str:
    return quote(name, safe="")


def resource(group: str, version: str, plural: str, namespace: str | None = None,
             name: str | None = None, subresource: str | None = None) -> str:
    """The path of a collection, or of one object (and its subresource)."""
    path = "/api/v1" if not group else f"/apis/{group}/{version}"
    if namespace is not None:
        path += f"/namespaces/{_q(namespace)}"
    path += f"/{plural}"
    if name is not None:
        path += f"/{_q(name)}"
        if subresource:
            path += f"/{subresource}"
    return path


def _selectors(label_selector: str | None = None,
               field_selector: str | None = None) -> tuple[tuple[str, str], ...]:
    out = []
    if field_selector:
        out.append(("fieldSelector", field_selector))
    if label_selector:
        out.append(("labelSelector", label_selector))
    return tuple(out)


def get(path: str, *, accept: str = JSON) -> Request:
    return Request("GET", path, accept=accept)


def list_of(group: str, version: str, plural: str, namespace: str | None = None, *,
            label_selector: str | None = None, field_selector: str | None = None,
            accept: str = JSON) -> Request:
    """A list of any resource (all namespaces when `namespace` is None)."""
    return Request("GET", resource(group, version, plural, namespace),
                   _selectors(label_selector, field_selector), accept=accept)


def page(request: Request, continue_: str = "", limit: int = PAGE_LIMIT) -> Request:
    """One page of a list: `limit`, and the `continue` token of the page before."""
    extra = {"limit": str(limit)}
    if continue_:
        extra["continue"] = continue_
    return request.with_params(**extra)


def watch(request: Request, resource_version: str, timeout_seconds: int) -> Request:
    """A watch of a list request from `resource_version`, ended by the server after
    `timeout_seconds`, with bookmarks (`watch=true` is added when sent)."""
    return request.with_params(resourceVersion=resource_version,
                               timeoutSeconds=str(timeout_seconds),
                               allowWatchBookmarks="true")


# --- server ----------------------------------------------------------------------------------

def version() -> Request:
    return get("/version")


def readyz() -> Request:
    return get("/readyz", accept=TEXT)


def metrics() -> Request:
    return get("/metrics", accept=TEXT)


# --- nodes -----------------------------------------------------------------------------------

def list_nodes(label_selector: str | None = None) -> Request:
    return list_of("", "v1", "nodes", label_selector=label_selector)


def get_node(name: str) -> Request:
    return get(resource("", "v1", "nodes", name=name))


def patch_node(name: str, body: Any, *, content_type: str = MERGE_PATCH) -> Request:
    return Request("PATCH", resource("", "v1", "nodes", name=name), body=body,
                   content_type=content_type)


def set_unschedulable(name: str, unschedulable: bool) -> Request:
    """Cordon or uncordon, as kubectl `pkg/drain/cordon.go` (a strategic merge patch)."""
    return patch_node(name, {"spec": {"unschedulable": True if unschedulable else None}},
                      content_type=STRATEGIC_MERGE)


# --- pods ------------------------------------------------------------------------------------

def list_pods(namespace: str | None = None, *, node: str | None = None,
              label_selector: str | None = None) -> Request:
    """Pods (of a namespace, on a node, matching a selector)."""
    return list_of("", "v1", "pods", namespace, label_selector=label_selector,
                   field_selector=f"spec.nodeName={node}" if node else None)


def get_pod(namespace: str, name: str) -> Request:
    return get(resource("", "v1", "pods", namespace, name))


def evict_pod(namespace: str, name: str, grace_period: int = -1) -> Request:
    """A policy/v1 Eviction (kubectl `pkg/drain/drain.go` EvictPod); grace < 0: the pod's own."""
    options: dict[str, Any] = {}
    if grace_period >= 0:
        options["gracePeriodSeconds"] = grace_period
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace}, "deleteOptions": options}
    return Request("POST", resource("", "v1", "pods", namespace, name, "eviction"), body=body)


def delete_pod(namespace: str, name: str, grace_period: int = -1) -> Request:
    params = (("gracePeriodSeconds", str(grace_period)),) if grace_period >= 0 else ()
    return Request("DELETE", resource("", "v1", "pods", namespace, name), params)


# --- workloads, PDBs, CloudNativePG --------------------------------------------------------------

def list_pdbs(namespace: str | None = None) -> Request:
    return list_of("policy", "v1", "poddisruptionbudgets", namespace)


def get_daemonset(namespace: str, name: str) -> Request:
    return get(resource("apps", "v1", "daemonsets", namespace, name))


def list_workloads(plural: str, namespace: str | None = None,
                   label_selector: str | None = None) -> Request:
    """Deployments, StatefulSets, DaemonSets or ReplicaSets (apps/v1)."""
    return list_of("apps", "v1", plural, namespace, label_selector=label_selector)


def get_cnpg_cluster(namespace: str, name: str) -> Request:
    return get(resource(*CNPG, namespace, name))


def list_cnpg_clusters() -> Request:
    return list_of(*CNPG)


# --- services, config, secrets, events -----------------------------------------------------------

def kubernetes_endpoints() -> Request:
    """The `default/kubernetes` Endpoints: one address per apiserver."""
    return get(resource("", "v1", "endpoints", "default", "kubernetes"))


def kubernetes_endpoint_slices() -> Request:
    """The EndpointSlices of the `default/kubernetes` Service."""
    return list_of("discovery.k8s.io", "v1", "endpointslices", "default",
                   label_selector="kubernetes.io/service-name=kubernetes")


def get_configmap(namespace: str, name: str) -> Request:
    return get(resource("", "v1", "configmaps", namespace, name))


def kubeadm_config() -> Request:
    """kubeadm's ClusterConfiguration (kubernetes/kubernetes cmd/kubeadm/app/constants)."""
    return get_configmap(KUBE_SYSTEM, "kubeadm-config")


def list_secrets(label_selector: str | None = None) -> Request:
    return list_of("", "v1", "secrets", label_selector=label_selector)


def create_event(namespace: str, body: Any) -> Request:
    return Request("POST", resource("", "v1", "events", namespace), body=body)


def list_events(namespace: str, label_selector: str | None = None) -> Request:
    return list_of("", "v1", "events", namespace, label_selector=label_selector)


def delete_event(namespace: str, name: str) -> Request:
    return Request("DELETE", resource("", "v1", "events", namespace, name))


# --- leases (the upgrade lock) -------------------------------------------------------------------

LEASES = ("coordination.k8s.io", "v1", "leases")


def get_lease(namespace: str, name: str) -> Request:
    return get(resource(*LEASES, namespace, name))


def create_lease(namespace: str, body: Any) -> Request:
    return Request("POST", resource(*LEASES, namespace), body=body)


def replace_lease(namespace: str, name: str, body: Any) -> Request:
    return Request("PUT", resource(*LEASES, namespace, name), body=body)


def delete_lease(namespace: str, name: str, resource_version: str) -> Request:
    """Delete only the version we wrote (a precondition: someone else's lease stays)."""
    body = {"apiVersion": "v1", "kind": "DeleteOptions",
            "preconditions": {"resourceVersion": resource_version}}
    return Request("DELETE", resource(*LEASES, namespace, name), body=body)


# --- other reads ---------------------------------------------------------------------------------

def get_namespace(name: str) -> Request:
    return get(resource("", "v1", "namespaces", name=name))


def lab_clock() -> Request:
    """The lab's own clock (`kubehop lab up` serves it; a real cluster answers 404)."""
    return get("/lab/v1/clock")
