"""apt preferences pins on real apt 2.x (a throwaway root):
each behaviour the lab's apt claims (tests/lab/node/test_apt_pins.py, lab/node/apt_pins.py)
seen here with the same result, and kubehop's pin rewrite run for real."""

# ruff: noqa: F811  (the `node` fixture, imported from test_real_apt, is every test's argument)
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kubehop.core import apt_preferences as ap
from kubehop.core.node_commands import PACKAGES, NodeCommand, Packaging, upgrade_packages
from kubehop.model.versions import MinorVersion
from tests.integration.apt.test_real_apt import (  # noqa: F401  (fixtures)
    NODE,
    V129,
    Node,
    node,
    pytestmark,
    repository,
)

PREF = "etc/apt/preferences.d/kubernetes"
COURSE = "Package: kubectl kubeadm kubelet\nPin: version 1.28.*\nPin-Priority: 1000\n"
V128 = MinorVersion(1, 28)


async def apt(node: Node, *argv: str, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    """Run an apt tool against the node's root (no sudo: the tests run as root)."""
    return subprocess.run(list(argv), env={**node.transport.env, **(env or {})},
                          capture_output=True, text=True, check=False)


def pin(node: Node, text: str, path: str = PREF) -> None:
    (node.root / path).write_text(text)


def sources(node: Node, *minors: str) -> None:
    (node.root / "etc/apt/sources.list.d/kubernetes.list").write_text("".join(
        f"deb [trusted=yes] {node.source.url.format(minor=m)} /\n" for m in minors))


async def unhold_all(node: Node) -> None:
    (await node.run(NodeCommand(("apt-mark", "unhold", *PACKAGES), "unhold"))).check()


async def test_the_course_pin_keeps_the_minor_until_it_is_removed(node):
    await unhold_all(node)
    pin(node, COURSE)
    sources(node, "1.29")
    assert (await apt(node, "apt", "update")).returncode == 0
    kept = await apt(node, "apt", "install", "kubeadm", "-y")
    assert "kubeadm is already the newest version (1.28.9-1.1).\n" in kept.stdout
    (node.root / PREF).unlink()
    moved = await apt(node, "apt", "install", "kubeadm", "-y")
    assert moved.returncode == 0, moved.stderr
    assert "Unpacking kubeadm (1.29.15-1.1) over (1.28.9-1.1) ...\n" in moved.stdout
    assert (await node.installed())["kubeadm"] == "1.29.15-1.1"


async def test_etc_apt_preferences_and_a_regex_package_line_count(node, tmp_path):
    conf = Path(node.transport.env["APT_CONFIG"])
    own = tmp_path / "apt-preferences.conf"
    own.write_text(conf.read_text().replace('Dir::Etc::Preferences "/dev/null";',
                                            f'Dir::Etc::Preferences "{node.root}/etc/apt/'
                                            f'preferences";'))
    pin(node, "Package: /^kube(let|adm)$/\nPin: version 1.28.8*\nPin-Priority: 1001\n",
        "etc/apt/preferences")
    policy = (await apt(node, "apt-cache", "policy", "kubelet", "kubectl",
                        env={"APT_CONFIG": str(own)})).stdout
    assert "kubelet:\n  Installed: 1.28.9-1.1\n  Candidate: 1.28.8-1.1\n" in policy
    assert "     1.28.8-1.1 1001\n" in policy
    assert "kubectl:\n  Installed: 1.28.9-1.1\n  Candidate: 1.28.9-1.1\n" in policy


async def test_a_pin_of_1000_or_more_downgrades_on_upgrade_and_999_does_not(node):
    await unhold_all(node)
    pin(node, "Package: kubelet\nPin: version 1.28.8*\nPin-Priority: 999\n")
    assert "Candidate: 1.28.9-1.1" in (await apt(node, "apt-cache", "policy", "kubelet")).stdout
    pin(node, "Package: kubelet\nPin: version 1.28.8*\nPin-Priority: 1001\n")
    refused = await apt(node, "apt-get", "upgrade", "-y")
    assert refused.returncode == 100
    assert "The following packages will be DOWNGRADED:\n  kubelet\n" in refused.stdout
    assert "E: Packages were downgraded and -y was used without --allow-downgrades." \
        in refused.stderr
    done = await apt(node, "apt-get", "upgrade", "-y", "--allow-downgrades")
    assert done.returncode == 0, done.stderr
    assert (await node.installed())["kubelet"] == "1.28.8-1.1"


async def test_a_negative_pin_is_never_a_candidate_but_pkg_version_still_installs(node):
    await unhold_all(node)
    sources(node, "1.29")
    assert (await apt(node, "apt-get", "update")).returncode == 0
    pin(node, "Package: kubectl\nPin: version 1.29.15*\nPin-Priority: -1\n")
    policy = (await apt(node, "apt-cache", "policy", "kubectl")).stdout
    assert "  Candidate: 1.29.14-1.1\n" in policy  # not 1.29.15: -1 never wins
    assert "     1.29.15-1.1 -1\n" in policy
    forced = await apt(node, "apt-get", "install", "-y", "kubectl=1.29.15-1.1")
    assert forced.returncode == 0, forced.stderr
    assert (await node.installed())["kubectl"] == "1.29.15-1.1"


async def test_release_pins_match_the_repositorys_label(node):
    for minor in ("1.28", "1.29"):
        # pkgs.k8s.io's Release fields (its OBS project), as lab/node/apt_pins.release_of
        Path(node.source.url.format(minor=minor)[len("file:"):], "Release").write_text(
            f"Origin: obs://build.opensuse.org/isv:kubernetes:core:stable:v{minor}/deb\n"
            f"Label: isv:kubernetes:core:stable:v{minor}\nArchitectures: amd64\n")
    sources(node, "1.28", "1.29")
    assert (await apt(node, "apt-get", "update")).returncode == 0
    pin(node, "Package: kubectl\nPin: release l=isv:kubernetes:core:stable:v1.28\n"
              "Pin-Priority: 1000\n")
    policy = (await apt(node, "apt-cache", "policy", "kubectl")).stdout
    assert "  Candidate: 1.28.9-1.1\n" in policy
    assert "     1.28.8-1.1 1000\n" in policy
    assert "     1.29.15-1.1 500\n" in policy
    general = (await apt(node, "apt-cache", "policy")).stdout
    assert "release o=obs://build.opensuse.org/isv:kubernetes:core:stable:v1.28/deb," \
           "l=isv:kubernetes:core:stable:v1.28,c=\n" in general
    assert "     kubectl -> 1.28.8-1.1 with priority 1000\n" in general


async def test_files_apt_does_not_read_are_ignored(node):
    pin(node, "Package: kubelet\nPin: version 1.28.8*\nPin-Priority: 1001\n",
        "etc/apt/preferences.d/kubernetes.txt")
    result = await apt(node, "apt-cache", "policy", "kubelet")
    assert "Candidate: 1.28.9-1.1" in result.stdout


async def test_kubehops_pin_rewrite_holds_the_kubelet_back_until_its_own_step(node):
    await unhold_all(node)
    pin(node, COURSE)
    root = str(node.root)
    packaging = Packaging("debian", pins=tuple(ap.managed_pins(ap.parse_stanzas(
        f"/{PREF}", COURSE))))
    await node.apply(upgrade_packages(packaging, V129, {"kubeadm": "1.29.15-*",
                                                        "kubectl": "1.29.15-*"},
                                      source=node.source, root=root,
                                      pinned={"kubeadm": "1.29.15-*", "kubectl": "1.29.15-*",
                                              "kubelet": "1.28.9-*"}))
    assert (node.root / PREF).read_text() == (
        "Package: kubectl kubeadm\nPin: version 1.29.*\nPin-Priority: 1000\n\n"
        "Package: kubelet\nPin: version 1.28.*\nPin-Priority: 1000\n")
    # A routine upgrade cannot move the kubelet's minor behind the drain's back.
    sources(node, "1.28", "1.29")
    assert (await apt(node, "apt-get", "update")).returncode == 0
    routine = await apt(node, "apt-get", "upgrade", "-y")
    assert routine.returncode == 0, routine.stderr
    assert await node.installed() == {"kubeadm": "1.29.15-1.1", "kubectl": "1.29.15-1.1",
                                      "kubelet": "1.28.9-1.1"}
    await node.apply(upgrade_packages(packaging, V129, {"kubelet": "1.29.15-*"},
                                      source=node.source, switch_repository=False, root=root,
                                      pinned=dict.fromkeys(PACKAGES, "1.29.15-*")))
    assert (node.root / PREF).read_text() == COURSE.replace("1.28", "1.29")
    assert await node.installed() == dict.fromkeys(PACKAGES, "1.29.15-1.1")
    assert await node.holds() == []
    # ... and the pin now keeps 1.29 even with the 1.28 repository configured.
    assert "kubelet is already the newest version (1.29.15-1.1)." in (
        await apt(node, "apt-get", "install", "-y", "kubelet")).stdout


@pytest.mark.parametrize("tool", ["apt-get", "apt"])
async def test_install_without_a_version_takes_the_newest_of_the_configured_minor(node, tool):
    await unhold_all(node)
    sources(node, "1.29")
    assert (await apt(node, tool, "update")).returncode == 0
    done = await apt(node, tool, "install", "-y", "kubelet")
    assert done.returncode == 0, done.stderr
    assert (await node.installed())["kubelet"] == "1.29.15-1.1"
