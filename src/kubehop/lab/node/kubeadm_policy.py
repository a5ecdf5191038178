"""The lab's own transcription of kubeadm's upgrade version policy (`EnforceVersionPolicies`).

The lab is an oracle independent of kubehop's planner, so this module never imports
`kubehop.core`: it is written from kubernetes/kubernetes, not from kubehop's own policy.
- `cmd/kubeadm/app/phases/upgrade/policy.go`: the checks, their order, their texts, and which
  ones `--force` may skip. `MaximumAllowedMinorVersionKubeletSkew` is 1 in kubeadm up to 1.28
  and 3 from 1.29 (kubernetes/kubernetes#120825, "kubeadm: adjust kubeadm skew policy for
  upgrades"; `policy_test.go` gained "upgrading with n-3 kubelet is supported" with it).
- `cmd/kubeadm/app/constants/constants.go`: `MinimumControlPlaneVersion` is
  `getSkewedKubernetesVersion(-1)`, i.e. the kubeadm binary's MAJOR.(MINOR-1).0, or
  `v1.0.0-placeholder-version` when the binary carries no version (upstream unit tests).
- `cmd/kubeadm/app/phases/upgrade/versiongetter.go`: kubelet versions are the keys of a map
  built from the Node list, so each version counts once; listing nodes may fail
  ("couldn't list all nodes in cluster"), which is skippable.
- `staging/src/k8s.io/apimachinery/pkg/util/version/version.go`: `ParseSemantic`, the
  comparison rules and `PreRelease()`. Any `-suffix` is a pre-release to Go, so a vendor build
  such as `v1.27.8-eks-1` counts as unstable and orders below `v1.27.8`. `Minor()` is a `uint`:
  `clusterMinor - 1` wraps around when the cluster minor is 0.
- Framing: `cmd/kubeadm/app/cmd/upgrade/apply.go` (kubeadm up to 1.31, "the --version
  argument") and `cmd/kubeadm/app/cmd/phases/upgrade/apply/preflight.go` (the phased apply of
  1.32+, "the version argument"); `cmd/kubeadm/app/util/error.go` `FormatErrMsg`.

Go iterates a map in random order; the lab lists too-old kubelet versions in node-list order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# policy.go constants.
MAXIMUM_ALLOWED_MINOR_VERSION_UPGRADE_SKEW = 1
MAXIMUM_ALLOWED_MINOR_VERSION_DOWNGRADE_SKEW = 1
# MaximumAllowedMinorVersionKubeletSkew per kubeadm release (kubernetes/kubernetes#120825).
KUBELET_SKEW_BEFORE_1_29 = 1
KUBELET_SKEW_SINCE_1_29 = 3
# constants.go DefaultKubernetesPlaceholderVersion: the minimum when kubeadm has no version.
PLACEHOLDER_VERSION = "v1.0.0-placeholder-version"

_UINT_MAX = 2**64 - 1  # Go's uint on the 64-bit platforms kubeadm ships for
# version.go versionMatchRE / extraMatchRE; Go's `\s` is [\t\n\f\r ] and `$` the end of text.
_WS = "[\t\n\f\r ]"
_VERSION_RE = re.compile(rf"{_WS}*v?([0-9]+(?:\.[0-9]+)*)(.*)", re.ASCII)
_EXTRA_RE = re.compile(
    rf"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?{_WS}*",
    re.ASCII,
)


class SemverError(ValueError):
    """`version.ParseSemantic` refused the text; the message is Go's."""


@dataclass(frozen=True, slots=True)
class Semver:
    """A `*version.Version` from `ParseSemantic`: three numbers, pre-release, build metadata."""

    major: int
    minor: int
    patch: int
    pre_release: str = ""
    build_metadata: str = ""

    def compare(self, other: Semver) -> int:
        """version.go `compareInternal`: -1, 0 or 1; build metadata never counts."""
        mine, theirs = (self.major, self.minor, self.patch), (other.major, other.minor, other.patch)
        if mine != theirs:
            return 1 if mine > theirs else -1
        a, b = self.pre_release, other.pre_release
        if a == b:
            return 0
        if not a or not b:
            return 1 if not a else -1  # a release is newer than any of its pre-releases
        a_ids, b_ids = a.split("."), b.split(".")
        for x, y in zip(a_ids, b_ids, strict=False):
            if x.isdigit() and y.isdigit() and int(x) != int(y):
                return 1 if int(x) > int(y) else -1
            if not (x.isdigit() and y.isdigit()) and x != y:
                return 1 if x > y else -1  # Go compares the identifiers as byte strings
        if len(a_ids) != len(b_ids):
            return 1 if len(a_ids) > len(b_ids) else -1
        return 0

    def at_least(self, other: Semver) -> bool:
        return self.compare(other) != -1

    def less_than(self, other: Semver) -> bool:
        return self.compare(other) == -1


