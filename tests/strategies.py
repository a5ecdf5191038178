"""Hypothesis strategies shared by the test suite (attrs keeps its own the same way).

Each strategy yields values the parsers must accept; `*_texts` strategies yield strings, the
others model objects built directly, so round-trip tests compare parse(str(x)) with x.
"""

from __future__ import annotations

from hypothesis import strategies as st

from kubehop.model.versions import DebVersion, ImageRef, KubeVersion, MinorVersion

# --- Kubernetes versions -------------------------------------------------------------------

small_ints = st.integers(min_value=0, max_value=40)
_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)

minor_versions = st.builds(MinorVersion, major=st.just(1), minor=small_ints)
prereleases = st.none() | st.tuples(st.sampled_from(["alpha", "beta", "rc"]), small_ints)
# Vendors start with a name, never alpha/beta/rc (those would read as upstream pre-releases).
vendors = st.none() | st.builds(
    "{}{}{}".format,
    st.sampled_from(["eks", "gke", "aks", "mirantis"]),
    st.sampled_from("-."),
    _alnum,
)
builds = st.none() | st.builds("{}{}".format, st.sampled_from(["k3s", "rke2r", "IKS"]), _alnum)


@st.composite
def kube_versions(draw: st.DrawFn, *, suffixes: bool = True) -> KubeVersion:
    """Kubernetes versions, with vendor/build suffixes unless `suffixes=False`."""
    pre = draw(prereleases)
    vendor = draw(vendors) if suffixes else None
    return KubeVersion(
        major=draw(st.integers(0, 3)),
        minor=draw(small_ints),
        patch=draw(small_ints),
        pre=pre,
        vendor=vendor,
        build=draw(builds) if suffixes else None,
        vendor_sep=draw(st.sampled_from("-.")) if pre and vendor else "-",
    )


def kube_version_texts() -> st.SearchStrategy[str]:
    """Kubernetes versions as components report them, with or without the leading `v`."""
    return st.builds(
        "{}{}".format, st.sampled_from(["v", ""]), kube_versions().map(lambda v: v.full[1:])
    )


# --- Debian package versions ---------------------------------------------------------------

_DEB_CHARS = "0123456789" + "0123456789" + "abzAZ" + ".+~"  # digits twice: longer numbers


@st.composite
def deb_version_texts(draw: st.DrawFn) -> str:
    """Debian versions mixing digits, letters, `.`, `+`, `~`, epochs and revisions (dpkg syntax)."""
    epoch = draw(st.none() | st.integers(0, 3))
    revision = draw(st.none() | st.text(_DEB_CHARS, min_size=1, max_size=5))
    extra = ("-" if revision is not None else "") + (":" if epoch is not None else "")
    upstream = draw(st.sampled_from("0123456789")) + draw(st.text(_DEB_CHARS + extra, max_size=8))
    text = upstream if revision is None else f"{upstream}-{revision}"
    return text if epoch is None else f"{epoch}:{text}"


def kube_deb_versions() -> st.SearchStrategy[DebVersion]:
    """Versions as pkgs.k8s.io (`1.29.3-1.1`) and the old apt repo (`1.28.9-00`) ship them."""
    return st.builds(
        lambda m, p, rev: DebVersion(0, f"1.{m}.{p}", rev),
        small_ints,
        small_ints,
        st.sampled_from(["00", "01", "1.1", "2.1"]),
    )


# --- image references ----------------------------------------------------------------------

# Built from pieces rather than st.from_regex, which is several times slower to draw from.
_lower = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_label = st.builds(
    "{}{}".format, _lower, st.none().map(lambda _: "") | st.builds("-{}".format, _lower)
)
registries = st.none() | st.one_of(
    st.sampled_from(["registry.k8s.io", "docker.io", "quay.io", "localhost", "localhost:5000"]),
    st.builds(
        "{}.{}{}".format,
        _label,
        _label,
        st.sampled_from(["", ":5000", ":443"]),
    ),
)
_path_component = st.builds(
    "{}{}{}".format, _lower, st.sampled_from(["", ".", "_", "__", "-", "--"]), _lower
)
tags = st.builds(
    "{}{}".format,
    st.sampled_from("Av0_"),
    st.text("ABCxyz0123456789_.-", max_size=20),
)
digests = st.binary(min_size=32, max_size=32).map(lambda b: f"sha256:{b.hex()}")


@st.composite
def image_refs(draw: st.DrawFn) -> ImageRef:
    """Image references; without a registry the first path component never looks like a host."""
    registry = draw(registries)
    path = draw(st.lists(_path_component, min_size=1, max_size=3))
    if registry is None and len(path) > 1 and ("." in path[0] or path[0] == "localhost"):
        path[0] = "library"
    return ImageRef(registry, "/".join(path), draw(st.none() | tags), draw(st.none() | digests))
