"""Package repositories as pkgs.k8s.io serves them: one per minor, deb and rpm layouts.

Each repository holds every patch of its minor from the release data (`1.29.15-1.1` for deb,
`1.29.15-150500.1.1` for rpm) of kubeadm, kubelet and kubectl, plus that minor's cri-tools and
kubernetes-cni. A node sees only what its source files name: `/etc/apt/sources.list(.d)` (one-line
and deb822 formats) or `/etc/yum.repos.d/*.repo`. The legacy apt.kubernetes.io /
packages.cloud.google.com / yum.kubernetes.io repositories, shut down in March 2024, and
minors pkgs.k8s.io never had answer 404 like a dead repository.

Packages require what pkgs.k8s.io's builds require (`requires`): kubeadm 1.28 and 1.29 need
cri-tools >= 1.28.0, kubeadm 1.30 and 1.31 cri-tools >= 1.30.0, kubelet from 1.28
kubernetes-cni >= 1.2.0, so apt and dnf move cri-tools along with kubeadm at 1.30.
"""

from __future__ import annotations

import contextlib
import functools
import posixpath
import re
from dataclasses import dataclass, field

from kubehop.data import load_release_data
from kubehop.lab.node.config import DEB_REVISION, RPM_RELEASE
from kubehop.lab.node.fs import FsError, NodeFS
from kubehop.model.versions import MinorVersion, parse_deb_version

_URI_RE = re.compile(
    r"https?://(?:pkgs\.k8s\.io|prod-cdn\.packages\.k8s\.io/repositories/isv:/kubernetes:)"
    r"/core:/stable:/v(?P<minor>\d+\.\d+)/(?P<kind>deb|rpm)/?$")
FIRST_MINOR = MinorVersion(1, 24)  # pkgs.k8s.io starts at v1.24
CDN = "https://prod-cdn.packages.k8s.io/repositories/isv:/kubernetes:"
# kubernetes-cni shipped in each minor's repository [U: approximate].
_CNI = {27: "1.2.0", 28: "1.2.0", 29: "1.3.0", 30: "1.4.0", 31: "1.5.1", 32: "1.6.0"}
PACKAGE_SIZES = {"kubeadm": "10.2 MB", "kubelet": "20.5 MB", "kubectl": "10.5 MB",
                 "cri-tools": "20.3 MB", "kubernetes-cni": "31.9 MB"}


# What pkgs.k8s.io's builds require, from 1.28 on (kubernetes/release
# cmd/krel/templates/latest/metadata.yaml, rendered into each spec's `Requires:`; the lab's
# scenarios start at 1.28): package → ((from, before or None, ((dependency, minimum), …)), …).
# kubeadm's `kubelet >= 1.19.0` and `kubectl >= 1.19.0` (to 1.29) always hold here.
_REQUIRES: dict[str, tuple[tuple[str, str | None, tuple[tuple[str, str], ...]], ...]] = {
    "kubeadm": (("1.28.0", "1.30.0", (("kubernetes-cni", "1.2.0"), ("cri-tools", "1.28.0"))),
                ("1.30.0", "1.32.0", (("cri-tools", "1.30.0"),))),
    "kubelet": (("1.28.0", None, (("kubernetes-cni", "1.2.0"),)),),
}


def requires(name: str, version: str) -> tuple[tuple[str, str], ...]:
    """(dependency, minimum version) pairs that `version` of package `name` requires."""
    v = parse_deb_version(version.partition(":")[2] if ":" in version else version)
    for first, before, deps in _REQUIRES.get(name, ()):
        if v.compare(parse_deb_version(first)) >= 0 and (
                before is None or v.compare(parse_deb_version(before)) < 0):
            return deps
    return ()


def satisfies(version: str | None, minimum: str) -> bool:
    """Whether an installed or chosen `version` meets `>= minimum`."""
    return version is not None and parse_deb_version(version).compare(
        parse_deb_version(minimum)) >= 0


def sort_versions(versions: list[str]) -> list[str]:
    """Newest first, in dpkg order (rpm versions of these packages order the same way)."""
    return sorted(versions, key=parse_deb_version, reverse=True)


@dataclass(frozen=True, slots=True)
class Repo:
    """A live pkgs.k8s.io repository for one minor."""

    kind: str  # deb | rpm
    minor: str  # "1.29"
    uri: str  # as the source file wrote it

    @property
    def label(self) -> str:
        """How apt names it in policy/madison output (`https://pkgs.k8s.io/…/deb  Packages`)."""
        return f"{self.uri.rstrip('/')}  Packages"

    @property
    def cdn(self) -> str:
        return f"{CDN}/core:/stable:/v{self.minor}/{self.kind}"

    def packages(self) -> dict[str, list[str]]:
        return _catalog(self.kind, self.minor)


@functools.cache
def _catalog(kind: str, minor: str) -> dict[str, list[str]]:
    major, _, mnr = minor.partition(".")
    patches = load_release_data().patches(MinorVersion(int(major), int(mnr)))
    rev = DEB_REVISION if kind == "deb" else RPM_RELEASE
    out = {p: sort_versions([f"{v.plain}-{rev}" for v in patches])
           for p in ("kubeadm", "kubelet", "kubectl")}
    if patches:
        out["cri-tools"] = [f"{minor}.0-{rev}"]
        cni = _CNI.get(int(mnr), "1.2.0" if int(mnr) < 27 else "1.6.0")
        out["kubernetes-cni"] = [f"{cni}-{'2.1' if cni == '1.2.0' and kind == 'deb' else rev}"]
    return out