def parse_semantic(text: str) -> Semver:
    """version.go `ParseSemantic`: `[v]MAJOR.MINOR.PATCH[-pre][+build]`, no leading zeros."""
    m = _VERSION_RE.fullmatch(text)
    if m is None:
        raise SemverError(f"could not parse {_go_quote(text)} as version")
    numbers, extra = m.group(1), m.group(2)
    components = numbers.split(".")
    if len(components) != 3:
        raise SemverError(f"illegal version string {_go_quote(text)}")
    for comp in components:
        if comp.startswith("0") and comp != "0":
            raise SemverError(
                f"illegal zero-prefixed version component {_go_quote(comp)} in {_go_quote(text)}"
            )
        if int(comp) > _UINT_MAX:
            raise SemverError(
                f"illegal non-numeric version component {_go_quote(comp)} in {_go_quote(text)}: "
                f'strconv.ParseUint: parsing {_go_quote(comp)}: value out of range'
            )
    pre = build = ""
    if extra:
        e = _EXTRA_RE.fullmatch(extra)
        if e is None:
            raise SemverError(
                f"could not parse pre-release/metadata ({extra}) in version {_go_quote(text)}"
            )
        pre, build = e.group(1) or "", e.group(2) or ""
        for comp in pre.split("."):
            if comp.isdigit() and comp.startswith("0") and comp != "0":
                raise SemverError(
                    f"illegal zero-prefixed version component {_go_quote(comp)} in "
                    f"{_go_quote(text)}"
                )
    major, minor, patch = (int(c) for c in components)
    return Semver(major, minor, patch, pre, build)


@dataclass(frozen=True, slots=True)
class SkewPolicyErrors:
    """policy.go `VersionSkewPolicyErrors`: mandatory errors stop kubeadm, skippable need -f."""

    mandatory: tuple[str, ...] = ()
    skippable: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        """False where `EnforceVersionPolicies` returns nil."""
        return bool(self.mandatory or self.skippable)


def kubelet_skew_limit(kubeadm_version: Semver) -> int:
    """`MaximumAllowedMinorVersionKubeletSkew` of this kubeadm release."""
    since_1_29 = (kubeadm_version.major, kubeadm_version.minor) >= (1, 29)
    return KUBELET_SKEW_SINCE_1_29 if since_1_29 else KUBELET_SKEW_BEFORE_1_29


def minimum_control_plane_version(kubeadm_version: Semver) -> Semver:
    """constants.go `getSkewedKubernetesVersion(-1)`: MAJOR.(MINOR-1).0 of the kubeadm binary."""
    return Semver(kubeadm_version.major, kubeadm_version.minor - 1, 0)


def enforce_version_policies(
    new_version: str,
    cluster_version: str,
    kubeadm_version: str,
    kubelet_versions: Iterable[str] | None,
    *,
    allow_experimental_upgrades: bool = False,
    allow_rc_upgrades: bool = False,
    minimum_control_plane: str | None = None,
    kubelet_skew: int | None = None,
) -> SkewPolicyErrors:
    """What `kubeadm upgrade apply NEW` concludes before touching anything.

    `new_version` is the normalized argument (must parse: kubeadm rejects it earlier
    otherwise), `cluster_version` the `gitVersion` of `/version`, `kubeadm_version` the binary's
    own gitVersion, `kubelet_versions` every Node's kubeletVersion (None: listing the nodes
    failed). `minimum_control_plane` and `kubelet_skew` replace what the kubeadm version
    implies, as upstream's unit tests do (placeholder minimum; the release's skew constant).
    """
    new = parse_semantic(new_version)
    mandatory: list[str] = []
    skippable: list[str] = []
    try:
        cluster = parse_semantic(cluster_version)
    except SemverError as e:
        # versiongetter.go ClusterVersion wraps the parse error; policy.go wraps it again.
        return SkewPolicyErrors(
            (f"Unable to fetch cluster version: Couldn't parse cluster version: {e}",)
        )
    try:
        kubeadm = parse_semantic(kubeadm_version)
    except SemverError as e:
        return SkewPolicyErrors(
            (f"Unable to fetch kubeadm version: Couldn't parse kubeadm version: {e}",)
        )
    if kubelet_versions is None:
        skippable.append("Unable to fetch kubelet version: couldn't list all nodes in cluster")

    minimum = (
        parse_semantic(minimum_control_plane)
        if minimum_control_plane is not None
        else minimum_control_plane_version(kubeadm)
    )
    if not new.at_least(minimum):
        # Upstream quotes the cluster version here, not the minimum.
        mandatory.append(
            f"Specified version to upgrade to {_go_quote(new_version)} is equal to or lower than "
            f"the minimum supported version {_go_quote(cluster_version)}. Please specify a "
            "higher version to upgrade to"
        )

    # A released target must respect these; a pre-release (CI build) only needs --force.
    skew_errors = skippable if new.pre_release else mandatory
    if new.minor > cluster.minor + MAXIMUM_ALLOWED_MINOR_VERSION_UPGRADE_SKEW:
        skew_errors.append(
            f"Specified version to upgrade to {_go_quote(new_version)} is too high; kubeadm can "
            f"upgrade only {MAXIMUM_ALLOWED_MINOR_VERSION_UPGRADE_SKEW} minor version at a time"
        )
    if new.minor < _uint_sub(cluster.minor, MAXIMUM_ALLOWED_MINOR_VERSION_DOWNGRADE_SKEW):
        skew_errors.append(
            f"Specified version to downgrade to {_go_quote(new_version)} is too low; kubeadm can "
            f"downgrade only {MAXIMUM_ALLOWED_MINOR_VERSION_DOWNGRADE_SKEW} minor version at a "
            "time"
        )

    if kubeadm.less_than(new):
        if new.minor > kubeadm.minor:
            skew_errors.append(
                f"Specified version to upgrade to {_go_quote(new_version)} is at least one minor "
                f"release higher than the kubeadm minor release ({new.minor} > {kubeadm.minor})."
                " Such an upgrade is not supported"
            )
        else:
            skippable.append(
                f"Specified version to upgrade to {_go_quote(new_version)} is higher than the "
                f"kubeadm version {_go_quote(kubeadm_version)}. Upgrade kubeadm first using the "
                "tool you used to install kubeadm"
            )

    if kubeadm.major > new.major or kubeadm.minor > new.minor:
        skippable.append(
            f"Kubeadm version {kubeadm_version} can only be used to upgrade to Kubernetes "
            f"version {kubeadm.major}.{kubeadm.minor}"
        )

    if (e := _unstable_version_error(new, new_version, allow_experimental_upgrades,
                                     allow_rc_upgrades)) is not None:
        skippable.append(e)

    if kubelet_versions is not None:
        skew = kubelet_skew if kubelet_skew is not None else kubelet_skew_limit(kubeadm)
        if (e := _too_old_kubelets(new, kubelet_versions, skew)) is not None:
            skippable.append(e)

    return SkewPolicyErrors(tuple(mandatory), tuple(skippable))


