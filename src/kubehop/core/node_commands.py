"""The package commands kubehop sends to nodes, built as data (argv + stdin), never run here.

pkgs.k8s.io publishes one repository per minor (kubernetes-facts §6), so a minor upgrade first
points the node at the new minor's repository, then (apt) updates the lists, unholds, installs
the exact version and holds again; (yum/dnf) installs past the repository's `exclude=` line.

    for cmd in upgrade_packages("debian", MinorVersion(1, 29),
                                {"kubeadm": "1.29.15-1.1"}):
        await transport.run(node, cmd.argv, sudo=cmd.sudo, stdin=cmd.stdin)

Files are written whole with `tee` (stdin carries the content), so the result does not depend
on what the file held before (a legacy apt.kubernetes.io line, a hand edit). `root` prefixes
written paths; only tests set it, to keep files under a throwaway directory.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubehop.model.versions import MinorVersion

PACKAGES = ("kubeadm", "kubelet", "kubectl")
APT_SOURCE_FILE = "/etc/apt/sources.list.d/kubernetes.list"
APT_KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
YUM_REPO_FILE = "/etc/yum.repos.d/kubernetes.repo"
YUM_EXCLUDES = ("kubelet", "kubeadm", "kubectl", "cri-tools", "kubernetes-cni")
PKGS_K8S_IO = "https://pkgs.k8s.io/core:/stable:/v{minor}/{kind}/"
DEB_REVISION = "1.1"  # pkgs.k8s.io's deb revision (kubeadm 1.29.15-1.1)
RPM_RELEASE = "150500.1.1"  # and its rpm release (kubeadm-1.29.15-150500.1.1)
# Keep the node's edited config files (the kubelet drop-in) rather than stop at dpkg's prompt.
_DPKG_KEEP_CONFIG = ("-o", "Dpkg::Options::=--force-confdef",
                     "-o", "Dpkg::Options::=--force-confold")
_PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]*")
_VERSION_RE = re.compile(r"[0-9][A-Za-z0-9.+~:-]*")
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
    keyring: str | None = APT_KEYRING  # apt `signed-by=`; None: not written
    trusted: bool = False  # apt `trusted=yes` (unsigned local repositories in tests only)
    gpgcheck: bool = True  # rpm: check signatures with `<url>repodata/repomd.xml.key`

    def minor_url(self, minor: MinorVersion, kind: str) -> str:
        return self.url.format(minor=str(minor), kind=kind)


PKGS = PackageSource()


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


def _write_file(path: str, content: str, description: str, root: str) -> NodeCommand:
    # `tee` writes as root what the unprivileged login user pipes to it (`sudo cmd > file`
    # would open the file as that user). Its copy on stdout is harmless.
    return NodeCommand(("tee", root.rstrip("/") + path), description, stdin=content)


# --- apt (Debian, Ubuntu) ----------------------------------------------------------------------

def apt_source_line(minor: MinorVersion, source: PackageSource = PKGS) -> str:
    """kubernetes.list's line for `minor`, as the upstream install guide writes it."""
    options = [f"signed-by={source.keyring}"] if source.keyring else []
    options += ["trusted=yes"] if source.trusted else []
    bracket = f"[{' '.join(options)}] " if options else ""
    return f"deb {bracket}{source.minor_url(minor, 'deb')} /\n"


def switch_apt_repository(minor: MinorVersion, *, source: PackageSource = PKGS,
                          root: str = "") -> NodeCommand:
    """Point apt at `minor`'s repository (rewrite kubernetes.list whole)."""
    return _write_file(APT_SOURCE_FILE, apt_source_line(minor, source),
                       f"point apt at the Kubernetes {minor} package repository", root)


def apt_update() -> NodeCommand:
    return NodeCommand(("apt-get", "update"), "refresh the apt package lists")


def apt_unhold(packages: Iterable[str]) -> NodeCommand:
    names = _packages(packages)
    return NodeCommand(("apt-mark", "unhold", *names), f"release the hold on {', '.join(names)}")


def apt_hold(packages: Iterable[str]) -> NodeCommand:
    names = _packages(packages)
    return NodeCommand(("apt-mark", "hold", *names), f"hold {', '.join(names)} at this version")


