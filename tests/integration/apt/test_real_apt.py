"""kubehop's apt commands (core.node_commands) run for real: Debian's apt-get, apt-mark and dpkg
on a throwaway root (APT_CONFIG, see shared/reference/real-apt-testing.md) with dummy
kubeadm/kubelet/kubectl packages in one flat repository per minor, through the local transport.
Checks the minor switch, exact installs, holds, and apt's own failure messages."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubehop.core.node_commands import (
    PACKAGES,
    NodeCommand,
    PackageSource,
    apt_install,
    apt_update,
    switch_apt_repository,
    upgrade_packages,
)
from kubehop.model.versions import MinorVersion
from kubehop.shell.transports import CommandResult
from kubehop.shell.transports.local import LocalTransport

TOOLS = ("apt-get", "apt-mark", "dpkg", "dpkg-deb", "dpkg-query", "dpkg-scanpackages")
VERSIONS = {MinorVersion(1, 28): ("1.28.8-1.1", "1.28.9-1.1"),
            MinorVersion(1, 29): ("1.29.14-1.1", "1.29.15-1.1")}
V128, V129 = MinorVersion(1, 28), MinorVersion(1, 29)
NODE = "solo"

pytestmark = [
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                       reason="needs apt and dpkg-dev (dpkg-deb, dpkg-scanpackages); "
                              "`make test` installs them"),
    pytest.mark.skipif(os.geteuid() != 0, reason="real apt on a throwaway root needs root "
                                                 "(dpkg --root still checks for it)"),
]


def build_repository(repo: Path) -> None:
    """One flat repository per minor (`repo/v1.28/`), dummy packages printing their version."""
    work = repo / "build"
    for minor, versions in VERSIONS.items():
        out = repo / f"v{minor}"
        out.mkdir(parents=True)
        for version in versions:
            for package in PACKAGES:
                d = work / f"{package}_{version}"
                (d / "DEBIAN").mkdir(parents=True)
                (d / "usr" / "bin").mkdir(parents=True)
                (d / "DEBIAN" / "control").write_text(
                    f"Package: {package}\nVersion: {version}\nArchitecture: amd64\n"
                    "Maintainer: kubehop tests <tests@kubehop.invalid>\n"
                    f"Description: dummy {package} for kubehop's apt tests\n")
                binary = d / "usr" / "bin" / package
                binary.write_text(f"#!/bin/sh\necho v{version.split('-')[0]}\n")
                binary.chmod(0o755)
                subprocess.run(["dpkg-deb", "-b", "-Zgzip", str(d), str(out)], check=True,
                               capture_output=True)
        packages = subprocess.run(["dpkg-scanpackages", "-m", ".", "/dev/null"], cwd=out,
                                  check=True, capture_output=True, text=True).stdout
        (out / "Packages").write_text(packages)
    shutil.rmtree(work)


def make_root(root: Path) -> Path:
    """A throwaway apt/dpkg root and the APT_CONFIG file that confines apt to it."""
    for d in ("etc/apt/sources.list.d", "etc/apt/preferences.d", "var/lib/apt/lists/partial",
              "var/cache/apt/archives/partial", "var/lib/dpkg/updates", "var/lib/dpkg/info",
              "var/log"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    conf = root / "apt.conf"
    conf.write_text(f'''Dir "{root}/";
Dir::State "{root}/var/lib/apt/";
Dir::State::status "{root}/var/lib/dpkg/status";
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "{root}/etc/apt/sources.list.d/";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "{root}/etc/apt/preferences.d/";
Dir::Cache "{root}/var/cache/apt/";
DPkg::Options {{ "--root={root}"; "--admindir={root}/var/lib/dpkg"; "--force-not-root";
                 "--force-bad-path"; "--log={root}/var/log/dpkg.log"; }};
Debug::NoLocking "true";
APT::Sandbox::User "root";
''')
    return conf


@dataclass
class Node:
    """A 'node' made of the throwaway root, reached through the local transport."""

    root: Path
    transport: LocalTransport
    source: PackageSource

    async def run(self, cmd: NodeCommand) -> CommandResult:
        return await self.transport.run(NODE, cmd.argv, sudo=cmd.sudo, stdin=cmd.stdin,
                                        timeout=120)

    async def apply(self, commands: list[NodeCommand]) -> None:
        for cmd in commands:
            (await self.run(cmd)).check()

    async def installed(self) -> dict[str, str]:
        result = await self.transport.run(NODE, [
            "dpkg-query", f"--admindir={self.root}/var/lib/dpkg", "-W",
            "-f=${Package} ${Version}\\n"])
        return dict(line.split() for line in result.check().stdout.splitlines())

    async def holds(self) -> list[str]:
        return (await self.transport.run(NODE, ["apt-mark", "showhold"])).check().stdout.split()


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    build_repository(repo)
    return repo


@pytest.fixture
async def node(repository, tmp_path):
    root = tmp_path / "root"
    conf = make_root(root)
    source = PackageSource(url=f"file:{repository}/v{{minor}}/", keyring=None, trusted=True)
    env = {"APT_CONFIG": str(conf), "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    async with LocalTransport(nodes=frozenset({NODE}), env=env) as transport:
        node = Node(root, transport, source)
        await node.apply(upgrade_packages("debian", V128, dict.fromkeys(PACKAGES, "1.28.9-1.1"),
                                          source=source, root=str(root)))
        yield node


async def test_a_node_starts_on_1_28_with_its_packages_held(node):
    assert await node.installed() == dict.fromkeys(PACKAGES, "1.28.9-1.1")
    assert await node.holds() == ["kubeadm", "kubectl", "kubelet"]
    assert (node.root / "etc/apt/sources.list.d/kubernetes.list").read_text() == \
        f"deb [trusted=yes] {node.source.url.format(minor='1.28')} /\n"
    kubeadm = subprocess.run([str(node.root / "usr/bin/kubeadm")], capture_output=True,
                             text=True)
    assert kubeadm.stdout == "v1.28.9\n"


async def test_switching_the_minor_then_unhold_install_hold_upgrades(node):
    versions = {"kubeadm": "1.29.15-1.1"}
    await node.apply(upgrade_packages("debian", V129, versions, source=node.source,
                                      root=str(node.root)))
    assert await node.installed() == {"kubeadm": "1.29.15-1.1", "kubectl": "1.28.9-1.1",
                                      "kubelet": "1.28.9-1.1"}
    assert await node.holds() == ["kubeadm", "kubectl", "kubelet"]
    # kubelet and kubectl later in the same minor: no repository switch needed.
    await node.apply(upgrade_packages("debian", V129, {"kubelet": "1.29.15-1.1",
                                                       "kubectl": "1.29.15-1.1"},
                                      source=node.source, switch_repository=False))
    assert await node.installed() == dict.fromkeys(PACKAGES, "1.29.15-1.1")
    assert await node.holds() == ["kubeadm", "kubectl", "kubelet"]
    out = subprocess.run([str(node.root / "usr/bin/kubelet")], capture_output=True, text=True)
    assert out.stdout == "v1.29.15\n"


async def test_a_version_from_another_minors_repository_is_not_found(node):
    result = await node.run(apt_install({"kubeadm": "1.29.15-1.1"}))
    assert result.exit_code == 100
    assert "E: Version '1.29.15-1.1' for 'kubeadm' was not found" in result.stderr
    assert await node.installed() == dict.fromkeys(PACKAGES, "1.28.9-1.1")


async def test_installing_a_held_package_without_unhold_fails(node):
    await node.apply([switch_apt_repository(V129, source=node.source, root=str(node.root)),
                      apt_update()])
    result = await node.run(apt_install({"kubeadm": "1.29.15-1.1"}))
    assert result.exit_code == 100
    assert "The following held packages will be changed:\n  kubeadm" in result.stdout
    assert result.stderr.strip().endswith(
        "E: Held packages were changed and -y was used without --allow-change-held-packages.")
    assert await node.installed() == dict.fromkeys(PACKAGES, "1.28.9-1.1")
