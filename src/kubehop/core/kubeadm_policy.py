"""kubeadm's `EnforceVersionPolicies`, as a pure function, with kubeadm's exact messages.

Mirrors kubernetes/kubernetes `cmd/kubeadm/app/phases/upgrade/policy.go` (the checks, their
order, their wording and whether `--force` may skip them), `constants.go`
(`MinimumControlPlaneVersion` = kubeadm's MAJOR.(MINOR-1).0) and the framing of
`cmd/kubeadm/app/cmd/upgrade` (`enforceVersionPolicies` + `kubeadmutil.FormatErrMsg`). The lab's
simulated kubeadm prints these texts; kubehop's planner uses the same function to know in
advance what a real kubeadm will refuse.

Deviation: Go's semver treats a vendor suffix (`v1.27.8-eks-1`) as a pre-release; so do the
"is this a pre-release" branches here, but ordering ignores vendor suffixes (as `KubeVersion`
does), where Go would order the suffixed version just below the plain one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kubehop.model.versions import KubeVersion, MinorVersion

# policy.go constants.
MAXIMUM_ALLOWED_MINOR_VERSION_UPGRADE_SKEW = 1
MAXIMUM_ALLOWED_MINOR_VERSION_DOWNGRADE_SKEW = 1
# MaximumAllowedMinorVersionKubeletSkew: 1 up to kubeadm 1.28, 3 from 1.29 (PR 120825).
_KUBELET_SKEW_N3_SINCE = MinorVersion(1, 29)
# `upgrade apply` became phased in kubeadm 1.32 (PR 126032) and its error names "the version
# argument"; earlier releases wrote "the --version argument".
_VERSION_ARGUMENT_RENAMED_IN = MinorVersion(1, 32)


@dataclass(frozen=True, slots=True)
class VersionSkewPolicyErrors:
    """kubeadm's `VersionSkewPolicyErrors`: mandatory errors stop it, skippable need --force."""

    mandatory: tuple[str, ...] = ()
    skippable: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        """True when there is any error (kubeadm returns nil otherwise)."""
        return bool(self.mandatory or self.skippable)


def minimum_control_plane_version(kubeadm_version: KubeVersion) -> KubeVersion:
    """kubeadm's `MinimumControlPlaneVersion`: its own MAJOR.(MINOR-1).0."""
    return KubeVersion(kubeadm_version.major, kubeadm_version.minor - 1, 0)


def maximum_allowed_kubelet_skew(kubeadm_version: KubeVersion) -> int:
    """kubeadm's `MaximumAllowedMinorVersionKubeletSkew` for this kubeadm release."""
    return 3 if kubeadm_version.minor_version >= _KUBELET_SKEW_N3_SINCE else 1


def enforce_version_policies(
    new_version: KubeVersion,
    cluster_version: KubeVersion,
    kubeadm_version: KubeVersion,
    kubelet_versions: Iterable[KubeVersion] | None,
    *,
    allow_experimental_upgrades: bool = False,
    allow_rc_upgrades: bool = False,
    minimum_control_plane: KubeVersion | None = None,
) -> VersionSkewPolicyErrors:
    """What `kubeadm upgrade apply <new_version>` says about the proposed version.

    `cluster_version` is the `gitVersion` of `/version` from whichever apiserver answered;
    `kubelet_versions` are the nodes' kubelet versions (None: kubeadm could not list them, so
    it skips that check). `minimum_control_plane` overrides the minimum derived from kubeadm's
    version (upstream unit tests run with a placeholder `v1.0.0`).
    """
    mandatory: list[str] = []
    skippable: list[str] = []
    new_str = new_version.full
    kubeadm_str = kubeadm_version.full
    new_is_pre = _is_prerelease(new_version)
    minimum = minimum_control_plane or minimum_control_plane_version(kubeadm_version)

    if new_version < minimum:
        # Upstream quotes the cluster version here, not the minimum (policy.go, as written).
        mandatory.append(
            f"Specified version to upgrade to {_q(new_str)} is equal to or lower than the "
            f"minimum supported version {_q(cluster_version.full)}. Please specify a higher "
            f"version to upgrade to"
        )

    if new_version.minor > cluster_version.minor + MAXIMUM_ALLOWED_MINOR_VERSION_UPGRADE_SKEW:
        msg = (
            f"Specified version to upgrade to {_q(new_str)} is too high; kubeadm can upgrade only "
            f"{MAXIMUM_ALLOWED_MINOR_VERSION_UPGRADE_SKEW} minor version at a time"
        )
        (skippable if new_is_pre else mandatory).append(msg)

    if new_version.minor < cluster_version.minor - MAXIMUM_ALLOWED_MINOR_VERSION_DOWNGRADE_SKEW:
        msg = (
            f"Specified version to downgrade to {_q(new_str)} is too low; kubeadm can downgrade "
            f"only {MAXIMUM_ALLOWED_MINOR_VERSION_DOWNGRADE_SKEW} minor version at a time"
        )
        (skippable if new_is_pre else mandatory).append(msg)

    if kubeadm_version < new_version:
        if new_version.minor > kubeadm_version.minor:
            msg = (
                f"Specified version to upgrade to {_q(new_str)} is at least one minor release "
                f"higher than the kubeadm minor release ({new_version.minor} > "
                f"{kubeadm_version.minor}). Such an upgrade is not supported"
            )
            (skippable if new_is_pre else mandatory).append(msg)
        else:
            skippable.append(
                f"Specified version to upgrade to {_q(new_str)} is higher than the kubeadm "
                f"version {_q(kubeadm_str)}. Upgrade kubeadm first using the tool you used to "
                f"install kubeadm"
            )

    if kubeadm_version.major > new_version.major or kubeadm_version.minor > new_version.minor:
        skippable.append(
            f"Kubeadm version {kubeadm_str} can only be used to upgrade to Kubernetes version "
            f"{kubeadm_version.major}.{kubeadm_version.minor}"
        )

    unstable = _unstable_version_error(new_version, allow_experimental_upgrades, allow_rc_upgrades)
    if unstable:
        skippable.append(unstable)

    if kubelet_versions is not None:
        too_old = _too_old_kubelets(new_version, kubelet_versions, kubeadm_version)
        if too_old:
            skippable.append(too_old)

    return VersionSkewPolicyErrors(tuple(mandatory), tuple(skippable))