def repo_for(uri: str, kind: str) -> Repo | None:
    """The live repository at `uri`, or None when it answers 404 (legacy, unknown, no minor)."""
    m = _URI_RE.match(uri.strip())
    if not m or m.group("kind") != kind:
        return None
    minor = m.group("minor")
    major, _, mnr = minor.partition(".")
    if MinorVersion(int(major), int(mnr)) < FIRST_MINOR or not _catalog(kind, minor)["kubeadm"]:
        return None
    return Repo(kind, minor, uri.strip())


# --- apt ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AptSource:
    """One `deb` entry of a sources file."""

    uri: str
    suite: str
    components: tuple[str, ...]
    file: str
    signed_by: str = ""

    @property
    def flat(self) -> bool:
        return self.suite.endswith("/")

    def describe(self, what: str) -> str:
        """apt's name for an index of this source: `URI  InRelease` or `URI suite InRelease`."""
        base = self.uri.rstrip("/")
        return f"{base}  {what}" if self.flat else f"{base} {self.suite} {what}"


def _one_line(line: str, file: str) -> AptSource | None:
    line = line.split("#", 1)[0].strip()
    if not line.startswith("deb "):
        return None
    rest = line[4:].strip()
    options = ""
    if rest.startswith("["):
        options, _, rest = rest[1:].partition("]")
        rest = rest.strip()
    signed = next((o.partition("=")[2] for o in options.split() if o.startswith("signed-by=")),
                  "")
    parts = rest.split()
    if len(parts) < 2:
        return None
    return AptSource(parts[0], parts[1], tuple(parts[2:]), file, signed)


def _deb822(text: str, file: str) -> list[AptSource]:
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith((" ", "#")):
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                out.append(AptSource(uri, suite, tuple(fields.get("components", "").split()), file,
                                     fields.get("signed-by", "")))
    return out


def apt_sources(fs: NodeFS, sourcelist: str = "/etc/apt/sources.list",
                sourceparts: str = "/etc/apt/sources.list.d") -> list[AptSource]:
    """Every `deb` source the node's apt configuration names, in apt's reading order:
    `Dir::Etc::sourcelist` (a `.sources` name is read as deb822), then the files of
    `Dir::Etc::sourceparts` by name (`-`: none) — apt-pkg/sourcelist.cc `ReadMainList`."""
    files = [sourcelist] if sourcelist not in ("", "-", "/dev/null") else []
    if sourceparts not in ("", "-", "/dev/null"):
        with contextlib.suppress(FsError):
            files += [posixpath.join(sourceparts, f) for f in sorted(fs.listdir(sourceparts))
                      if f.endswith((".list", ".sources"))]
    out: list[AptSource] = []
    for path in files:
        if not fs.is_file(path):
            continue
        text = fs.read(path)
        if path.endswith(".sources"):
            out += _deb822(text, path)
        else:
            out += [s for line in text.splitlines() if (s := _one_line(line, path))]
    return out


def signed_by_conflict(sources: list[AptSource]) -> str | None:
    """apt's error when one repository is named twice with different `Signed-By` values (every
    apt command then refuses to read the sources: apt-pkg/metaindex.cc / deb/debmetaindex.cc)."""
    seen: dict[tuple[str, str], str] = {}
    for src in sources:
        key = (src.uri.rstrip("/"), src.suite)
        other = seen.setdefault(key, src.signed_by)
        if other != src.signed_by:
            return (f"E: Conflicting values set for option Signed-By regarding source "
                    f"{src.uri} {src.suite}: {other} != {src.signed_by}\n"
                    "E: The list of sources could not be read.\n")
    return None


# --- yum / dnf ---------------------------------------------------------------------------------


@dataclass(slots=True)
class YumRepo:
    """One `[id]` section of a .repo file."""

    id: str
    name: str = ""
    baseurl: str = ""
    enabled: bool = True
    exclude: list[str] = field(default_factory=list)


def yum_repos(fs: NodeFS) -> list[YumRepo]:
    """The repositories of /etc/yum.repos.d/*.repo, in file order."""
    out: list[YumRepo] = []
    try:
        names = fs.listdir("/etc/yum.repos.d")
    except FsError:
        return out
    for name in names:
        if not name.endswith(".repo"):
            continue
        current: YumRepo | None = None
        for raw in fs.read(f"/etc/yum.repos.d/{name}").splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = YumRepo(line[1:-1].strip())
                out.append(current)
            elif current is not None and "=" in line:
                key, _, value = (s.strip() for s in line.partition("="))
                if key == "name":
                    current.name = value
                elif key == "baseurl":
                    current.baseurl = value.split()[0] if value else ""
                elif key == "enabled":
                    current.enabled = value not in ("0", "false", "no")
                elif key in ("exclude", "excludepkgs"):
                    current.exclude += value.replace(",", " ").split()
    return out
