"""Checks that need the target: API versions the upgrade stops serving (`apis.*`) and whether
the CNI plugin declares support for each minor on the way (`cni.*`).

Stored objects survive an upgrade (the apiserver converts them); what breaks is whatever still
speaks a removed version: manifests re-applied from CI, Helm releases (whose stored manifest
`helm upgrade` must map again), and live clients (the `apiserver_requested_deprecated_apis`
gauge: something asked for that API since the apiserver started).
"""

from __future__ import annotations

from collections import defaultdict

from kubehop.core.checks.common import capped
from kubehop.model.cluster import ClusterState, ManifestObject
from kubehop.model.errors import VersionError
from kubehop.model.findings import Finding, Severity
from kubehop.model.releases import ReleaseData, RemovedApi
from kubehop.model.versions import MinorVersion, parse_minor_version

SHOWN = 20  # manifest findings of one kind before they are summarised


def api_findings(state: ClusterState, data: ReleaseData, current: MinorVersion,
                 target: MinorVersion) -> list[Finding]:
    """Manifests and clients using API versions removed by `target` (or already removed)."""
    if not state.apis_observed:
        return []
    removed: list[Finding] = []
    already: list[Finding] = []
    for obj in state.manifests:
        entry = data.removed_for(obj.api_version, obj.kind)
        if entry is None or entry.removed_in is None:
            continue
        if current < entry.removed_in <= target:
            removed.append(_manifest_finding(obj, entry, Severity.WARNING))
        elif entry.removed_in <= current:
            already.append(_manifest_finding(obj, entry, Severity.INFO))
    out = capped(removed, SHOWN, lambda n: Finding(
        "apis.removed-in-target", Severity.WARNING, "manifests",
        f"{n} more manifests use API versions removed by {target}", "see the objects above"))
    out += capped(already, SHOWN, lambda n: Finding(
        "apis.already-removed", Severity.INFO, "manifests",
        f"{n} more manifests use API versions no longer served", "see the objects above"))
    out += _live_uses(state, data, target)
    for endpoint in state.metrics_unreadable:
        out.append(Finding(
            "apis.metrics-unreadable", Severity.INFO, f"apiserver/{endpoint}",
            f"could not read /metrics of kube-apiserver {endpoint}: clients still calling "
            f"deprecated APIs there were not checked",
            "grant this user `get` on the non-resource URL /metrics, then check again",
        ))
    return out


def _manifest_finding(obj: ManifestObject, entry: RemovedApi, severity: Severity) -> Finding:
    replacement = entry.replacement or "its replacement"
    if obj.source.startswith("helm:"):
        release = obj.source.removeprefix("helm:")
        said = f"{obj.subject}: the Helm release {release} declares it as"
        fix = (f"upgrade the chart of {release} to one using {replacement}, or rewrite the "
               f"stored release with helm mapkubeapis")
    else:
        said = f"{obj.subject} was last applied as"
        fix = f"change the manifest of {obj.subject} to {replacement} and apply it again"
    if severity is Severity.WARNING:
        return Finding("apis.removed-in-target", severity, obj.subject,
                       f"{said} {obj.api_version} {obj.kind}, which Kubernetes "
                       f"{entry.removed_in} no longer serves", fix)
    return Finding("apis.already-removed", severity, obj.subject,
                   f"{said} {obj.api_version} {obj.kind}, not served since Kubernetes "
                   f"{entry.removed_in}", fix)


def _live_uses(state: ClusterState, data: ReleaseData, target: MinorVersion) -> list[Finding]:
    """One finding per deprecated API some client called, when `target` removes it."""
    seen: dict[tuple[str, str, str | None], list[str]] = defaultdict(list)
    for use in state.deprecated_api_uses:
        seen[(use.api_version, use.resource, use.removed_release)].append(use.apiserver)
    out = []
    for (api_version, resource, removed), servers in sorted(seen.items(), key=str):
        try:
            removed_in = parse_minor_version(removed) if removed else None
        except VersionError:
            removed_in = None
        if removed_in is None or removed_in > target:
            continue
        entry = next((r for r in data.removed_apis if r.api_version == api_version), None)
        replacement = entry.replacement if entry and entry.replacement else "a served version"
        out.append(Finding(
            "apis.deprecated-api-in-use", Severity.BLOCKING, f"api/{api_version}/{resource}",
            f"clients still call {resource} in {api_version} (seen by kube-apiserver "
            f"{', '.join(sorted(set(servers)))}), which Kubernetes {removed_in} no longer "
            f"serves: they will fail after the upgrade",
            f"find them (audit log entries annotated k8s.io/deprecated=true) and move them to "
            f"{replacement} before upgrading",
        ))
    return out


def cni_findings(state: ClusterState, data: ReleaseData, current: MinorVersion,
                 target: MinorVersion) -> list[Finding]:
    """Whether each CNI plugin's version declares support for every minor up to `target`."""
    if not state.addons.cni:
        return [Finding(
            "cni.not-recognised", Severity.INFO, "cni",
            "no known CNI plugin (calico, cilium, flannel, weave, antrea, kindnet) was found by "
            "its DaemonSet image", "check the CNI plugin's support for the target yourself",
        )]
    minors = [current + i for i in range(1, target.minus(current) + 1)] or [target]
    out = []
    for name, version in state.addons.cni:
        support = data.cni(name)
        subject = f"cni/{name}"
        if support is None:
            out.append(Finding(
                "cni.compatibility-unknown", Severity.INFO, subject,
                f"kubehop's release data says nothing about CNI {name} {version}",
                f"check that {name} {version} supports Kubernetes {target} before upgrading",
            ))
            continue
        answers = {m: support.supports(version, m) for m in minors}
        refused = [m for m, ok in answers.items() if ok is False]
        if refused:
            good = [r for r in support.releases if r.tested and target in r.tested]
            hint = (f"{name} {good[-1].version} ({good[-1].latest_patch or 'latest patch'}) is "
                    f"tested with {target}" if good else f"no {name} release in the data is "
                    f"tested with {target}")
            out.append(Finding(
                "cni.untested-with-target", Severity.WARNING, subject,
                f"{name} {version} is not declared compatible with Kubernetes "
                f"{', '.join(map(str, refused))}",
                f"upgrade {name} first: {hint}",
            ))
        elif any(ok is None for ok in answers.values()):
            out.append(Finding(
                "cni.compatibility-unknown", Severity.INFO, subject,
                f"kubehop's release data does not say whether {name} {version} supports "
                f"Kubernetes {target}",
                f"check {name}'s documentation for {version} and Kubernetes {target}",
            ))
    return out