def format_policy_errors(
    errors: VersionSkewPolicyErrors,
    *,
    force: bool = False,
    kubeadm_version: KubeVersion | None = None,
) -> str | None:
    """The error kubeadm fails with, or None when it proceeds (no errors, or --force and only
    skippable ones). `kubeadm_version` picks the wording (before 1.32: "the --version argument")."""
    argument = "the version argument"
    if kubeadm_version is not None and kubeadm_version.minor_version < _VERSION_ARGUMENT_RENAMED_IN:
        argument = "the --version argument"
    if errors.mandatory:
        return (
            f"{argument} is invalid due to these fatal errors:\n\n"
            f"{_format_err_msg(errors.mandatory)}\n"
            "Please fix the misalignments highlighted above and try upgrading again"
        )
    if errors.skippable and not force:
        return (
            f"{argument} is invalid due to these errors:\n\n"
            f"{_format_err_msg(errors.skippable)}\n"
            "Can be bypassed if you pass the --force flag"
        )
    return None


def format_forced_warning(errors: VersionSkewPolicyErrors) -> str | None:
    """What kubeadm prints when --force skips skippable errors (None when there are none)."""
    if errors.mandatory or not errors.skippable:
        return None
    return (
        f"[upgrade/version] Found {len(errors.skippable)} potential version compatibility errors "
        f"but skipping since the --force flag is set: \n\n{_format_err_msg(errors.skippable)}"
    )


# --- helpers -------------------------------------------------------------------------------


def _unstable_version_error(
    new_version: KubeVersion, allow_experimental: bool, allow_rc: bool
) -> str | None:
    """policy.go `detectUnstableVersionError`."""
    if not _is_prerelease(new_version) or allow_experimental:
        return None
    if new_version.pre is not None and new_version.pre[0] == "rc" and allow_rc:
        return None
    return (
        f"Specified version to upgrade to {_q(new_version.full)} is an unstable version and such "
        f"upgrades weren't allowed via setting the --allow-*-upgrades flags"
    )


def _too_old_kubelets(
    new_version: KubeVersion, kubelet_versions: Iterable[KubeVersion], kubeadm_version: KubeVersion
) -> str | None:
    """policy.go `detectTooOldKubelets`; versions listed once each, in first-seen order."""
    skew = maximum_allowed_kubelet_skew(kubeadm_version)
    too_old: list[str] = []
    for kubelet in kubelet_versions:
        text = kubelet.full
        if new_version.minor > kubelet.minor + skew and text not in too_old:
            too_old.append(text)
    if not too_old:
        return None
    # Go's %v of a []string: "[v1.26.3 v1.25.9]".
    return (
        "There are kubelets in this cluster that are too old that have these versions "
        f"[{' '.join(too_old)}]"
    )


def _is_prerelease(version: KubeVersion) -> bool:
    """Whether Go's semver sees a pre-release: an upstream tag or any `-suffix`."""
    return version.pre is not None or version.vendor is not None


def _format_err_msg(errors: Iterable[str]) -> str:
    """`kubeadmutil.FormatErrMsg`: one "\\t- error\\n" line per error."""
    return "".join(f"\t- {e}\n" for e in errors)


def _q(text: str) -> str:
    """Go's %q for a version string (no characters there need escaping but these two)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
