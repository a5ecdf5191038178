"""Version parsing: Kubernetes versions, Debian package versions, container image references.

One parser for each, because `packaging` and `semver` get all three wrong: Kubernetes writes
`v1.28.9`, vendors append `-eks-8cb36c9` or `+k3s1` (kept, but ignored for skew), Debian
packages order `1.29.3-1.1` by dpkg's rules (epochs, `~` sorting before everything), and image
references put ports in registry hosts (`localhost:5000/kube-apiserver:v1.28.9`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import total_ordering

from kubehop.model.errors import VersionError

# --- Kubernetes versions -------------------------------------------------------------------

# re.ASCII throughout: `\d` would otherwise accept other scripts' digits ("v1.2٨.0").
_IDENTS = r"[0-9A-Za-z]+(?:[.-][0-9A-Za-z]+)*"  # dot/hyphen-separated, none empty
_KUBE_RE = re.compile(
    r"v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    rf"(?:-(?P<suffix>{_IDENTS}))?(?:\+(?P<build>{_IDENTS}))?",
    re.ASCII,
)
_MINOR_RE = re.compile(r"v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)", re.ASCII)
# Upstream pre-releases: v1.30.0-alpha.3, -beta.0, -rc.1 (kubernetes/release tagging); what
# follows is vendor text, e.g. the commit count of a source build `v1.30.0-alpha.3.123+0fa1b2c`.
_PRE_RE = re.compile(
    r"(?P<kind>alpha|beta|rc)(?:\.(?P<num>\d+))?(?:(?P<sep>[.-])(?P<rest>.+))?", re.ASCII
)
_PRE_RANK = {"alpha": 0, "beta": 1, "rc": 2}
_RELEASE_RANK = 3


@total_ordering
@dataclass(frozen=True, slots=True)
class MinorVersion:
    """A Kubernetes minor release line, e.g. `1.29`."""

    major: int
    minor: int

    def __post_init__(self) -> None:
        if self.major < 0 or self.minor < 0:
            raise VersionError(f"not a Kubernetes minor version: {self.major}.{self.minor}")

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, MinorVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __add__(self, n: int) -> MinorVersion:
        return MinorVersion(self.major, self.minor + n)

    def __sub__(self, n: int) -> MinorVersion:
        return MinorVersion(self.major, self.minor - n)

    def minus(self, other: MinorVersion) -> int:
        """How many minors `self` is ahead of `other` (negative when behind)."""
        if self.major != other.major:
            # Kubernetes has only had major 1; treat another major as infinitely far.
            return 1000 * (self.major - other.major)
        return self.minor - other.minor


@total_ordering
@dataclass(frozen=True, slots=True)
class KubeVersion:
    """A Kubernetes version as components report it (`v1.28.9`, `v1.30.0-rc.1`, `v1.27.8-eks-...`).

    `pre` is an upstream pre-release (`("rc", 1)`), `vendor` a distribution suffix such as
    `eks-8cb36c9` or `gke.1286000`, `build` what follows `+` (`k3s1`). Vendor and build are
    kept for display and install detection but ignored by comparisons and skew.
    """

    major: int
    minor: int
    patch: int
    pre: tuple[str, int] | None = None
    vendor: str | None = None
    build: str | None = None
    original: str = field(default="", compare=False, repr=False)
    # "." when the vendor text continues a pre-release (`-alpha.3.123`), so `full` round-trips.
    vendor_sep: str = field(default="-", compare=False, repr=False)

    @property
    def minor_version(self) -> MinorVersion:
        return MinorVersion(self.major, self.minor)

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None

    @property
    def base(self) -> KubeVersion:
        """The same release without vendor or build suffixes."""
        return KubeVersion(self.major, self.minor, self.patch, self.pre)

    def _key(self) -> tuple[int, int, int, int, int]:
        rank, num = (_PRE_RANK[self.pre[0]], self.pre[1]) if self.pre else (_RELEASE_RANK, 0)
        return (self.major, self.minor, self.patch, rank, num)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KubeVersion):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, KubeVersion):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        """As Kubernetes writes it: `v1.28.9`, `v1.30.0-rc.1` (vendor/build suffixes dropped)."""
        text = f"v{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += f"-{self.pre[0]}.{self.pre[1]}"
        return text

    @property
    def full(self) -> str:
        """With vendor and build suffixes, as the component reported it."""
        text = str(self)
        if self.vendor:
            text += f"{self.vendor_sep if self.pre else '-'}{self.vendor}"
        if self.build:
            text += f"+{self.build}"
        return text

    @property
    def plain(self) -> str:
        """Without the leading `v`: `1.28.9` (package and repository notation)."""
        return str(self)[1:]


def parse_kube_version(text: str) -> KubeVersion:
    """Parse `v1.28.9`, `1.28.9`, `v1.30.0-alpha.3`, `v1.27.8-eks-8cb36c9`, `v1.28.2+k3s1`."""
    raw = text.strip() if isinstance(text, str) else ""
    m = _KUBE_RE.fullmatch(raw)
    if not m:
        raise VersionError(f"not a Kubernetes version: {text!r} (expected e.g. v1.29.15)")
    pre: tuple[str, int] | None = None
    vendor: str | None = None
    vendor_sep = "-"
    suffix = m.group("suffix")
    if suffix:
        p = _PRE_RE.fullmatch(suffix)
        if p:
            pre = (p.group("kind"), int(p.group("num") or 0))
            vendor, vendor_sep = p.group("rest"), p.group("sep") or "-"
        else:
            vendor = suffix
    return KubeVersion(
        int(m.group("major")),
        int(m.group("minor")),
        int(m.group("patch")),
        pre=pre,
        vendor=vendor,
        build=m.group("build"),
        original=raw,
        vendor_sep=vendor_sep,
    )


def parse_minor_version(text: str) -> MinorVersion:
    """Parse `1.29` or `v1.29`."""
    m = _MINOR_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not m:
        raise VersionError(f"not a Kubernetes minor version: {text!r} (expected e.g. 1.29)")
    return MinorVersion(int(m.group("major")), int(m.group("minor")))


# --- Debian package versions ---------------------------------------------------------------

# The revision follows the last hyphen; upstream may hold hyphens and colons only when there is
# a revision or an epoch respectively (checked after matching).
_DEB_RE = re.compile(
    r"(?:(?P<epoch>\d+):)?(?P<upstream>[0-9][A-Za-z0-9.+~:-]*?)(?:-(?P<revision>[A-Za-z0-9.+~]+))?",
    re.ASCII,
)
_DEB_RUN_RE = re.compile(r"([^0-9]*)([0-9]*)", re.ASCII)


def _order(c: str) -> int:
    """dpkg's character weight (lib/dpkg/version.c `order`)."""
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _canonical(part: str) -> tuple[tuple[str, int], ...]:
    """A key equal for exactly the strings `_verrevcmp` finds equal (`1.0`, `1.00`, `1.`)."""
    runs = [(text, int(digits or 0)) for text, digits in _DEB_RUN_RE.findall(part)]
    while runs and runs[-1] == ("", 0):  # trailing zeros compare equal to nothing at all
        runs.pop()
    return tuple(runs)


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's `verrevcmp`: alternate non-digit and digit runs, `~` before everything."""
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not a[i].isdigit()) or (j < lb and not b[j].isdigit()):
            ac = _order(a[i]) if i < la else 0
            bc = _order(b[j]) if j < lb else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and a[i].isdigit() and j < lb and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and a[i].isdigit():
            return 1
        if j < lb and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


