"""The minor hops of an upgrade: the apiserver never skips a minor, even single-instance.

Rule source: kubernetes/website `version-skew-policy.md` ("require kube-apiserver to not skip
minor versions when upgrading") and kubeadm `policy.go` ("kubeadm can upgrade only 1 minor
version at a time"). Each intermediate minor is taken at its newest known patch, as the same
page recommends ("upgrade components to the most recent patch version of the target minor").
"""

from __future__ import annotations

from collections.abc import Sequence

from kubehop.model.errors import UsageError
from kubehop.model.versions import KubeVersion, MinorVersion


def newest_patch(minor: MinorVersion, known: Sequence[KubeVersion]) -> KubeVersion | None:
    """The newest known release (not a pre-release) of `minor`, or None."""
    releases = [v for v in known if v.minor_version == minor and not v.is_prerelease]
    return max(releases, default=None)


def plan_hops(
    current: KubeVersion, target: KubeVersion | MinorVersion, known: Sequence[KubeVersion]
) -> list[KubeVersion]:
    """The versions to upgrade through, in order, ending at the target.

    One hop per minor after the current one; intermediate hops at the newest known patch of
    their minor; the last hop at `target` when pinned (a `KubeVersion`, taken as given), else at
    the newest known patch of the target minor. A patch-only upgrade is one hop. Raises
    `UsageError` for a downgrade, an upgrade to the version already running, another major, or a
    minor without any known release.
    """
    target_minor = target if isinstance(target, MinorVersion) else target.minor_version
    current_minor = current.minor_version
    if target_minor.major != current_minor.major:
        raise UsageError(
            f"cannot upgrade from {current} to {target}: kubehop upgrades within "
            f"one major version only"
        )
    if target_minor < current_minor:
        raise UsageError(
            f"cannot upgrade from {current} to {target}: that is a downgrade "
            f"(kubehop only upgrades; pick a version newer than {current})"
        )

    hops: list[KubeVersion] = []
    for step in range(1, target_minor.minus(current_minor)):
        minor = current_minor + step
        hops.append(_require_patch(minor, known, current, target, "as an intermediate hop"))

    if isinstance(target, KubeVersion):
        final = target
    else:
        final = _require_patch(target_minor, known, current, target, "as the target")
    if final <= current:
        if final == current:
            raise UsageError(f"the cluster already runs {current}: nothing to upgrade")
        raise UsageError(
            f"cannot upgrade from {current} to {final}: that is a downgrade "
            f"(kubehop only upgrades; pick a version newer than {current})"
        )
    hops.append(final)
    return hops


def _require_patch(
    minor: MinorVersion,
    known: Sequence[KubeVersion],
    current: KubeVersion,
    target: KubeVersion | MinorVersion,
    role: str,
) -> KubeVersion:
    patch = newest_patch(minor, known)
    if patch is None:
        raise UsageError(
            f"no known release of Kubernetes {minor}, needed {role} from {current} to "
            f"{target}; update the release data (kubehop releases)"
        )
    return patch
