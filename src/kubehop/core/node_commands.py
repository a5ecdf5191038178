"""The package commands kubehop sends to nodes, built as data (argv + stdin), never run here.

pkgs.k8s.io publishes one repository per minor (kubernetes.io blog, 2023-08-15), so a minor
upgrade first points the node at the new minor's repository, then (apt) refreshes that source's
list only, unholds, installs the patch with any build (`kubeadm=1.29.15-*`, as the upstream guide
writes it) and holds again; (yum/dnf) lifts a versionlock, installs past the repository's `exclude=`
line, and locks again.

    for cmd in upgrade_packages("debian", MinorVersion(1, 29),
                                {"kubeadm": package_glob("v1.29.15")}):
        await transport.run(node, cmd.argv, sudo=cmd.sudo, stdin=cmd.stdin)

How a node keeps its source (which file, one-line or deb822, which keyring, dnf or dnf5, which
versionlocks) is read from the node (`Packaging`): the commands edit that file and keep that
keyring. Files are written whole with `tee` (stdin carries the content), so the result does not
depend on what the file held before (a legacy apt.kubernetes.io line, a hand edit). `root`
prefixes written paths; only tests set it, to keep files under a throwaway directory.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubehop.core import apt_preferences as ap
from kubehop.model.cluster import AptPin
from kubehop.model.versions import MinorVersion

PACKAGES = ("kubeadm", "kubelet", "kubectl")
APT_SOURCE_FILE = "/etc/apt/sources.list.d/kubernetes.list"
APT_KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
YUM_REPO_FILE = "/etc/yum.repos.d/kubernetes.repo"
KEY_DOWNLOAD = "/tmp/kubehop-Release.key"  # the login user's download, dearmored by root
YUM_REPO_ID = "kubernetes"
YUM_EXCLUDES = ("kubelet", "kubeadm", "kubectl", "cri-tools", "kubernetes-cni")
PKGS_K8S_IO = "https://pkgs.k8s.io/core:/stable:/v{minor}/{kind}/"
# The builds pkgs.k8s.io's OBS project publishes today (kubeadm 1.29.15-1.1, kubeadm-1.29.15-
# 150500.1.1). Plans never name them (a rebuild changes them): they carry `1.29.15-*`.
DEB_REVISION = "1.1"
RPM_RELEASE = "150500.1.1"
# Keep the node's edited config files (the kubelet drop-in) rather than stop at dpkg's prompt.
_DPKG_KEEP_CONFIG = ("-o", "Dpkg::Options::=--force-confdef",
                     "-o", "Dpkg::Options::=--force-confold")
# `apt-get update` of the Kubernetes source alone: another vendor's broken source (an expired
# key) must not fail it, and the lists of the other sources must survive (List-Cleanup=0).
# Error-Mode=any is `--error-on=any` (apt 2.1.16+, salsa.debian.org apt-team/apt commit
# c7123bea): a source that cannot be fetched is an error (exit 100), not a warning with exit 0.
# Older apt ignores the unknown option; the executor then reads the warnings
# (`kubehop.shell.steps.node_commands`).
_APT_UPDATE_SCOPE = ("-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0",
                     "-o", "APT::Update::Error-Mode=any")
_PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]*")
_VERSION_RE = re.compile(r"[0-9][A-Za-z0-9.+~:*-]*")
_PATH_RE = re.compile(r"/[A-Za-z0-9._/+-]+")
_RPM_PUBKEY_RE = re.compile(r"gpg-pubkey-[0-9a-f]{8,40}-[0-9a-f]{1,16}")
APT_FAMILIES = frozenset({"debian", "ubuntu", "deb", "apt"})
YUM_FAMILIES = frozenset({"rhel", "centos", "rocky", "fedora", "rpm", "yum", "dnf"})


@dataclass(frozen=True, slots=True)
class NodeCommand:
    """One command for a node: argv (no shell), its stdin, and whether it needs root."""

    argv: tuple[str, ...]
    description: str
    stdin: str | None = None
    sudo: bool = True

    @property
    def line(self) -> str:
        """The command as a shell-safe line (every argument quoted)."""
        return shlex.join(self.argv)


@dataclass(frozen=True, slots=True)
class PackageSource:
    """Where each minor's packages are published: pkgs.k8s.io, a mirror, or a test repository.

    `url` is a template with `{minor}` (`1.29`) and `{kind}` (`deb` or `rpm`)."""

    url: str = PKGS_K8S_IO
    keyring: str | None = APT_KEYRING  # apt `signed-by=` unless the node names its own
    trusted: bool = False  # apt `trusted=yes` (unsigned local repositories in tests only)
    gpgcheck: bool = True  # rpm: check signatures with `<url>repodata/repomd.xml.key`

    def minor_url(self, minor: MinorVersion, kind: str) -> str:
        return self.url.format(minor=str(minor), kind=kind)


PKGS = PackageSource()


@dataclass(frozen=True, slots=True)
class Packaging:
    """How one node installs Kubernetes packages, as read from it; the defaults are the
    upstream guide's. Nodes that keep their sources alike share one object (and commands).

    `file`: the source file that names the Kubernetes repository (`.list`, deb822 `.sources`
    or a yum `.repo`); `keyring`: its `signed-by` path; `dnf5`: dnf 5 (no `--disableexcludes`);
    `locked`: packages with a dnf versionlock entry; `refresh_key`: the apt keyring is missing or
    expired, so the repository switch fetches the minor's `Release.key` into it first; `pins`:
    the node keeps its packages with an apt preferences pin, rewritten around each install
    instead of holds."""

    family: str = "debian"
    file: str | None = None
    keyring: str | None = None
    dnf5: bool = False
    locked: tuple[str, ...] = ()
    refresh_key: bool = False
    # apt preferences pins kubehop keeps (`apt_preferences.managed_pins`), the other stanzas of
    # their file, and the packages held with apt-mark (only read when pins are kept: a node
    # without pins gets the guide's holds).
    pins: tuple[AptPin, ...] = ()
    pins_other: str = ""
    held: tuple[str, ...] = ()
    # rpm: the node's imported Kubernetes keys (`gpg-pubkey-9a296436-6307a177`), erased before
    # the minor's key is imported when `refresh_key` is set.
    rpm_keys: tuple[str, ...] = ()

    @property
    def apt(self) -> bool:
        return self.family.lower() not in YUM_FAMILIES

    @property
    def source_file(self) -> str:
        return self.file or (APT_SOURCE_FILE if self.apt else YUM_REPO_FILE)

    def __str__(self) -> str:
        return self.family


DEBIAN = Packaging("debian")
RHEL = Packaging("rhel")


def packaging_of(family: str | Packaging) -> Packaging:
    """`family` as a Packaging (an OS family name gets the upstream guide's layout)."""
    if isinstance(family, Packaging):
        return family
    kind = family.lower()
    if kind in APT_FAMILIES:
        return Packaging(kind)
    if kind in YUM_FAMILIES:
        return Packaging(kind)
    raise ValueError(f"unknown OS family {family!r} (known: apt: {', '.join(sorted(APT_FAMILIES))};"
                     f" yum: {', '.join(sorted(YUM_FAMILIES))})")


def _packages(names: Iterable[str]) -> list[str]:
    out = list(names)
    if not out:
        raise ValueError("no packages given")
    for name in out:
        if not _PACKAGE_RE.fullmatch(name):
            raise ValueError(f"not a package name: {name!r}")
    return out


def _versions(versions: Mapping[str, str]) -> list[tuple[str, str]]:
    names = _packages(versions)
    for name in names:
        if not _VERSION_RE.fullmatch(versions[name]):
            raise ValueError(f"not a package version for {name}: {versions[name]!r}")
    return [(name, versions[name]) for name in names]


def _path(path: str) -> str:
    if not _PATH_RE.fullmatch(path) or "/../" in path + "/":
        raise ValueError(f"not a file path kubehop writes: {path!r}")
    return path


def _write_file(path: str, content: str, description: str, root: str) -> NodeCommand:
    # `tee` writes as root what the unprivileged login user pipes to it (`sudo cmd > file`
    # would open the file as that user). Its copy on stdout is harmless.
    return NodeCommand(("tee", root.rstrip("/") + _path(path)), description, stdin=content)


# --- apt (Debian, Ubuntu) ----------------------------------------------------------------------

def apt_source_line(minor: MinorVersion, source: PackageSource = PKGS,
                    keyring: str | None = None) -> str:
    """kubernetes.list's line for `minor`, as the upstream install guide writes it
    (`keyring`: the node's own `signed-by` path, kept)."""
    keyring = keyring or source.keyring
    options = [f"signed-by={keyring}"] if keyring else []
    options += ["trusted=yes"] if source.trusted else []
    bracket = f"[{' '.join(options)}] " if options else ""
    return f"deb {bracket}{source.minor_url(minor, 'deb')} /\n"


def apt_source_stanza(minor: MinorVersion, source: PackageSource = PKGS,
                      keyring: str | None = None) -> str:
    """The same source in deb822 form (a `.sources` file; sources.list(5): a flat repository's
    `Suites:` is a path ending in `/` and it has no `Components:`)."""
    keyring = keyring or source.keyring
    lines = ["Types: deb", f"URIs: {source.minor_url(minor, 'deb')}", "Suites: /"]
    lines += [f"Signed-By: {keyring}"] if keyring else []
    lines += ["Trusted: yes"] if source.trusted else []
    return "\n".join(lines) + "\n"


def switch_apt_repository(minor: MinorVersion, *, source: PackageSource = PKGS,
                          root: str = "", packaging: Packaging = DEBIAN) -> NodeCommand:
    """Point apt at `minor`'s repository: rewrite the node's Kubernetes source file whole,
    in its format, keeping its keyring."""
    path = packaging.source_file
    text = (apt_source_stanza if path.endswith(".sources") else apt_source_line)(
        minor, source, packaging.keyring)
    return _write_file(path, text, f"point apt at the Kubernetes {minor} package repository",
                       root)


def apt_update(source_file: str = APT_SOURCE_FILE, *, root: str = "") -> NodeCommand:
    """Refresh the list of the Kubernetes source only, failing when it cannot be fetched."""
    path = root.rstrip("/") + _path(source_file)
    return NodeCommand(("apt-get", "update", "-o", f"Dir::Etc::sourcelist={path}",
                        *_APT_UPDATE_SCOPE),
                       "refresh the package list of the Kubernetes repository")


def apt_unhold(packages: Iterable[str]) -> NodeCommand:
    names = _packages(packages)
    return NodeCommand(("apt-mark", "unhold", *names), f"release the hold on {', '.join(names)}")


def apt_hold(packages: Iterable[str]) -> NodeCommand:
    names = _packages(packages)
    return NodeCommand(("apt-mark", "hold", *names), f"hold {', '.join(names)} at this version")


def apt_install(versions: Mapping[str, str]) -> NodeCommand:
    """Install versions (`kubeadm=1.29.15-*`: any build of that patch; apt takes the newest);
    fails on held packages, as it should."""
    pairs = _versions(versions)
    return NodeCommand(
        ("apt-get", "install", "-y", *_DPKG_KEEP_CONFIG, *(f"{n}={v}" for n, v in pairs)),
        "install " + ", ".join(f"{n} {v}" for n, v in pairs))


def _plain_of(version: str) -> str | None:
    """The Kubernetes version of a package version or build glob (`1.29.15-*` → `1.29.15`)."""
    m = re.match(r"(?:\d+:)?(\d+\.\d+\.\d+)", version)
    return m.group(1) if m else None


def apt_pin_text(packaging: Packaging, versions: Mapping[str, str]) -> str:
    """The node's preferences file with each pinned package at its version in `versions`
    (package → version or build glob; others keep their stanza): `apt_preferences.rewrite_pins`."""
    plain = {n: p for n, v in versions.items() if (p := _plain_of(v))}
    return ap.rewrite_pins(packaging.pins, plain, packaging.pins_other)


def pins_expect(packaging: Packaging, versions: Mapping[str, str]) -> str:
    """What `observe_nodes` reads back from the file `apt_pin_text` writes (a step's
    `aptPins` expectation)."""
    path = packaging.pins[0].file
    return ap.pins_summary(path, ap.parse_stanzas(path, apt_pin_text(packaging, versions)))


def write_apt_pins(packaging: Packaging, versions: Mapping[str, str], *,
                   root: str = "") -> NodeCommand:
    """Rewrite the node's preferences file whole (same file, same priority), each pinned
    package at its minor (`Pin: version 1.29.*`)."""
    text = apt_pin_text(packaging, versions)
    moved = ", ".join(f"{n} {v}" for n, v in versions.items())
    return _write_file(packaging.pins[0].file, text, f"pin {moved} in the apt preferences", root)


# What pkgs.k8s.io's kubeadm and kubelet require beside each other (kubernetes/release
# cmd/krel/templates/latest/metadata.yaml: kubeadm 1.28-1.29 `cri-tools >= 1.28.0` and
# `kubernetes-cni >= 1.2.0`, 1.30-1.31 `cri-tools >= 1.30.0`; kubelet `kubernetes-cni`). A node
# that holds or versionlocks one of them could not install the next kubeadm ("unmet
# dependencies" / "nothing provides cri-tools"): its hold is released around the install and
# set again after, as the packages' own.
DEPENDENCIES = ("cri-tools", "kubernetes-cni")


def apt_upgrade(minor: MinorVersion, versions: Mapping[str, str], *,
                source: PackageSource = PKGS, switch_repository: bool = True,
                root: str = "", packaging: Packaging = DEBIAN,
                pinned: Mapping[str, str] | None = None) -> list[NodeCommand]:
    """Repository switch (for a minor change), update, unhold, install, hold. A node that
    pins with apt preferences gets its pin rewritten after the install instead (`pinned`:
    every pinned package's version after it, default `versions`), and only its own holds are
    released and put back. After, not before: an explicit `pkg=version` installs whatever
    the pins say (apt 2.6, tests/integration/apt/test_real_apt_pins.py), and an install that
    fails leaves the old pin, which keeps a routine `apt-get upgrade` from moving the
    package's minor."""
    names = [n for n, _ in _versions(versions)]
    first = [switch_apt_repository(minor, source=source, root=root, packaging=packaging)
             ] if switch_repository else []
    update = apt_update(packaging.source_file, root=root)
    deps = [d for d in DEPENDENCIES if d in packaging.held]
    if not packaging.pins:
        keep = [*names, *deps]
        return [*first, update, apt_unhold(keep), apt_install(versions), apt_hold(keep)]
    held = [n for n in names if n in packaging.held] + deps
    return [*first, update, *([apt_unhold(held)] if held else []), apt_install(versions),
            write_apt_pins(packaging, pinned or versions, root=root),
            *([apt_hold(held)] if held else [])]


# --- yum / dnf (RHEL family) -------------------------------------------------------------------

def yum_repo_file(minor: MinorVersion, source: PackageSource = PKGS) -> str:
    """kubernetes.repo for `minor`, as the upstream install guide writes it."""
    url = source.minor_url(minor, "rpm")
    lines = [f"[{YUM_REPO_ID}]", "name=Kubernetes", f"baseurl={url}", "enabled=1",
             f"gpgcheck={int(source.gpgcheck)}"]
    if source.gpgcheck:
        lines.append(f"gpgkey={yum_key_url(minor, source)}")
    lines.append(f"exclude={' '.join(YUM_EXCLUDES)}")
    return "\n".join(lines) + "\n"


def switch_yum_repository(minor: MinorVersion, *, source: PackageSource = PKGS,
                          root: str = "", packaging: Packaging = RHEL) -> NodeCommand:
    """Point yum/dnf at `minor`'s repository (rewrite the node's Kubernetes .repo file whole)."""
    return _write_file(packaging.source_file, yum_repo_file(minor, source),
                       f"point yum at the Kubernetes {minor} package repository", root)


def yum_key_url(minor: MinorVersion, source: PackageSource = PKGS) -> str:
    """The minor's signing key, as the repository file's `gpgkey=` names it."""
    return f"{source.minor_url(minor, 'rpm').rstrip('/')}/repodata/repomd.xml.key"


def import_rpm_key(minor: MinorVersion, old_keys: Iterable[str] = (), *,
                   source: PackageSource = PKGS) -> list[NodeCommand]:
    """Replace rpm's Kubernetes key with `minor`'s: erase each old gpg-pubkey, then `rpm
    --import` the minor's `repomd.xml.key`. The erase comes first because rpm keeps a key whose
    id it already has (lib/rpmkeyring.c rpmKeyringAddKey: "already have key"), and dnf does not
    re-import one whose expiry was extended: kubernetes/release#3840's remedy. Each erase runs
    only while that key is installed, so a step re-run after a halt does not fail on it."""
    out = []
    for key in old_keys:
        if not _RPM_PUBKEY_RE.fullmatch(key):
            raise ValueError(f"not an rpm public key package: {key!r}")
        out.append(NodeCommand(
            ("sh", "-c", f"rpm -q --quiet {key} || exit 0; rpm -e {key}"),
            f"remove the old Kubernetes repository key {key}"))
    out.append(NodeCommand(("rpm", "--import", yum_key_url(minor, source)),
                           f"import the Kubernetes {minor} repository key"))
    return out


def yum_install(versions: Mapping[str, str], *, tool: str = "yum",
                dnf5: bool = False) -> NodeCommand:
    """Install versions (`kubeadm-1.29.15-*`) past the repository's `exclude=` line: dnf 4's
    `--disableexcludes=kubernetes`, or dnf 5's `--setopt=disable_excludes=kubernetes` (dnf 5
    dropped the former; the upstream install guide's DNF5 form)."""
    if tool not in ("yum", "dnf"):
        raise ValueError(f"not a package tool: {tool!r}")
    pairs = _versions(versions)
    past = (f"--setopt=disable_excludes={YUM_REPO_ID}" if dnf5
            else f"--disableexcludes={YUM_REPO_ID}")
    return NodeCommand(
        ("dnf" if dnf5 else tool, "install", "-y", *(f"{n}-{v}" for n, v in pairs), past),
        "install " + ", ".join(f"{n} {v}" for n, v in pairs))


def dnf_versionlock(verb: str, packages: Iterable[str]) -> NodeCommand:
    """`dnf versionlock delete|add NAMES` (the plugin's commands in dnf 4 and dnf 5)."""
    if verb not in ("add", "delete"):
        raise ValueError(f"not a versionlock command: {verb!r}")
    names = _packages(packages)
    what = "lift the versionlock on" if verb == "delete" else "versionlock"
    return NodeCommand(("dnf", "versionlock", verb, *names), f"{what} {', '.join(names)}")


def yum_upgrade(minor: MinorVersion, versions: Mapping[str, str], *,
                source: PackageSource = PKGS, switch_repository: bool = True,
                root: str = "", tool: str = "yum", packaging: Packaging = RHEL
                ) -> list[NodeCommand]:
    """Repository switch (for a minor change), then install; packages under a versionlock
    are unlocked first and locked again after (a lock hides every other version)."""
    first = [switch_yum_repository(minor, source=source, root=root, packaging=packaging)
             ] if switch_repository else []
    locked = [n for n in (*versions, *DEPENDENCIES) if n in packaging.locked]
    unlock = [dnf_versionlock("delete", locked)] if locked else []
    relock = [dnf_versionlock("add", locked)] if locked else []
    return [*first, *unlock, yum_install(versions, tool=tool, dnf5=packaging.dnf5), *relock]


# --- either ------------------------------------------------------------------------------------

def upgrade_packages(family: str | Packaging, minor: MinorVersion, versions: Mapping[str, str],
                     *, source: PackageSource = PKGS, switch_repository: bool = True,
                     root: str = "", pinned: Mapping[str, str] | None = None
                     ) -> list[NodeCommand]:
    """The commands that take `versions` (package → version or build glob) onto a node of
    `family` (an OS family: debian/ubuntu → apt, rhel/rocky/… → yum; or the node's Packaging).
    `pinned`: for a node with apt preferences pins, every pinned package's version after."""
    packaging = packaging_of(family)
    if packaging.apt:
        return apt_upgrade(minor, versions, source=source, switch_repository=switch_repository,
                           root=root, packaging=packaging, pinned=pinned)
    return yum_upgrade(minor, versions, source=source, switch_repository=switch_repository,
                       root=root, packaging=packaging)


def switch_repository(family: str | Packaging, minor: MinorVersion, *,
                      source: PackageSource = PKGS, root: str = "") -> NodeCommand:
    """Point the node's Kubernetes source at `minor`, apt or yum."""
    packaging = packaging_of(family)
    if packaging.apt:
        return switch_apt_repository(minor, source=source, root=root, packaging=packaging)
    return switch_yum_repository(minor, source=source, root=root, packaging=packaging)


def fetch_apt_key(minor: MinorVersion, keyring: str, *, source: PackageSource = PKGS,
                  root: str = "") -> list[NodeCommand]:
    """The upstream guide's `curl -fsSL …/Release.key | gpg --dearmor -o KEYRING`, as two
    commands (argv, no shell pipe): download to `KEY_DOWNLOAD`, dearmor into the node's own
    keyring (`--yes`: replace the expired one; `--batch`: never ask)."""
    url = source.minor_url(minor, "deb") + "Release.key"
    path = root.rstrip("/") + _path(keyring)
    return [
        NodeCommand(("mkdir", "-p", "-m", "0755", path.rsplit("/", 1)[0] or "/"),
                    "create the keyring directory"),
        NodeCommand(("curl", "-fsSL", "-o", KEY_DOWNLOAD, url),
                    f"download the Kubernetes {minor} repository key", sudo=False),
        NodeCommand(("gpg", "--batch", "--yes", "--dearmor", "-o", path, KEY_DOWNLOAD),
                    f"install the repository key into {keyring}"),
    ]


def repository_commands(family: str | Packaging, minor: MinorVersion, *,
                        source: PackageSource = PKGS, root: str = "") -> list[NodeCommand]:
    """The repository switch, after the key fetch when the node's key is missing or expired
    (apt: the minor's Release.key into the node's keyring; rpm: the old key erased, the
    minor's imported, the repository file's `gpgkey=` naming it)."""
    packaging = packaging_of(family)
    key: list[NodeCommand] = []
    if packaging.refresh_key and packaging.apt:
        key = fetch_apt_key(minor, packaging.keyring or source.keyring or APT_KEYRING,
                            source=source, root=root)
    elif packaging.refresh_key and source.gpgcheck:
        key = import_rpm_key(minor, packaging.rpm_keys, source=source)
    # The key first: the step's expectation is the repository's minor, so a halt between the
    # two must leave the switch undone (a re-run then fetches the key again).
    return [*key, switch_repository(packaging, minor, source=source, root=root)]


def _plain(version: str) -> str:
    plain = version.lstrip("v")
    if not re.fullmatch(r"\d+\.\d+\.\d+", plain):
        raise ValueError(f"not a Kubernetes release version: {version!r}")
    return plain


def package_glob(version: str) -> str:
    """Any build of Kubernetes `version`'s packages (`v1.29.15` → `1.29.15-*`), for apt
    (`kubeadm=1.29.15-*`) and dnf (`kubeadm-1.29.15-*`) alike, as the upstream guide writes."""
    return f"{_plain(version)}-*"


def glob_of(installed: str | None) -> str | None:
    """The build glob an installed package version belongs to (`1:1.29.15-1.1` → `1.29.15-*`);
    None or a version of another shape unchanged."""
    if not installed:
        return installed
    m = re.fullmatch(r"(?:\d+:)?(\d+\.\d+\.\d+)-[^-]+", installed)
    return f"{m.group(1)}-*" if m else installed


def package_version(version: str, family: str) -> str:
    """The package version pkgs.k8s.io's current build of Kubernetes `version` carries
    (`v1.29.15` → `1.29.15-1.1` for apt, `1.29.15-150500.1.1` for yum): what a node shows
    installed. Plans use `package_glob`."""
    plain = _plain(version)
    if family.lower() in APT_FAMILIES:
        return f"{plain}-{DEB_REVISION}"
    if family.lower() in YUM_FAMILIES:
        return f"{plain}-{RPM_RELEASE}"
    raise ValueError(f"unknown OS family {family!r}")