@total_ordering
@dataclass(frozen=True, slots=True)
class DebVersion:
    """A Debian package version `[epoch:]upstream[-revision]`, ordered as dpkg orders it."""

    epoch: int
    upstream: str
    revision: str

    def compare(self, other: DebVersion) -> int:
        """Negative, zero or positive, as `dpkg --compare-versions`."""
        if self.epoch != other.epoch:
            return self.epoch - other.epoch
        return _verrevcmp(self.upstream, other.upstream) or _verrevcmp(
            self.revision, other.revision
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DebVersion):
            return NotImplemented
        return self.compare(other) == 0

    def __hash__(self) -> int:
        # Versions equal under dpkg ("1.0", "1.00", "1.", "1.0-0") must hash alike.
        return hash((self.epoch, _canonical(self.upstream), _canonical(self.revision)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, DebVersion):
            return NotImplemented
        return self.compare(other) < 0

    def __str__(self) -> str:
        # Epoch 0 is implied, except when upstream has a colon (which only an epoch permits).
        text = f"{self.epoch}:" if self.epoch or ":" in self.upstream else ""
        text += self.upstream
        if self.revision:
            text += f"-{self.revision}"
        return text

    def kube_version(self) -> KubeVersion:
        """The Kubernetes version a kubelet/kubeadm package carries (`1.29.3-1.1`: v1.29.3)."""
        try:
            return parse_kube_version(self.upstream.replace("~", "-"))
        except VersionError:
            raise VersionError(
                f"package version {str(self)!r} does not carry a Kubernetes version"
            ) from None


def parse_deb_version(text: str) -> DebVersion:
    """Parse a Debian version (`1.29.3-1.1`, `1.28.9-00`, `1:2.0~rc1-3`)."""
    raw = text.strip() if isinstance(text, str) else ""
    m = _DEB_RE.fullmatch(raw)
    if not m:
        raise VersionError(f"not a Debian package version: {text!r} (expected e.g. 1.29.3-1.1)")
    upstream = m.group("upstream")
    if m.group("epoch") is None and ":" in upstream:
        raise VersionError(f"not a Debian package version: {text!r} (a colon needs an epoch)")
    if m.group("revision") is None and "-" in upstream:
        raise VersionError(f"not a Debian package version: {text!r} (bad or empty revision)")
    return DebVersion(int(m.group("epoch") or 0), upstream, m.group("revision") or "")


# --- image references ----------------------------------------------------------------------

# Grammar of github.com/distribution/reference (regexp.go).
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_TAG_RE = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_PATH_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A container image reference: `registry.k8s.io/etcd:3.5.12-0`, optionally `@sha256:...`."""

    registry: str | None
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The last path element: `kube-apiserver` for `registry.k8s.io/kube-apiserver:v1.28.9`."""
        return self.repository.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, tag, None)


