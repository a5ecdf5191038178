"""Spec of kubehop's version parsers: Kubernetes versions, Debian package versions, image refs."""

from __future__ import annotations

import itertools
import re

import pytest
from debian.debian_support import version_compare
from hypothesis import given, settings

from kubehop.model.errors import VersionError
from kubehop.model.versions import (
    DebVersion,
    KubeVersion,
    MinorVersion,
    image_kube_version,
    parse_deb_version,
    parse_image_ref,
    parse_kube_version,
    parse_minor_version,
)
from tests.strategies import deb_version_texts, image_refs, kube_version_texts, kube_versions

FAST = settings(max_examples=150, deadline=None)
SHA = "sha256:" + "a" * 64


def sign(n: int) -> int:
    return (n > 0) - (n < 0)


# --- Kubernetes versions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields", "shown"),
    [
        ("v1.28.9", (1, 28, 9, None, None, None), "v1.28.9"),
        ("1.28.9", (1, 28, 9, None, None, None), "v1.28.9"),
        (" v1.29.15\n", (1, 29, 15, None, None, None), "v1.29.15"),
        ("v1.30.0-alpha.3", (1, 30, 0, ("alpha", 3), None, None), "v1.30.0-alpha.3"),
        ("v1.30.0-beta.0", (1, 30, 0, ("beta", 0), None, None), "v1.30.0-beta.0"),
        ("v1.30.0-rc.1", (1, 30, 0, ("rc", 1), None, None), "v1.30.0-rc.1"),
        ("v1.27.8-eks-8cb36c9", (1, 27, 8, None, "eks-8cb36c9", None), "v1.27.8"),
        ("v1.28.3-gke.1286000", (1, 28, 3, None, "gke.1286000", None), "v1.28.3"),
        ("v1.28.2+k3s1", (1, 28, 2, None, None, "k3s1"), "v1.28.2"),
        ("v1.27.6+rke2r1", (1, 27, 6, None, None, "rke2r1"), "v1.27.6"),
        ("v1.30.0-rc.1-eks-abc", (1, 30, 0, ("rc", 1), "eks-abc", None), "v1.30.0-rc.1"),
        # a build from source: commits since the pre-release tag, then the commit
        ("v1.30.0-alpha.3.12+0fa1b2", (1, 30, 0, ("alpha", 3), "12", "0fa1b2"), "v1.30.0-alpha.3"),
    ],
)  # fmt: skip
def test_parse_kube_version(text, fields, shown):
    v = parse_kube_version(text)
    assert (v.major, v.minor, v.patch, v.pre, v.vendor, v.build) == fields
    assert str(v) == shown
    assert v.full == "v" + text.strip().removeprefix("v")  # `full` keeps vendor and build


def test_kube_version_views():
    v = parse_kube_version("v1.27.8-eks-8cb36c9")
    assert (v.minor_version, v.plain, v.base.full) == (MinorVersion(1, 27), "1.27.8", "v1.27.8")
    assert not v.is_prerelease
    assert parse_kube_version("v1.30.0-rc.1").is_prerelease


@pytest.mark.parametrize(
    "text",
    ["v1.2", "1.28.9.1", "latest", "", " ", "v01.2.3", "v1.02.3", "V1.28.9", "v1.28.x",
     "v1.28.9-", "v1.28.9+", "v1.28.9-eks-", "v1.28.9 extra", "vv1.28.9", "v1.2٨.0", None],
)  # fmt: skip
def test_parse_kube_version_rejects_garbage_quoting_it(text):
    with pytest.raises(VersionError, match="not a Kubernetes version") as err:
        parse_kube_version(text)
    assert repr(text) in str(err.value)


def test_kube_versions_order_alpha_beta_rc_release():
    chain = ["v1.29.15", "v1.30.0-alpha.1", "v1.30.0-alpha.3", "v1.30.0-beta.0", "v1.30.0-rc.0",
             "v1.30.0-rc.2", "v1.30.0", "v1.30.1", "v1.30.10", "v1.31.0"]  # fmt: skip
    versions = [parse_kube_version(t) for t in chain]
    assert sorted(reversed(versions)) == versions
    assert all(a < b for a, b in itertools.pairwise(versions))


@pytest.mark.parametrize(
    ("a", "b"),
    [("v1.27.8-eks-8cb36c9", "v1.27.8"), ("1.28.2+k3s1", "v1.28.2"),
     ("v1.28.3-gke.1286000", "v1.28.3-gke.9"), ("v1.30.0-rc.1-eks-abc", "v1.30.0-rc.1")],
)  # fmt: skip
def test_vendor_and_build_suffixes_are_ignored_for_equality_and_order(a, b):
    va, vb = parse_kube_version(a), parse_kube_version(b)
    assert (va == vb, hash(va) == hash(vb), va < vb, vb < va) == (True, True, False, False)
    assert len({va, vb, KubeVersion(va.major, va.minor, va.patch, va.pre)}) == 1


