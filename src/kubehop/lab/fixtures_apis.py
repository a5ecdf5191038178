"""API versions as manifests remember them, for `fixtures.populate`: last-applied annotations
and Helm 3 release Secrets (what kubent/pluto and `kubehop check --to` read)."""

from __future__ import annotations

import base64
import gzip
from typing import TYPE_CHECKING, Any

import msgspec

from kubehop.lab import objects as o

if TYPE_CHECKING:
    from kubehop.lab.fixtures import WorkloadSpec

Obj = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_encode = msgspec.json.Encoder().encode


def annotate_applied(obj: Obj, api_version: str | None) -> Obj:
    """`obj` with the annotation `kubectl apply` leaves when it was applied as `api_version`
    (the stored object stays in the served version, as after the apiserver's conversion)."""
    if api_version is None:
        return obj
    meta = obj["metadata"]
    applied: Obj = {"apiVersion": api_version, "kind": obj["kind"],
                    "metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                                 "labels": meta.get("labels") or {}}}
    if "spec" in obj:
        applied["spec"] = obj["spec"]
    annotations = dict(meta.get("annotations") or {})
    annotations[LAST_APPLIED] = _encode(applied).decode() + "\n"
    meta["annotations"] = annotations
    return obj


def helm_release_secret(w: WorkloadSpec, created: str, revision: int = 1) -> Obj:
    """The Secret Helm 3 keeps a deployed release in: `data.release` is base64 (the API's) of
    Helm's own base64 of the gzipped release JSON, whose `manifest` declares `w.objects`."""
    chart, _, version = (w.chart or w.name).rpartition("-")
    if not chart or not version[:1].isdigit():
        chart, version = w.chart or w.name, "0.1.0"
    manifest = "".join(
        f"---\n# Source: {chart}/templates/{name}.yaml\napiVersion: {api}\nkind: {kind}\n"
        f"metadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/managed-by: Helm\n"
        for api, kind, name in w.objects)
    release = {
        "name": w.name, "namespace": w.namespace, "version": revision, "manifest": manifest,
        "info": {"first_deployed": created, "last_deployed": created, "deleted": "",
                 "description": "Install complete", "status": "deployed"},
        "chart": {"metadata": {"name": chart, "version": version, "apiVersion": "v2"}},
        "config": {},
    }
    helm = base64.b64encode(gzip.compress(_encode(release), mtime=0))
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": o.meta(f"sh.helm.release.v1.{w.name}.v{revision}", w.namespace,
                           labels={"owner": "helm", "name": w.name, "status": "deployed",
                                   "version": str(revision)}, created=created),
        "data": {"release": base64.b64encode(helm).decode()},
    }