def parse_image_ref(text: str) -> ImageRef:
    """Parse an image reference the way the container runtimes split it."""
    raw = text.strip() if isinstance(text, str) else ""
    rest, digest = raw, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.fullmatch(digest):
            raise VersionError(f"not an image reference: {text!r} (bad digest)")
    registry = None
    first, sep, remainder = rest.partition("/")
    # Docker's rule: the first component is a registry host when it has a dot, a port or is
    # localhost (or has capitals, which repositories may not); otherwise `calico/node` is a path.
    if sep and (any(c in first for c in ".:") or first == "localhost" or first != first.lower()):
        if not _HOST_RE.fullmatch(first):
            raise VersionError(f"not an image reference: {text!r} (bad registry {first!r})")
        registry, rest = first, remainder
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise VersionError(f"not an image reference: {text!r} (bad tag {tag!r})")
    if not rest or not all(_PATH_RE.fullmatch(part) for part in rest.split("/")):
        raise VersionError(f"not an image reference: {text!r}")
    return ImageRef(registry, rest, tag, digest)


def image_kube_version(image: str) -> KubeVersion | None:
    """The Kubernetes version in a control-plane image tag, or None when the tag is not one."""
    try:
        ref = parse_image_ref(image)
        return parse_kube_version(ref.tag) if ref.tag else None
    except VersionError:
        return None
