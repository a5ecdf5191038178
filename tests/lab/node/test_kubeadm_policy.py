"""The lab's kubeadm version policy against upstream's own table.

`TestEnforceVersionPolicies` of kubernetes/kubernetes
`cmd/kubeadm/app/phases/upgrade/policy_test.go`, in two releases: before kubeadm 1.29
(MaximumAllowedMinorVersionKubeletSkew = 1) and from 1.29 (= 3, kubernetes/kubernetes#120825,
which added the "n-3 kubelet" cases). Upstream runs these with the placeholder minimum control
plane version `v1.0.0-placeholder-version` (constants.go, a binary built without a version) and
the release's skew constant whatever the fake kubeadm version, so the table passes both.
"""

from __future__ import annotations

from itertools import pairwise

import pytest

from kubehop.lab.node.kubeadm_policy import (
    PLACEHOLDER_VERSION,
    SemverError,
    SkewPolicyErrors,
    enforce_version_policies,
    format_forced_warning,
    format_policy_errors,
    parse_semantic,
)

# policy_test.go: minimumControlPlaneVersion = v1.3.0, minimumKubeletVersion = v1.3.0,
# currentKubernetesVersion = v1.4.0, and their WithPatch/WithPreRelease/... derivations.
# Columns: name, cluster, kubelet, kubeadm, new, mandatory, skippable, allowExperimental, allowRCs.
_SHARED = [
    ("minor upgrade", "1.3.3", "1.3.3", "1.3.5", "1.3.5", 0, 0, False, False),
    ("major upgrade", "1.3.3", "1.3.2", "1.4.1", "1.4.0", 0, 0, False, False),
    ("downgrade", "1.3.3", "1.3.0", "1.3.3", "1.3.2", 0, 0, False, False),
    ("same version upgrade", "1.3.3", "1.3.3", "1.3.3", "1.3.3", 0, 0, False, False),
    ("new version must be higher than v1.12.0",
     "v1.12.3", "v1.12.3", "v1.12.3", "v1.10.10", 1, 1, False, False),
    ("downgrading two minor versions in one go is not supported",
     "1.6.0", "1.6.0", "1.4.0", "1.4.0", 1, 0, False, False),
    ("kubeadm version must be higher than the new kube version. However, patch version skews "
     "may be forced", "1.3.3", "1.3.3", "1.3.3", "1.3.5", 0, 1, False, False),
    ("kubeadm version must be higher than the new kube version. Trying to upgrade k8s to a "
     "higher minor version than kubeadm itself should never be supported",
     "1.3.3", "1.3.3", "1.3.3", "1.4.0", 1, 0, False, False),
    ("experimental upgrades supported if the flag is set",
     "1.3.3", "1.3.3", "1.4.0-beta.1", "1.4.0-beta.1", 0, 0, True, False),
    ("release candidate upgrades supported if the flag is set (allowRCs)",
     "1.3.3", "1.3.3", "1.4.0-rc.1", "1.4.0-rc.1", 0, 0, False, True),
    ("release candidate upgrades supported if the flag is set (allowExperimental)",
     "1.3.3", "1.3.3", "1.4.0-rc.1", "1.4.0-rc.1", 0, 0, True, False),
    ("the user should not be able to upgrade to an experimental version if they haven't opted "
     "into that", "1.3.3", "1.3.3", "1.4.0-beta.1", "1.4.0-beta.1", 0, 1, False, True),
    ("the user should not be able to upgrade to an release candidate version if they haven't "
     "opted into that", "1.3.3", "1.3.3", "1.4.0-rc.1", "1.4.0-rc.1", 0, 1, False, False),
    ("the user can't use a newer minor version of kubeadm to upgrade an older version of "
     "kubeadm", "1.3.3", "1.3.3", "1.4.0", "1.3.6", 0, 1, False, False),
    ("build release supported at MinimumControlPlaneVersion",
     "1.3.0", "1.3.0", "1.3.0+build", "1.3.0+build", 0, 0, False, False),
]
# Only in the kubeadm <= 1.28 table (kubelet skew 1).
_BEFORE_1_29 = [
    ("upgrading two minor versions in one go is not supported",
     "v1.11.3", "v1.11.3", "v1.13.0", "v1.13.0", 1, 1, False, False),
    ("the maximum skew between the cluster version and the kubelet versions should be one minor "
     "version. This may be forced through though.",
     "v1.12.0", "v1.10.8", "v1.12.0", "v1.12.0", 0, 1, False, False),
]
# Only in the kubeadm >= 1.29 table (kubelet skew 3).
_SINCE_1_29 = [
    ("upgrading two minor versions in one go is not supported",
     "v1.11.3", "v1.11.3", "v1.13.0", "v1.13.0", 1, 0, False, False),
    ("upgrading with n-3 kubelet is supported",
     "v1.14.3", "v1.12.3", "v1.15.0", "v1.15.0", 0, 0, False, False),
    ("upgrading with n-4 kubelet is not supported",
     "v1.14.3", "v1.11.3", "v1.15.0", "v1.15.0", 0, 1, False, False),
    ("the maximum skew between the cluster version and the kubelet versions should be three "
     "minor version.", "v1.13.0", "v1.10.8", "v1.13.0", "v1.13.0", 0, 0, False, False),
    ("the maximum skew between the cluster version and the kubelet versions should be three "
     "minor version. This may be forced through though.",
     "v1.14.0", "v1.10.8", "v1.14.0", "v1.14.0", 0, 1, False, False),
]


