"""kubeadm EnforceVersionPolicies: the upstream policy_test.go table, then exact messages."""

from __future__ import annotations

import pytest

from kubehop.core.kubeadm_policy import (
    VersionSkewPolicyErrors,
    enforce_version_policies,
    format_forced_warning,
    format_policy_errors,
    maximum_allowed_kubelet_skew,
    minimum_control_plane_version,
)
from kubehop.model.versions import parse_kube_version

V = parse_kube_version

# Upstream unit tests run kubeadm without version ldflags: MinimumControlPlaneVersion is then
# the placeholder v1.0.0(-placeholder-version), which these cases pass explicitly.
PLACEHOLDER_MINIMUM = V("v1.0.0")


# (name, cluster, kubelet, kubeadm, new, mandatory, skippable, allow_experimental, allow_rc)
# from kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/policy_test.go
# (minimumControlPlaneVersion = v1.3.0, currentKubernetesVersion = v1.4.0).
UPSTREAM_CASES = [
    ("minor upgrade", "v1.3.3", "v1.3.3", "v1.3.5", "v1.3.5", 0, 0, False, False),
    ("major upgrade", "v1.3.3", "v1.3.2", "v1.4.1", "v1.4.0", 0, 0, False, False),
    ("downgrade", "v1.3.3", "v1.3.0", "v1.3.3", "v1.3.2", 0, 0, False, False),
    ("same version upgrade", "v1.3.3", "v1.3.3", "v1.3.3", "v1.3.3", 0, 0, False, False),
    # mandatory: too low (downgrade 2 minors); skippable: kubeadm 1.12 upgrading to 1.10
    ("new version must be higher than v1.12.0",
     "v1.12.3", "v1.12.3", "v1.12.3", "v1.10.10", 1, 1, False, False),
    # mandatory: two minors at once; skippable: kubelet <-> apiserver skew too large
    ("upgrading two minor versions in one go is not supported",
     "v1.11.3", "v1.11.3", "v1.13.0", "v1.13.0", 1, 1, False, False),
    ("downgrading two minor versions in one go is not supported",
     "v1.6.0", "v1.6.0", "v1.4.0", "v1.4.0", 1, 0, False, False),
    ("kubeadm older patch than the new version may be forced",
     "v1.3.3", "v1.3.3", "v1.3.3", "v1.3.5", 0, 1, False, False),
    ("new minor higher than kubeadm's is never supported",
     "v1.3.3", "v1.3.3", "v1.3.3", "v1.4.0", 1, 0, False, False),
    ("kubelet skew of more than one minor may be forced",
     "v1.12.0", "v1.10.8", "v1.12.0", "v1.12.0", 0, 1, False, False),
    ("experimental upgrades supported if the flag is set",
     "v1.3.3", "v1.3.3", "v1.4.0-beta.1", "v1.4.0-beta.1", 0, 0, True, False),
    ("release candidate upgrades supported if the flag is set",
     "v1.3.3", "v1.3.3", "v1.4.0-rc.1", "v1.4.0-rc.1", 0, 0, False, True),
    ("release candidate upgrades supported with the experimental flag",
     "v1.3.3", "v1.3.3", "v1.4.0-rc.1", "v1.4.0-rc.1", 0, 0, True, False),
    ("no experimental version without opting in",
     "v1.3.3", "v1.3.3", "v1.4.0-beta.1", "v1.4.0-beta.1", 0, 1, False, True),
    ("no release candidate without opting in",
     "v1.3.3", "v1.3.3", "v1.4.0-rc.1", "v1.4.0-rc.1", 0, 1, False, False),
    ("a newer minor of kubeadm cannot upgrade to an older minor",
     "v1.3.3", "v1.3.3", "v1.4.0", "v1.3.6", 0, 1, False, False),
    ("build release supported at MinimumControlPlaneVersion",
     "v1.3.0", "v1.3.0", "v1.3.0+build", "v1.3.0+build", 0, 0, False, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("cluster", "kubelet", "kubeadm", "new", "mandatory", "skippable", "experimental", "rc"),
    [pytest.param(*case[1:], id=case[0]) for case in UPSTREAM_CASES],
)
def test_upstream_table(
    cluster, kubelet, kubeadm, new, mandatory, skippable, experimental, rc
) -> None:
    errors = enforce_version_policies(
        V(new),
        V(cluster),
        V(kubeadm),
        [V(kubelet)],
        allow_experimental_upgrades=experimental,
        allow_rc_upgrades=rc,
        minimum_control_plane=PLACEHOLDER_MINIMUM,
    )
    assert (len(errors.mandatory), len(errors.skippable)) == (mandatory, skippable)
    assert bool(errors) == bool(mandatory or skippable)


def test_build_release_at_the_real_minimum_is_supported() -> None:
    # The upstream case's intent: target == MinimumControlPlaneVersion + build metadata passes.
    errors = enforce_version_policies(
        V("v1.3.0+build"), V("v1.3.0"), V("v1.3.0+build"), [V("v1.3.0")],
        minimum_control_plane=V("v1.3.0"),
    )  # fmt: skip
    assert not errors


def test_minimum_control_plane_is_kubeadm_minor_minus_one() -> None:
    assert minimum_control_plane_version(V("v1.30.7")) == V("v1.29.0")
    errors = enforce_version_policies(V("v1.28.15"), V("v1.28.9"), V("v1.30.7"), [])
    assert errors.mandatory == (
        'Specified version to upgrade to "v1.28.15" is equal to or lower than the minimum '
        'supported version "v1.28.9". Please specify a higher version to upgrade to',
    )
    assert errors.skippable == (
        "Kubeadm version v1.30.7 can only be used to upgrade to Kubernetes version 1.30",
    )
    # exactly the minimum is allowed (upstream: !new.AtLeast(minimum))
    assert not enforce_version_policies(V("v1.29.0"), V("v1.28.9"), V("v1.29.0"), []).mandatory


def test_kubeadm_skipping_a_minor_is_fatal_with_exact_messages() -> None:
    errors = enforce_version_policies(V("v1.30.2"), V("v1.28.9"), V("v1.29.15"), [V("v1.28.9")])
    assert errors.mandatory == (
        'Specified version to upgrade to "v1.30.2" is too high; kubeadm can upgrade only 1 minor '
        "version at a time",
        'Specified version to upgrade to "v1.30.2" is at least one minor release higher than the '
        "kubeadm minor release (30 > 29). Such an upgrade is not supported",
    )
    assert errors.skippable == ()


def test_too_high_pre_release_is_only_skippable() -> None:
    errors = enforce_version_policies(
        V("v1.30.0-rc.1"), V("v1.28.9"), V("v1.30.0-rc.1"), [], allow_rc_upgrades=True
    )
    assert errors.mandatory == ()
    assert errors.skippable == (
        'Specified version to upgrade to "v1.30.0-rc.1" is too high; kubeadm can upgrade only '
        "1 minor version at a time",
    )


def test_downgrade_message() -> None:
    errors = enforce_version_policies(V("v1.31.0"), V("v1.33.0"), V("v1.31.0"), [V("v1.33.0")])
    assert errors.mandatory == (
        'Specified version to downgrade to "v1.31.0" is too low; kubeadm can downgrade only 1 '
        "minor version at a time",
    )


def test_patch_newer_than_kubeadm_and_unstable_messages() -> None:
    errors = enforce_version_policies(V("v1.34.11"), V("v1.34.0"), V("v1.34.0"), [])
    assert errors.skippable == (
        'Specified version to upgrade to "v1.34.11" is higher than the kubeadm version "v1.34.0". '
        "Upgrade kubeadm first using the tool you used to install kubeadm",
    )
    errors = enforce_version_policies(V("v1.30.0-beta.0"), V("v1.29.3"), V("v1.30.0-beta.0"), [])
    assert errors.skippable == (
        'Specified version to upgrade to "v1.30.0-beta.0" is an unstable version and such '
        "upgrades weren't allowed via setting the --allow-*-upgrades flags",
    )


@pytest.mark.parametrize(
    ("kubeadm", "kubelets", "too_old"),
    [
        # kubeadm 1.28 and earlier: MaximumAllowedMinorVersionKubeletSkew = 1
        ("v1.28.15", ["v1.27.9", "v1.26.3"], "[v1.26.3]"),
        # kubeadm 1.29 and later: 3 (kubernetes/kubernetes PR 120825)
        ("v1.29.15", ["v1.26.3", "v1.25.0"], "[v1.25.0]"),
        ("v1.29.15", ["v1.26.3", "v1.27.1"], None),
        # each version once, in first-seen order
        ("v1.30.1", ["v1.26.3", "v1.25.9", "v1.26.3", "v1.26.1"], "[v1.26.3 v1.25.9 v1.26.1]"),
    ],
)
def test_too_old_kubelets(kubeadm: str, kubelets: list[str], too_old: str | None) -> None:
    new = V(kubeadm)
    cluster = new.minor_version - 1
    errors = enforce_version_policies(new, V(f"v{cluster}.0"), V(kubeadm), [V(k) for k in kubelets])
    prefix = "There are kubelets in this cluster that are too old that have these versions "
    assert errors.skippable == (() if too_old is None else (prefix + too_old,))
    assert errors.mandatory == ()


def test_kubelet_versions_unknown_skips_the_kubelet_check() -> None:
    assert not enforce_version_policies(V("v1.29.3"), V("v1.28.9"), V("v1.29.3"), None)


def test_kubelet_skew_by_kubeadm_release() -> None:
    assert maximum_allowed_kubelet_skew(V("v1.28.15")) == 1
    assert maximum_allowed_kubelet_skew(V("v1.29.0")) == 3


# --- framing ---------------------------------------------------------------------------------

FATAL = VersionSkewPolicyErrors(mandatory=("first", "second"), skippable=("soft",))
SOFT = VersionSkewPolicyErrors(skippable=("soft one", "soft two"))


def test_fatal_framing() -> None:
    assert format_policy_errors(FATAL, force=True) == (
        "the version argument is invalid due to these fatal errors:\n\n"
        "\t- first\n\t- second\n\n"
        "Please fix the misalignments highlighted above and try upgrading again"
    )


def test_skippable_framing_and_force() -> None:
    assert format_policy_errors(SOFT) == (
        "the version argument is invalid due to these errors:\n\n"
        "\t- soft one\n\t- soft two\n\n"
        "Can be bypassed if you pass the --force flag"
    )
    assert format_policy_errors(SOFT, force=True) is None
    assert format_forced_warning(SOFT) == (
        "[upgrade/version] Found 2 potential version compatibility errors but skipping since the "
        "--force flag is set: \n\n\t- soft one\n\t- soft two\n"
    )
    assert format_forced_warning(FATAL) is None


def test_no_errors_no_message() -> None:
    assert format_policy_errors(VersionSkewPolicyErrors()) is None
    assert format_forced_warning(VersionSkewPolicyErrors()) is None


def test_older_kubeadm_names_the_flag() -> None:
    text = format_policy_errors(SOFT, kubeadm_version=V("v1.31.4"))
    assert text is not None
    assert text.startswith("the --version argument is invalid due to these errors:")
    text = format_policy_errors(SOFT, kubeadm_version=V("v1.32.0"))
    assert text is not None
    assert text.startswith("the version argument is invalid")