@FAST
@given(kube_versions())
def test_kube_version_round_trips(v):
    assert parse_kube_version(str(v)) == v
    again = parse_kube_version(v.full)
    assert (again.vendor, again.build, again.full) == (v.vendor, v.build, v.full)


@FAST
@given(kube_version_texts())
def test_kube_version_text_reparses_to_itself(text):
    v = parse_kube_version(text)
    assert parse_kube_version(str(v)) == v
    assert v.full == "v" + text.removeprefix("v")


@FAST
@given(kube_versions(), kube_versions())
def test_kube_version_order_is_by_release_only(a, b):
    assert (a < b) == (a.base < b.base)
    assert (a == b) == (a.base == b.base) == (not a < b and not b < a)


# --- minor versions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("1.29", (1, 29)), ("v1.30", (1, 30)), ("1.0", (1, 0))]
)
def test_parse_minor_version(text, expected):
    m = parse_minor_version(text)
    assert (m.major, m.minor) == expected
    assert str(m) == text.removeprefix("v")


@pytest.mark.parametrize("text", ["1.29.3", "1", "", "v1.029", "1.x", "latest", None])
def test_parse_minor_version_rejects_garbage_quoting_it(text):
    with pytest.raises(VersionError) as err:
        parse_minor_version(text)
    assert repr(text) in str(err.value)


def test_minor_arithmetic():
    m = MinorVersion(1, 29)
    assert (m + 1, m - 2) == (MinorVersion(1, 30), MinorVersion(1, 27))
    assert ((m + 3).minus(m), m.minus(m + 3)) == (3, -3)
    assert MinorVersion(1, 28) < m < MinorVersion(1, 30) < MinorVersion(2, 0)
    assert parse_kube_version("v1.29.15").minor_version == m
    with pytest.raises(VersionError):
        MinorVersion(1, 0) - 1


# --- Debian package versions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "epoch", "upstream", "revision"),
    [
        ("1.29.3-1.1", 0, "1.29.3", "1.1"), ("1.28.9-00", 0, "1.28.9", "00"), ("7", 0, "7", ""),
        ("1:2.0~rc1-3", 1, "2.0~rc1", "3"), ("1.30.0~rc.1-1.1", 0, "1.30.0~rc.1", "1.1"),
        ("2:1.0-a-b", 2, "1.0-a", "b"),  # the revision follows the last hyphen
        ("1:2:3", 1, "2:3", ""),  # a colon in upstream is allowed once there is an epoch
        ("0:2:3", 0, "2:3", ""),  # ... and then str() must keep even epoch 0
    ],
)  # fmt: skip
def test_parse_deb_version(text, epoch, upstream, revision):
    v = parse_deb_version(text)
    assert (v.epoch, v.upstream, v.revision) == (epoch, upstream, revision)
    assert str(v) == text


@pytest.mark.parametrize(
    "text", ["", "1.0-", "a1.0", "1.0:1", "1.0 1", ":1.0", "-1", "1.0_1", "1:1.0-a:b", "١.0", None]
)
def test_parse_deb_version_rejects_garbage_quoting_it(text):
    with pytest.raises(VersionError) as err:
        parse_deb_version(text)
    assert repr(text) in str(err.value)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.28.9-00", "1.28.9-1.1", -1),  # apt.kubernetes.io revisions sort before pkgs.k8s.io's
        ("1.29.3-1.1", "1.29.10-1.1", -1),  # numbers compare as numbers, not text
        ("1.29.3-1.1", "1.29.3-1.2", -1),
        ("1:1.0", "2.0", 1),  # the epoch wins
        ("0:1.0", "1.0", 0),
        ("1.30.0~rc.1-1.1", "1.30.0-1.1", -1),  # `~` sorts before the release
        ("1.30.0~rc.1-1.1", "1.30.0~rc.2-1.1", -1), ("1.0~", "1.0", -1), ("1.0", "1.0+dfsg", -1),
        ("1.0a", "1.0+", -1),  # letters before other symbols
        ("1.0", "1.00", 0), ("1.0", "1.0-0", 0), ("1.", "1.0", 0), ("1.0", "1.0.0", -1),
    ],
)  # fmt: skip
def test_deb_version_ordering_matches_dpkg(a, b, expected):
    assert sign(version_compare(a, b)) == expected  # the oracle agrees with the table
    va, vb = parse_deb_version(a), parse_deb_version(b)
    assert sign(va.compare(vb)) == expected
    assert (va < vb, va == vb, va > vb) == (expected < 0, expected == 0, expected > 0)
    if expected == 0:
        assert hash(va) == hash(vb)


