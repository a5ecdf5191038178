"""Which API versions the cluster's manifests and clients still use, for the removed-API checks.

Three sources, as kubent and pluto read them: the `kubectl.kubernetes.io/last-applied-configuration`
annotation of objects (the apiVersion they were applied with), the manifests of deployed Helm 3
releases (Secrets of type `helm.sh/release.v1`: base64 of gzipped JSON), and each apiserver's
`apiserver_requested_deprecated_apis` gauge on `/metrics`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import json
import re
from collections.abc import AsyncIterator, Iterable

import msgspec

from kubehop.model.cluster import DeprecatedApiUse, ManifestObject
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube import wire
from kubehop.shell.kube.errors import Forbidden, NotFound
from kubehop.shell.kube.reader import Reader

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
HELM_SECRET_TYPE = "helm.sh/release.v1"
METRIC = "apiserver_requested_deprecated_apis"

# Resources whose objects are commonly applied from manifests: (group, versions to try, plural).
# The first served version is read; the stored object is the same in every version.
APPLIED_RESOURCES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("apps", ("v1",), "deployments"),
    ("apps", ("v1",), "daemonsets"),
    ("apps", ("v1",), "statefulsets"),
    ("batch", ("v1",), "cronjobs"),
    ("", ("v1",), "services"),
    ("networking.k8s.io", ("v1",), "ingresses"),
    ("networking.k8s.io", ("v1",), "networkpolicies"),
    ("policy", ("v1",), "poddisruptionbudgets"),
    ("autoscaling", ("v2", "v1"), "horizontalpodautoscalers"),
    ("rbac.authorization.k8s.io", ("v1",), "clusterroles"),
    ("rbac.authorization.k8s.io", ("v1",), "clusterrolebindings"),
    ("rbac.authorization.k8s.io", ("v1",), "roles"),
    ("rbac.authorization.k8s.io", ("v1",), "rolebindings"),
    ("apiextensions.k8s.io", ("v1",), "customresourcedefinitions"),
    ("admissionregistration.k8s.io", ("v1",), "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", ("v1",), "validatingwebhookconfigurations"),
    ("scheduling.k8s.io", ("v1",), "priorityclasses"),
    ("storage.k8s.io", ("v1",), "storageclasses"),
    ("storage.k8s.io", ("v1",), "csidrivers"),
    ("node.k8s.io", ("v1",), "runtimeclasses"),
    ("flowcontrol.apiserver.k8s.io", ("v1", "v1beta3", "v1beta2"), "flowschemas"),
    ("flowcontrol.apiserver.k8s.io", ("v1", "v1beta3", "v1beta2"), "prioritylevelconfigurations"),
)


_meta_list = msgspec.json.Decoder(wire.ItemList[wire.MetaOnly])
_secret_list = msgspec.json.Decoder(wire.ItemList[wire.SecretWire])
_applied = msgspec.json.Decoder(wire.AppliedWire)


# --- last-applied annotations --------------------------------------------------------------


async def metadata_pages(reader: Reader, group: str, version: str,
                         plural: str) -> AsyncIterator[bytes]:
    """Raw pages of a PartialObjectMetadataList (metadata only: cheaper than whole objects)."""
    request = rq.list_of(group, version, plural, accept=rq.METADATA_ACCEPT)
    token = ""
    while True:
        page = await reader.page(request, token)
        yield page
        token = wire.list_head.decode(page).metadata.continue_
        if not token:
            return


async def _applied_of(reader: Reader, group: str, versions: tuple[str, ...],
                      plural: str) -> list[ManifestObject]:
    for version in versions:
        out: list[ManifestObject] = []
        try:
            async for page in metadata_pages(reader, group, version, plural):
                for item in _meta_list.decode(page).items:
                    obj = applied_object(item.metadata.annotations.get(LAST_APPLIED),
                                         item.metadata.namespace, item.metadata.name)
                    if obj is not None:
                        out.append(obj)
        except (NotFound, Forbidden):  # not served here (or not ours to read): next version
            continue
        return out
    return []


def applied_object(text: str | None, namespace: str, name: str) -> ManifestObject | None:
    """The apiVersion/kind a last-applied annotation records, or None when there is none."""
    if not text:
        return None
    try:
        doc = _applied.decode(text)
    except msgspec.DecodeError:
        return None
    if not doc.apiVersion or not doc.kind:
        return None
    return ManifestObject(doc.apiVersion, doc.kind, namespace or None, name, "last-applied")


async def last_applied(reader: Reader) -> list[ManifestObject]:
    """Objects of the usual applied kinds, as their last-applied annotations declare them."""
    results = await asyncio.gather(*(_applied_of(reader, g, vs, p)
                                     for g, vs, p in APPLIED_RESOURCES))
    return [o for objs in results for o in objs]


# --- Helm 3 releases -----------------------------------------------------------------------


_DOC_SPLIT = re.compile(r"^---.*$", re.MULTILINE)
_TOP_RE = re.compile(r"^(apiVersion|kind):\s*['\"]?([^'\"\s#]+)", re.MULTILINE)
_META_RE = re.compile(r"^metadata:\s*\n((?:[ \t]+.*\n?|\s*\n)*)", re.MULTILINE)
_FIELD_RE = re.compile(r"^[ \t]{1,4}(name|namespace):\s*['\"]?([^'\"\s#]+)", re.MULTILINE)


def decode_helm_release(data: str) -> dict[str, object] | None:
    """The release JSON of a Helm 3 Secret's `data.release` (base64 of Helm's base64 of gzip)."""
    try:
        inner = base64.b64decode(base64.b64decode(data))
        raw = gzip.decompress(inner) if inner[:2] == b"\x1f\x8b" else inner
        doc = json.loads(raw)
    except (binascii.Error, ValueError, OSError, EOFError):
        return None
    return doc if isinstance(doc, dict) else None


def manifest_objects(manifest: str, source: str) -> list[ManifestObject]:
    """apiVersion, kind, name and (when the document names one) namespace of each document of a
    rendered manifest."""
    out = []
    for doc in _DOC_SPLIT.split(manifest):
        top = dict(m.groups() for m in _TOP_RE.finditer(doc))
        if "apiVersion" not in top or "kind" not in top:
            continue
        meta = _META_RE.search(doc)
        fields = dict(m.groups() for m in _FIELD_RE.finditer(meta.group(1))) if meta else {}
        out.append(ManifestObject(top["apiVersion"], top["kind"],
                                  fields.get("namespace") or None,
                                  fields.get("name", ""), source))
    return out


def helm_objects(secrets: Iterable[tuple[str, dict[str, str], str]]) -> list[ManifestObject]:
    """The objects of the newest deployed revision of each release.

    `secrets`: (namespace, labels, data.release) of Helm release Secrets.
    """
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    for namespace, labels, data in secrets:
        if labels.get("status", "deployed") != "deployed":
            continue
        key = (namespace, labels.get("name", ""))
        try:
            revision = int(labels.get("version", "0"))
        except ValueError:
            revision = 0
        if key not in newest or revision > newest[key][0]:
            newest[key] = (revision, data)
    out = []
    for (namespace, name), (_rev, data) in sorted(newest.items()):
        release = decode_helm_release(data)
        if release is None:
            continue
        manifest = release.get("manifest")
        if isinstance(manifest, str):
            out += manifest_objects(manifest, f"helm:{namespace}/{name}")
    return out


async def helm_releases(reader: Reader) -> list[ManifestObject]:
    """The objects of every deployed Helm 3 release, as its stored manifest declares them."""
    found = await reader.items(
        rq.list_secrets("owner=helm,status=deployed"),
        lambda page: [(s.metadata.namespace, s.metadata.labels, s.data["release"])
                      for s in _secret_list.decode(page).items
                      if s.type == HELM_SECRET_TYPE and "release" in s.data])
    return helm_objects(found)


# --- apiserver_requested_deprecated_apis ---------------------------------------------------


_LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_deprecated_apis(text: str, apiserver: str) -> list[DeprecatedApiUse]:
    """The series of the gauge whose value is not 0, from Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line.startswith(METRIC + "{"):
            continue
        labels_text, _, value = line[len(METRIC) + 1:].rpartition("}")
        try:
            if float(value.split()[0]) == 0:
                continue
        except (ValueError, IndexError):
            continue
        labels = dict(_LABEL_RE.findall(labels_text))
        out.append(DeprecatedApiUse(
            group=labels.get("group", ""), version=labels.get("version", ""),
            resource=labels.get("resource", "") + (f"/{labels['subresource']}"
                                                   if labels.get("subresource") else ""),
            removed_release=labels.get("removed_release") or None, apiserver=apiserver))
    return out
