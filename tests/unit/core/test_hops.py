"""plan_hops: one hop per minor, intermediate minors at their newest known patch."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubehop.core.hops import newest_patch, plan_hops
from kubehop.model.errors import UsageError
from kubehop.model.versions import KubeVersion, MinorVersion, parse_kube_version

V = parse_kube_version

KNOWN = [
    V("v1.27.3"), V("v1.27.16"), V("v1.28.0"), V("v1.28.9"), V("v1.28.15"), V("v1.29.0-rc.1"),
    V("v1.29.0"), V("v1.29.15"), V("v1.30.0-alpha.3"), V("v1.30.2"), V("v1.30.14"),
    V("v1.31.0"), V("v1.31.13"), V("v1.32.0-rc.2"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("current", "target", "hops"),
    [
        pytest.param("v1.28.9", "v1.28.15", ["v1.28.15"], id="patch-only"),
        pytest.param("v1.28.9", "v1.29.3", ["v1.29.3"], id="one-minor-pinned-unknown-patch"),
        pytest.param("v1.28.9", "v1.29.15", ["v1.29.15"], id="one-minor"),
        pytest.param("v1.28.9", "v1.31.0", ["v1.29.15", "v1.30.14", "v1.31.0"], id="three-minors"),
        pytest.param("v1.27.3", "v1.29.0", ["v1.28.15", "v1.29.0"], id="intermediate-newest"),
        pytest.param("v1.29.0-rc.1", "v1.29.0", ["v1.29.0"], id="from-a-pre-release"),
        pytest.param("v1.30.2", "v1.32.0-rc.2", ["v1.31.13", "v1.32.0-rc.2"], id="to-pinned-rc"),
        pytest.param("v1.27.8-eks-8cb36c9", "v1.28.9", ["v1.28.9"], id="vendor-current"),
    ],
)
def test_pinned_target(current: str, target: str, hops: list[str]) -> None:
    assert [str(h) for h in plan_hops(V(current), V(target), KNOWN)] == hops


@pytest.mark.parametrize(
    ("current", "target", "hops"),
    [
        pytest.param("v1.28.9", "1.28", ["v1.28.15"], id="same-minor-newest-patch"),
        pytest.param("v1.28.9", "1.29", ["v1.29.15"], id="next-minor-not-the-rc"),
        pytest.param("v1.28.9", "1.31", ["v1.29.15", "v1.30.14", "v1.31.13"], id="three"),
    ],
)
def test_minor_target(current: str, target: str, hops: list[str]) -> None:
    major, minor = target.split(".")
    got = plan_hops(V(current), MinorVersion(int(major), int(minor)), KNOWN)
    assert [str(h) for h in got] == hops


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        ("v1.29.3", V("v1.28.9"), "cannot upgrade from v1.29.3 to v1.28.9: that is a downgrade"),
        ("v1.29.3", V("v1.29.1"), "cannot upgrade from v1.29.3 to v1.29.1: that is a downgrade"),
        (
            "v1.29.3",
            MinorVersion(1, 28),
            "cannot upgrade from v1.29.3 to 1.28: that is a downgrade",
        ),
        ("v1.29.3", V("v1.29.3"), "the cluster already runs v1.29.3: nothing to upgrade"),
        ("v1.29.15", MinorVersion(1, 29), "the cluster already runs v1.29.15: nothing to upgrade"),
        (
            "v1.29.3",
            V("v2.0.0"),
            "cannot upgrade from v1.29.3 to v2.0.0: kubehop upgrades within one major",
        ),
        ("v1.31.0", MinorVersion(1, 33), "no known release of Kubernetes 1.32, needed as an inter"),
        ("v1.31.0", MinorVersion(1, 32), "no known release of Kubernetes 1.32, needed as the targ"),
        ("v1.25.0", V("v1.27.3"), "no known release of Kubernetes 1.26, needed as an intermed"),
    ],
)
def test_refused(current: str, target: KubeVersion | MinorVersion, message: str) -> None:
    with pytest.raises(UsageError, match="^" + message.replace(".", r"\.")) as info:
        plan_hops(V(current), target, KNOWN)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_newest_patch_skips_pre_releases() -> None:
    assert newest_patch(MinorVersion(1, 32), KNOWN) is None
    assert newest_patch(MinorVersion(1, 30), KNOWN) == V("v1.30.14")


# --- properties ----------------------------------------------------------------------------

patches = st.integers(min_value=0, max_value=30)
minors = st.integers(min_value=20, max_value=40)


@st.composite
def known_releases(draw: st.DrawFn) -> list[KubeVersion]:
    """At least one release per minor 1.20-1.40, plus some pre-releases."""
    releases = [KubeVersion(1, m, draw(patches)) for m in range(20, 41)]
    releases += draw(st.lists(st.builds(KubeVersion, st.just(1), minors, patches)))
    releases += draw(
        st.lists(st.builds(KubeVersion, st.just(1), minors, patches, st.just(("rc", 1))))
    )
    return releases


@given(known=known_releases(), current=st.builds(KubeVersion, st.just(1), minors, patches),
       data=st.data())  # fmt: skip
def test_hops_never_skip_a_minor(known: list[KubeVersion], current: KubeVersion, data) -> None:
    target_minor = MinorVersion(1, data.draw(st.integers(current.minor, 40)))
    pinned = data.draw(st.booleans())
    target = KubeVersion(1, target_minor.minor, data.draw(patches)) if pinned else target_minor
    try:
        hops = plan_hops(current, target, known)
    except UsageError:
        # Only when the target is not newer than the current version.
        final = target if pinned else newest_patch(target_minor, known)
        assert final is not None
        assert final <= current
        return
    sequence = [current, *hops]
    assert all(a < b for a, b in pairwise(sequence))
    assert all(b.minor_version.minus(a.minor_version) <= 1 for a, b in pairwise(sequence))
    assert hops[-1].minor_version == target_minor
    if pinned:
        assert hops[-1] == target
    assert not any(h.is_prerelease for h in hops[:-1])
    for hop in hops[:-1] if pinned else hops:
        assert hop == newest_patch(hop.minor_version, known)
