"""kubehop's apt commands (core.node_commands) run for real: Debian's apt-get, apt-mark and dpkg
on a throwaway root (APT_CONFIG) with dummy
kubeadm/kubelet/kubectl packages in one flat repository per minor, through the local transport.
Checks the minor switch, exact installs, holds, and apt's own failure messages."""

from __future__ import annotations

import asyncio
import fcntl
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
from kubehop.model.plan import Command, Step, StepKind
from kubehop.model.versions import MinorVersion
from kubehop.shell.executor.cluster import NodeView
from kubehop.shell.executor.expect import ExpectChecker
from kubehop.shell.executor.fake import FakeCluster
from kubehop.shell.executor.gates import HealthGates
from kubehop.shell.executor.steps import StepRunner
from kubehop.shell.steps.base import ExecutorOptions
from kubehop.shell.steps.facts import NodeFacts
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
                                      source=node.source, switch_repository=False,
                                      root=str(node.root)))
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
                      apt_update(root=str(node.root))])
    result = await node.run(apt_install({"kubeadm": "1.29.15-1.1"}))
    assert result.exit_code == 100
    assert "The following held packages will be changed:\n  kubeadm" in result.stdout
    assert result.stderr.strip().endswith(
        "E: Held packages were changed and -y was used without --allow-change-held-packages.")
    assert await node.installed() == dict.fromkeys(PACKAGES, "1.28.9-1.1")


# --- issue #14: the scoped, strict refresh; conflicting keyrings; the dpkg lock -------------


def bare_update() -> NodeCommand:
    return NodeCommand(("apt-get", "update"), "what a bare refresh does")


async def test_a_broken_vendor_source_fails_a_bare_update_but_not_kubehops(node):
    (node.root / "etc/apt/sources.list.d/vendor.list").write_text(
        "deb file:/nonexistent/vendor stable main\n")
    await node.apply([switch_apt_repository(V129, source=node.source, root=str(node.root))])
    bare = await node.run(bare_update())
    assert bare.exit_code == 100
    assert "E: The repository 'file:/nonexistent/vendor stable Release' does not have a " \
           "Release file." in bare.stderr
    scoped = await node.run(apt_update(root=str(node.root)))
    assert scoped.exit_code == 0, scoped.stderr
    assert "nonexistent" not in scoped.stdout + scoped.stderr
    await node.apply(upgrade_packages("debian", V129, {"kubeadm": "1.29.15-*"},
                                      source=node.source, switch_repository=False,
                                      root=str(node.root)))
    assert (await node.installed())["kubeadm"] == "1.29.15-1.1"


async def test_an_unreachable_kubernetes_repository_fails_kubehops_update(node):
    # Nothing listens on 127.0.0.1:9 (discard): connection refused, as a repository that is
    # down. A bare update only warns and exits 0; kubehop's refresh exits 100.
    down = PackageSource(url="http://127.0.0.1:9/v{minor}/", keyring=None, trusted=True)
    await node.apply([switch_apt_repository(V129, source=down, root=str(node.root))])
    bare = await node.run(bare_update())
    assert bare.exit_code == 0
    assert "W: Failed to fetch http://127.0.0.1:9/v1.29/InRelease  Could not connect to " \
           "127.0.0.1:9" in bare.stderr
    strict = await node.run(apt_update(root=str(node.root)))
    assert strict.exit_code == 100
    assert "E: Failed to fetch http://127.0.0.1:9/v1.29/InRelease" in strict.stderr


async def test_one_repository_with_two_keyrings_makes_apt_refuse_every_source(node):
    url = node.source.url.format(minor="1.28")
    for name, key in (("kubernetes.list", "/a.gpg"), ("copy.list", "/b.gpg")):
        (node.root / "etc/apt/sources.list.d" / name).write_text(
            f"deb [signed-by={key} trusted=yes] {url} /\n")
    bare = await node.run(bare_update())
    assert bare.exit_code == 100
    assert f"E: Conflicting values set for option Signed-By regarding source {url} /: " \
           "/b.gpg != /a.gpg" in bare.stderr
    assert "E: The list of sources could not be read." in bare.stderr
    # The install reads every source too: no package can be installed (`check` blocks).
    install = await node.run(apt_install({"kubeadm": "1.28.8-*"}))
    assert install.exit_code == 100
    assert "E: The list of sources could not be read." in install.stderr


async def test_the_executor_waits_out_a_held_dpkg_lock_and_names_its_holder(node, tmp_path):
    conf = Path(node.transport.env["APT_CONFIG"])
    locking = tmp_path / "apt-locking.conf"
    locking.write_text(conf.read_text().replace('Debug::NoLocking "true";',
                                                'Debug::NoLocking "false";'))
    env = {**node.transport.env, "APT_CONFIG": str(locking)}
    fd = os.open(node.root / "var/lib/dpkg/lock-frontend", os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)  # this process holds dpkg's frontend lock, as apt would
    async with LocalTransport(nodes=frozenset({NODE}), env=env) as transport:
        mark = await transport.run(NODE, ["apt-mark", "unhold", "kubeadm"])
        assert mark.exit_code == 100
        assert mark.stderr.startswith("dpkg: error: dpkg frontend lock was locked by another "
                                      f"process with pid {os.getpid()}\n")
        commands = upgrade_packages("debian", V129, {"kubeadm": "1.29.15-*"},
                                    source=node.source, root=str(node.root))
        step = Step(f"1.29/{NODE}/kubeadm-install", StepKind.KUBEADM_INSTALL, NODE, "v1.29.15",
                    (), tuple(Command(c.argv, c.stdin, c.sudo) for c in commands))
        cluster = FakeCluster([NodeView(NODE, kubelet="v1.28.9", ready=True)])
        waits: list[str] = []
        runner = StepRunner(cluster, transport, ExpectChecker(cluster, NodeFacts(transport)),
                            HealthGates(cluster), ExecutorOptions(lock_wait=60),
                            on_wait=lambda _s, message: waits.append(message))
        release = asyncio.get_running_loop().call_later(2.5, os.close, fd)
        try:
            await runner.perform(step)
        finally:
            release.cancel()
    assert waits
    assert waits[0].startswith(
        f"waiting for the package manager lock on {NODE} (held by process {os.getpid()} (")
    assert (await node.installed())["kubeadm"] == "1.29.15-1.1"
    assert await node.holds() == ["kubeadm", "kubectl", "kubelet"]