@pytest.mark.parametrize(
    ("text", "kube"),
    [("1.29.3-1.1", "v1.29.3"), ("1.28.9-00", "v1.28.9"), ("1:1.29.3-1.1", "v1.29.3"),
     ("1.30.0~rc.1-1.1", "v1.30.0-rc.1")],
)  # fmt: skip
def test_deb_kube_version(text, kube):
    assert str(parse_deb_version(text).kube_version()) == kube


def test_deb_kube_version_names_the_package_version():
    with pytest.raises(VersionError, match=r"'2\.0-1'"):
        parse_deb_version("2.0-1").kube_version()


@settings(max_examples=300, deadline=None)
@given(deb_version_texts(), deb_version_texts())
def test_deb_compare_agrees_with_python_debian(a, b):
    va, vb = parse_deb_version(a), parse_deb_version(b)
    assert sign(va.compare(vb)) == sign(version_compare(a, b))
    assert parse_deb_version(str(va)) == va


@settings(max_examples=100, deadline=None)
@given(deb_version_texts(), deb_version_texts(), deb_version_texts())
def test_deb_order_is_a_total_order_consistent_with_compare(a, b, c):
    va, vb, vc = (parse_deb_version(t) for t in (a, b, c))
    assert [va < vb, va == vb, va > vb].count(True) == 1
    assert (va < vb, va == vb) == (va.compare(vb) < 0, va.compare(vb) == 0)
    assert sign(va.compare(vb)) == -sign(vb.compare(va))
    if va <= vb <= vc:
        assert va <= vc
    assert all(x.compare(y) <= 0 for x, y in itertools.pairwise(sorted([vc, va, vb])))


@FAST
@given(deb_version_texts())
def test_dpkg_equal_spellings_are_equal_and_hash_equal(text):
    v = parse_deb_version(text)
    # leading zeros and a `-0` revision do not change a version for dpkg
    padded = re.sub(r"(?<![0-9])([0-9])", r"0\1", str(v)) + ("" if v.revision else "-0")
    assert version_compare(text, padded) == 0
    w = parse_deb_version(padded)
    assert (w == v, hash(w) == hash(v)) == (True, True)


def test_equal_deb_versions_collapse_in_sets():
    assert len({parse_deb_version(t) for t in ["1.0", "1.00", "1.", "0:1.0-0"]}) == 1
    assert DebVersion(0, "1.0", "") == parse_deb_version("1.0")


# --- image references ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("registry.k8s.io/etcd:3.5.12-0", "registry.k8s.io", "etcd", "3.5.12-0", None),
        ("registry.k8s.io/coredns/coredns:v1.10.1", "registry.k8s.io", "coredns/coredns", "v1.10.1",
         None),
        ("docker.io/calico/node:v3.27.0", "docker.io", "calico/node", "v3.27.0", None),
        ("calico/node:v3.27.0", None, "calico/node", "v3.27.0", None),
        ("localhost:5000/x:tag", "localhost:5000", "x", "tag", None),
        ("localhost/pause", "localhost", "pause", None, None),
        ("[::1]:5000/kube-apiserver:v1.28.9", "[::1]:5000", "kube-apiserver", "v1.28.9", None),
        ("quay.io/cilium/cilium:v1.15.1@" + SHA, "quay.io", "cilium/cilium", "v1.15.1", SHA),
        ("nginx@" + SHA, None, "nginx", None, SHA),
        ("busybox", None, "busybox", None, None),
    ],
)  # fmt: skip
def test_parse_image_ref(text, registry, repository, tag, digest):
    ref = parse_image_ref(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert str(ref) == text
    assert ref.name == repository.rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    "text",
    ["", "UPPER", "registry.k8s.io/", "etcd:", "x@sha256:abc", "a//b", "localhost:abc/x",
     "-bad.io/x", "x:tag with space", "reg.io/Etcd:1", "x:" + "t" * 129, None],
)  # fmt: skip
def test_parse_image_ref_rejects_garbage_quoting_it(text):
    with pytest.raises(VersionError) as err:
        parse_image_ref(text)
    assert repr(text) in str(err.value)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("registry.k8s.io/kube-apiserver:v1.28.9", "v1.28.9"),
        ("localhost:5000/kube-proxy:v1.29.3@" + SHA, "v1.29.3"),
        ("registry.k8s.io/etcd:3.5.12-0", "v3.5.12"),  # parses; callers pick the right images
        ("registry.k8s.io/pause", None), ("registry.k8s.io/kube-apiserver:latest", None),
        ("not an image", None),
    ],
)  # fmt: skip
def test_image_kube_version(image, expected):
    v = image_kube_version(image)
    assert (str(v) if v else None) == expected


def test_with_tag_drops_the_digest():
    ref = parse_image_ref("quay.io/cilium/cilium:v1.15.1@" + SHA).with_tag("v1.16.0")
    assert str(ref) == "quay.io/cilium/cilium:v1.16.0"


@FAST
@given(image_refs())
def test_image_ref_round_trips(ref):
    assert parse_image_ref(str(ref)) == ref