def _cases(rows: list[tuple], skew: int) -> list:
    return [pytest.param(*row, skew, id=f"skew{skew}: {row[0]}") for row in rows]


@pytest.mark.parametrize(
    ("name", "cluster", "kubelet", "kubeadm", "new", "mandatory", "skippable",
     "allow_experimental", "allow_rcs", "skew"),
    _cases(_SHARED + _BEFORE_1_29, 1) + _cases(_SHARED + _SINCE_1_29, 3),
)
def test_upstream_policy_table(
    name, cluster, kubelet, kubeadm, new, mandatory, skippable, allow_experimental, allow_rcs,
    skew,
):
    errors = enforce_version_policies(
        new, cluster, kubeadm, [kubelet],
        allow_experimental_upgrades=allow_experimental, allow_rc_upgrades=allow_rcs,
        minimum_control_plane=PLACEHOLDER_VERSION, kubelet_skew=skew,
    )
    assert (len(errors.mandatory), len(errors.skippable)) == (mandatory, skippable), errors
    assert bool(errors) == bool(mandatory or skippable)


def test_kubelet_limit_follows_the_kubeadm_release():
    """kubeadm 1.28 refuses 2-minor-old kubelets; 1.29 accepts 3 and refuses 4."""
    kubelets = ["v1.26.15", "v1.27.16", "v1.26.15"]
    old = enforce_version_policies("v1.28.15", "v1.27.16", "v1.28.15", kubelets)
    assert old.mandatory == ()
    assert old.skippable == (
        "There are kubelets in this cluster that are too old that have these versions "
        "[v1.26.15]",
    )
    assert not enforce_version_policies("v1.29.15", "v1.28.15", "v1.29.15", kubelets)
    four_old = enforce_version_policies("v1.29.15", "v1.28.15", "v1.29.15", ["v1.25.16"])
    assert four_old.skippable == (
        "There are kubelets in this cluster that are too old that have these versions "
        "[v1.25.16]",
    )


def test_two_minors_at_once_gives_kubeadms_fatal_texts_in_order():
    errors = enforce_version_policies("v1.30.2", "v1.28.15", "v1.29.15", ["v1.28.15"])
    assert errors.mandatory == (
        'Specified version to upgrade to "v1.30.2" is too high; kubeadm can upgrade only 1 minor '
        "version at a time",
        'Specified version to upgrade to "v1.30.2" is at least one minor release higher than the '
        "kubeadm minor release (30 > 29). Such an upgrade is not supported",
    )
    assert format_policy_errors(errors, force=True, phased=False) == (
        "the --version argument is invalid due to these fatal errors:\n\n"
        '\t- Specified version to upgrade to "v1.30.2" is too high; kubeadm can upgrade only 1 '
        "minor version at a time\n"
        '\t- Specified version to upgrade to "v1.30.2" is at least one minor release higher than '
        "the kubeadm minor release (30 > 29). Such an upgrade is not supported\n\n"
        "Please fix the misalignments highlighted above and try upgrading again"
    )
    assert format_forced_warning(errors) is None


def test_below_the_minimum_quotes_the_cluster_version_as_upstream_does():
    errors = enforce_version_policies("v1.27.9", "v1.28.15", "v1.29.3", ["v1.28.15"])
    assert errors.mandatory == (
        'Specified version to upgrade to "v1.27.9" is equal to or lower than the minimum '
        'supported version "v1.28.15". Please specify a higher version to upgrade to',
    )
    assert errors.skippable == (
        "Kubeadm version v1.29.3 can only be used to upgrade to Kubernetes version 1.29",
    )
    # The minimum itself (kubeadm's MINOR-1 .0) is allowed.
    assert not enforce_version_policies("v1.28.0", "v1.28.0", "v1.29.3", None).mandatory