def apt_install(versions: Mapping[str, str]) -> NodeCommand:
    """Install exact versions (`kubeadm=1.29.15-1.1`); fails on held packages, as it should."""
    pairs = _versions(versions)
    return NodeCommand(
        ("apt-get", "install", "-y", *_DPKG_KEEP_CONFIG, *(f"{n}={v}" for n, v in pairs)),
        "install " + ", ".join(f"{n} {v}" for n, v in pairs))


def apt_upgrade(minor: MinorVersion, versions: Mapping[str, str], *,
                source: PackageSource = PKGS, switch_repository: bool = True,
                root: str = "") -> list[NodeCommand]:
    """Repository switch (for a minor change), update, unhold, install, hold."""
    names = [n for n, _ in _versions(versions)]
    first = [switch_apt_repository(minor, source=source, root=root)] if switch_repository else []
    return [*first, apt_update(), apt_unhold(names), apt_install(versions), apt_hold(names)]


# --- yum / dnf (RHEL family) -------------------------------------------------------------------

def yum_repo_file(minor: MinorVersion, source: PackageSource = PKGS) -> str:
    """kubernetes.repo for `minor`, as the upstream install guide writes it."""
    url = source.minor_url(minor, "rpm")
    lines = ["[kubernetes]", "name=Kubernetes", f"baseurl={url}", "enabled=1",
             f"gpgcheck={int(source.gpgcheck)}"]
    if source.gpgcheck:
        lines.append(f"gpgkey={url.rstrip('/')}/repodata/repomd.xml.key")
    lines.append(f"exclude={' '.join(YUM_EXCLUDES)}")
    return "\n".join(lines) + "\n"


def switch_yum_repository(minor: MinorVersion, *, source: PackageSource = PKGS,
                          root: str = "") -> NodeCommand:
    """Point yum/dnf at `minor`'s repository (rewrite kubernetes.repo whole)."""
    return _write_file(YUM_REPO_FILE, yum_repo_file(minor, source),
                       f"point yum at the Kubernetes {minor} package repository", root)


def yum_install(versions: Mapping[str, str], *, tool: str = "yum") -> NodeCommand:
    """Install exact versions (`kubeadm-1.29.15-150500.1.1`) past the repository's excludes."""
    if tool not in ("yum", "dnf"):
        raise ValueError(f"not a package tool: {tool!r}")
    pairs = _versions(versions)
    return NodeCommand(
        (tool, "install", "-y", *(f"{n}-{v}" for n, v in pairs), "--disableexcludes=kubernetes"),
        "install " + ", ".join(f"{n} {v}" for n, v in pairs))


def yum_upgrade(minor: MinorVersion, versions: Mapping[str, str], *,
                source: PackageSource = PKGS, switch_repository: bool = True,
                root: str = "", tool: str = "yum") -> list[NodeCommand]:
    """Repository switch (for a minor change), then install."""
    first = [switch_yum_repository(minor, source=source, root=root)] if switch_repository else []
    return [*first, yum_install(versions, tool=tool)]


# --- either ------------------------------------------------------------------------------------

def upgrade_packages(family: str, minor: MinorVersion, versions: Mapping[str, str], *,
                     source: PackageSource = PKGS, switch_repository: bool = True,
                     root: str = "") -> list[NodeCommand]:
    """The commands that take `versions` (package → exact version) onto a node of `family`
    (an OS family: debian/ubuntu → apt, rhel/rocky/… → yum)."""
    kind = family.lower()
    if kind in APT_FAMILIES:
        return apt_upgrade(minor, versions, source=source, switch_repository=switch_repository,
                           root=root)
    if kind in YUM_FAMILIES:
        return yum_upgrade(minor, versions, source=source, switch_repository=switch_repository,
                           root=root)
    raise ValueError(f"unknown OS family {family!r} (known: apt: {', '.join(sorted(APT_FAMILIES))};"
                     f" yum: {', '.join(sorted(YUM_FAMILIES))})")


def package_version(version: str, family: str) -> str:
    """The pkgs.k8s.io package version of Kubernetes `version` (`v1.29.15` → `1.29.15-1.1`
    for apt, `1.29.15-150500.1.1` for yum)."""
    plain = version.lstrip("v")
    if not re.fullmatch(r"\d+\.\d+\.\d+", plain):
        raise ValueError(f"not a Kubernetes release version: {version!r}")
    if family.lower() in APT_FAMILIES:
        return f"{plain}-{DEB_REVISION}"
    if family.lower() in YUM_FAMILIES:
        return f"{plain}-{RPM_RELEASE}"
    raise ValueError(f"unknown OS family {family!r}")
