"""What the planner refuses, and which version a target string means.

Targets: `1.30` / `v1.30` (newest known patch of that minor), `v1.30.14` / `1.30.14` (exactly;
unknown patches only with `allow_unknown_version`), `latest` (newest known patch), `next-minor`
(newest patch of the next minor), `latest-patch` (newest patch of the running minor).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kubehop.core.hops import newest_patch, plan_hops
from kubehop.model.cluster import ClusterState
from kubehop.model.errors import UsageError, VersionError
from kubehop.model.findings import Finding, Severity
from kubehop.model.plan import PlanOptions
from kubehop.model.releases import ReleaseData
from kubehop.model.versions import KubeVersion, parse_kube_version, parse_minor_version

# Findings the planner deals with itself (it restores drifted manifests or refuses; it
# switches legacy repositories to pkgs.k8s.io), and those they cause.
_HANDLED_PREFIXES = ("drift.", "packages.legacy-repository")
_DISTRIBUTIONS = {"eks": "Amazon EKS", "gke": "Google GKE", "aks": "Azure AKS",
                  "k3s": "k3s", "rke2": "RKE2", "mirantis": "Mirantis"}


def _distribution(version: KubeVersion) -> str:
    text = f"{version.vendor or ''} {version.build or ''}".lower()
    return next((name for key, name in _DISTRIBUTIONS.items() if key in text), "a vendor")


def cluster_version(state: ClusterState) -> KubeVersion | None:
    """The version the cluster is at, for the checks and the planner alike: kubeadm-config's
    kubernetesVersion — what `kubeadm upgrade` plans from; a hand-edited apiserver does not move
    it — else the oldest apiserver's `/version`, else the oldest kube-apiserver image."""
    if state.kubeadm_kubernetes_version is not None:
        return state.kubeadm_kubernetes_version
    known = [a.version for a in state.apiservers if a.version is not None]
    if known:
        return min(known)
    images = [v for n in state.nodes if (v := n.component_version("kube-apiserver"))]
    return min(images, default=None)


def check_installed_by_kubeadm(state: ClusterState) -> KubeVersion:
    """kubeadm's kubernetesVersion; refuses clusters kubeadm did not install."""
    versions = [a.version for a in state.apiservers if a.version]
    versions += [n.kubelet for n in state.nodes if n.kubelet]
    if state.kubeadm_kubernetes_version:
        versions.append(state.kubeadm_kubernetes_version)
    for v in versions:
        if v.vendor or v.build:
            raise UsageError(f"the cluster runs {v.full}, a {_distribution(v)} build, not a "
                             f"kubeadm cluster: upgrade it with its distribution's own tools")
    cluster = state.kubeadm_kubernetes_version
    if cluster is None:
        raise UsageError("the cluster was not installed by kubeadm (no kubeadm-config ConfigMap "
                         "in kube-system): kubehop upgrades kubeadm clusters only")
    if cluster.is_prerelease:
        raise UsageError(f"the cluster runs the pre-release {cluster}: kubehop upgrades "
                         f"releases only")
    return cluster


def refuse_blocking_findings(findings: Sequence[Finding], options: PlanOptions) -> None:
    """Refuse while blocking findings remain that the user did not ignore by id."""
    ignored = set(options.ignore_findings)
    blocking = [f for f in findings if f.severity is Severity.BLOCKING and f.id not in ignored
                and not f.id.startswith(_HANDLED_PREFIXES)
                and not (f.cause or "").startswith(_HANDLED_PREFIXES)]
    if not blocking:
        return
    f = blocking[0]
    more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
    raise UsageError(f"refusing to plan: blocking finding {f.id} on {f.subject}: {f.message}"
                     f"{more}; fix it ({f.fix}) or pass --ignore-finding {f.id}")


@dataclass(frozen=True, slots=True)
class Target:
    """An upgrade target resolved once, at the edge, and handed to the checks and the planner
    alike: the version the cluster is at (`cluster_version`), the final version and the hops
    after the running version, and what resolving it had to say."""

    text: str
    cluster: KubeVersion
    final: KubeVersion
    hops: tuple[KubeVersion, ...]
    warnings: tuple[str, ...] = ()


def resolve(state: ClusterState, target: str, data: ReleaseData,
            options: PlanOptions) -> Target:
    """`target` (`1.30`, `v1.30.14`, `latest`, `next-minor`, `latest-patch`) for `state`."""
    cluster = cluster_version(state)
    if cluster is None:
        raise UsageError("cannot tell which version the cluster runs (no kubeadm-config, no "
                         "apiserver answered /version, no kube-apiserver pod): cannot resolve "
                         f"--to {target}")
    warnings: list[str] = []
    final, hops = resolve_target(target, cluster, data, options, warnings)
    return Target(target, cluster, final, tuple(hops), tuple(warnings))


NAMED_TARGETS = ("latest", "next-minor", "latest-patch")


def check_target_text(target: str) -> str:
    """`target` stripped, when it is a target at all (a named one, a minor or a version);
    UsageError otherwise — before anything touches the cluster."""
    text = target.strip()
    try:
        if text not in NAMED_TARGETS:
            (parse_minor_version if text.count(".") == 1 else parse_kube_version)(text)
    except VersionError:
        raise UsageError(f"bad --to {target!r}: expected a minor (1.30), a version "
                         f"(v1.30.14), latest, next-minor or latest-patch") from None
    return text


def resolve_target(target: str, cluster: KubeVersion, data: ReleaseData, options: PlanOptions,
                   warnings: list[str]) -> tuple[KubeVersion, list[KubeVersion]]:
    """(final version, hops after the running version); hops is empty when `target` is the
    running version (the plan then only completes a half-done upgrade)."""
    known = data.all_versions()
    text = check_target_text(target)
    minor = cluster.minor_version
    if text == "latest":
        final = max((v for v in known if not v.is_prerelease), default=None)
        if final is None:
            raise UsageError("the release data knows no release; update it (kubehop releases)")
    elif text in ("next-minor", "latest-patch"):
        wanted = minor + 1 if text == "next-minor" else minor
        final = newest_patch(wanted, known)
        if final is None:
            raise UsageError(f"no known release of Kubernetes {wanted} for --to {text}; "
                             f"update the release data (kubehop releases)")
    elif text.count(".") == 1:
        wanted = parse_minor_version(text)
        final = newest_patch(wanted, known)
        if final is None:
            raise UsageError(f"no known release of Kubernetes {wanted}; update the release data "
                             f"(kubehop releases) or pin a version with --allow-unknown-version")
    else:
        final = parse_kube_version(text)
        if final.vendor or final.build:
            raise UsageError(f"bad --to {target!r}: kubehop installs upstream releases, "
                             f"without vendor suffixes")
        if final.is_prerelease:
            raise UsageError(f"--to {final} is a pre-release: kubehop upgrades to releases only")
        if not data.is_known(final):
            if not options.allow_unknown_version:
                raise UsageError(f"{final} is not a release the data knows (data of "
                                 f"{data.data_date}); check the version, update the data or "
                                 f"pass --allow-unknown-version")
            warnings.append(f"{final} is not in the release data (of {data.data_date}): "
                            f"planned as asked (--allow-unknown-version)")
    if final == cluster:
        return final, []
    return final, plan_hops(cluster, final, known)