def format_policy_errors(
    errors: SkewPolicyErrors, *, force: bool, phased: bool
) -> str | None:
    """The error `upgrade apply` fails with, or None when it goes on. `phased`: kubeadm 1.32+,
    whose phased apply names "the version argument" (before: "the --version argument")."""
    argument = "the version argument" if phased else "the --version argument"
    if errors.mandatory:
        return (
            f"{argument} is invalid due to these fatal errors:\n\n"
            f"{format_err_msg(errors.mandatory)}\n"
            "Please fix the misalignments highlighted above and try upgrading again"
        )
    if errors.skippable and not force:
        return (
            f"{argument} is invalid due to these errors:\n\n"
            f"{format_err_msg(errors.skippable)}\n"
            "Can be bypassed if you pass the --force flag"
        )
    return None


def format_forced_warning(errors: SkewPolicyErrors) -> str | None:
    """What `upgrade apply --force` prints when it skips skippable errors (None: nothing)."""
    if errors.mandatory or not errors.skippable:
        return None
    return (
        f"[upgrade/version] Found {len(errors.skippable)} potential version compatibility errors "
        f"but skipping since the --force flag is set: \n\n{format_err_msg(errors.skippable)}"
    )


def format_err_msg(errors: Iterable[str]) -> str:
    """util/error.go `FormatErrMsg`: a "\\t- " line per error."""
    return "".join(f"\t- {e}\n" for e in errors)


# --- helpers -------------------------------------------------------------------------------


def _unstable_version_error(
    new: Semver, new_text: str, allow_experimental: bool, allow_rc: bool
) -> str | None:
    """policy.go `detectUnstableVersionError`."""
    if not new.pre_release or allow_experimental:
        return None
    if new.pre_release.startswith("rc") and allow_rc:
        return None
    return (
        f"Specified version to upgrade to {_go_quote(new_text)} is an unstable version and such "
        "upgrades weren't allowed via setting the --allow-*-upgrades flags"
    )


def _too_old_kubelets(new: Semver, kubelet_versions: Iterable[str], skew: int) -> str | None:
    """policy.go `detectTooOldKubelets` over the distinct versions (the getter's map keys)."""
    too_old: list[str] = []
    for text in dict.fromkeys(kubelet_versions):
        try:
            kubelet = parse_semantic(text)
        except SemverError:
            return f"couldn't parse kubelet version {text}"
        if new.minor > kubelet.minor + skew:
            too_old.append(text)
    if not too_old:
        return None
    # Go's %v of a []string.
    return (
        "There are kubelets in this cluster that are too old that have these versions "
        f"[{' '.join(too_old)}]"
    )


def _uint_sub(a: int, b: int) -> int:
    """Go's `uint` subtraction, which wraps around below zero."""
    return (a - b) % (_UINT_MAX + 1)


def _go_quote(text: str) -> str:
    """Go's `%q` for the ASCII strings a version can hold."""
    escapes = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}
    out = "".join(
        escapes.get(c, c if " " <= c <= "~" else f"\\x{ord(c):02x}") for c in text
    )
    return f'"{out}"'