def test_patch_newer_than_kubeadm_is_skippable_and_force_passes_with_a_warning():
    errors = enforce_version_policies("v1.29.15", "v1.28.15", "v1.29.3", ["v1.28.15"])
    line = ('Specified version to upgrade to "v1.29.15" is higher than the kubeadm version '
            '"v1.29.3". Upgrade kubeadm first using the tool you used to install kubeadm')
    assert errors == SkewPolicyErrors((), (line,))
    assert format_policy_errors(errors, force=False, phased=True) == (
        f"the version argument is invalid due to these errors:\n\n\t- {line}\n\n"
        "Can be bypassed if you pass the --force flag"
    )
    assert format_policy_errors(errors, force=True, phased=True) is None
    assert format_forced_warning(errors) == (
        "[upgrade/version] Found 1 potential version compatibility errors but skipping since the "
        f"--force flag is set: \n\n\t- {line}\n"
    )


def test_a_vendor_suffix_is_a_go_pre_release():
    """Go's semver sees `-eks-1` as a pre-release: unstable, and below the plain release."""
    errors = enforce_version_policies("v1.29.3-eks-1", "v1.28.15", "v1.29.3", ["v1.28.15"])
    assert errors.mandatory == ()
    assert errors.skippable == (
        'Specified version to upgrade to "v1.29.3-eks-1" is an unstable version and such '
        "upgrades weren't allowed via setting the --allow-*-upgrades flags",
    )
    # A pre-release may jump two minors, with --force.
    jump = enforce_version_policies("v1.30.0-rc.1", "v1.28.15", "v1.30.0-rc.1", [],
                                    allow_rc_upgrades=True)
    assert jump.mandatory == ()
    assert jump.skippable == (
        'Specified version to upgrade to "v1.30.0-rc.1" is too high; kubeadm can upgrade only 1 '
        "minor version at a time",
    )


def test_unreadable_inputs_are_reported_as_kubeadm_reports_them():
    bad_cluster = enforce_version_policies("v1.29.3", "v1.28", "v1.29.3", [])
    assert bad_cluster == SkewPolicyErrors((
        'Unable to fetch cluster version: Couldn\'t parse cluster version: illegal version '
        'string "v1.28"',
    ))
    no_nodes = enforce_version_policies("v1.29.3", "v1.28.15", "v1.29.3", None)
    assert no_nodes.skippable == (
        "Unable to fetch kubelet version: couldn't list all nodes in cluster",
    )
    blank_kubelet = enforce_version_policies("v1.29.3", "v1.28.15", "v1.29.3", ["v1.28.15", ""])
    assert blank_kubelet.skippable == ("couldn't parse kubelet version ",)


def test_downgrade_check_wraps_like_gos_uint_at_minor_zero():
    """`clusterVersion.Minor()-1` is a Go uint: from a v1.0 cluster every target is too low."""
    errors = enforce_version_policies("v1.1.0", "v1.0.5", "v1.1.0", [],
                                      minimum_control_plane=PLACEHOLDER_VERSION)
    assert errors.mandatory == (
        'Specified version to downgrade to "v1.1.0" is too low; kubeadm can downgrade only 1 '
        "minor version at a time",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v1.29", 'illegal version string "v1.29"'),
        ("1.029.0", 'illegal zero-prefixed version component "029" in "1.029.0"'),
        ("v1.30.0-rc.01", 'illegal zero-prefixed version component "01" in "v1.30.0-rc.01"'),
        ("latest", 'could not parse "latest" as version'),
        ("v1.29.0_x", 'could not parse pre-release/metadata (_x) in version "v1.29.0_x"'),
    ],
)
def test_parse_semantic_refuses_what_go_refuses(text, message):
    with pytest.raises(SemverError) as e:
        parse_semantic(text)
    assert str(e.value) == message


def test_semver_order_follows_go():
    order = ["v1.29.0-alpha.1", "v1.29.0-alpha.1.5", "v1.29.0-beta.0", "v1.29.0-rc.2",
             "v1.29.0-rc.10", "v1.29.0", "v1.29.1"]
    parsed = [parse_semantic(v) for v in order]
    assert all(a.less_than(b) for a, b in pairwise(parsed))
    assert parse_semantic("v1.29.0+build").compare(parse_semantic("1.29.0")) == 0
