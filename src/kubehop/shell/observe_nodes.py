"""Node facts over a node transport: Kubernetes package versions, the package repository and its
minor, holds, and the kubeadm binary's version.

One read-only command line per node (no root needed), its sections separated by marker lines, so
a node costs one round trip. Anything with `async run(node, command) -> (exit code, stdout,
stderr)` can carry it: the SSH transport, or the lab's node agents in tests.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from typing import Protocol

from kubehop.model.cluster import NodePackages, NodeState, OsFamily
from kubehop.model.errors import KubehopError
from kubehop.model.versions import MinorVersion
from kubehop.shell.observe_decode import kube_version_or_none
from kubehop.shell.transports import Transport

PACKAGES = ("kubeadm", "kubelet", "kubectl")
MARK = "@@kubehop:"
CONCURRENCY = 50  # nodes asked at once
TIMEOUT = 30.0  # seconds per node

_RHEL_WORDS = ("rocky", "red hat", "rhel", "centos", "alma", "fedora", "oracle", "amazon linux")
_PKGS_MINOR_RE = re.compile(r"pkgs\.k8s\.io/core:/stable:/v(\d+)\.(\d+)/")
_LEGACY_RE = re.compile(r"apt\.kubernetes\.io|yum\.kubernetes\.io|packages\.cloud\.google\.com/"
                        r"(?:apt|yum)")
_LOCK_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9+._-]*?)-(?:\d+:)?\d")


class NodeRunner(Protocol):
    """Runs one shell command line on a node: (exit code, stdout, stderr)."""

    async def run(self, node: str, command: str) -> tuple[int, str, str]: ...


class TransportRunner:
    """A NodeRunner over a `kubehop.shell.transports.Transport` (SSH in practice)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def prepare(self, nodes: Iterable[NodeState]) -> list[tuple[str, str]]:
        """Reach nodes the inventory does not name at their InternalIP; returns those
        (node, InternalIP) pairs."""
        reach = getattr(self.transport, "reach_unlisted", None)
        return reach((n.name, n.internal_ip) for n in nodes) if callable(reach) else []

    async def run(self, node: str, command: str) -> tuple[int, str, str]:
        result = await self.transport.run(node, command, timeout=TIMEOUT)
        return result.exit_code, result.stdout, result.stderr


def os_family(os_image: str) -> OsFamily:
    """Debian-family unless the node's OS image names a RHEL-family distribution."""
    lowered = os_image.lower()
    return OsFamily.RHEL if any(w in lowered for w in _RHEL_WORDS) else OsFamily.DEBIAN


def facts_command(family: OsFamily) -> str:
    """The one command line that prints every section `parse_facts` reads."""
    names = " ".join(PACKAGES)
    if family is OsFamily.RHEL:
        packages = f"rpm -q --qf '%{{NAME}} %{{VERSION}}-%{{RELEASE}}\\n' {names}"
        repo = "cat /etc/yum.repos.d/kubernetes.repo"
        holds = "dnf versionlock list"
    else:
        packages = f"dpkg-query -W -f '${{Package}} ${{Version}}\\n' {names}"
        repo = ("cat /etc/apt/sources.list.d/kubernetes.list "
                "/etc/apt/sources.list.d/kubernetes.sources")
        holds = "apt-mark showhold"
    parts = [packages, f"echo {MARK}repo", repo, f"echo {MARK}holds", holds,
             f"echo {MARK}kubeadm", "kubeadm version -o short"]
    return "; ".join(f"{p} 2>/dev/null" if not p.startswith("echo") else p for p in parts)


def _sections(stdout: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {"packages": []}
    current = "packages"
    for line in stdout.splitlines():
        if line.startswith(MARK):
            current = line[len(MARK):].strip()
            sections[current] = []
        else:
            sections.setdefault(current, []).append(line)
    return sections


def parse_facts(family: OsFamily, stdout: str) -> NodePackages:
    """The NodePackages that `facts_command(family)`'s output describes."""
    s = _sections(stdout)
    versions: dict[str, str] = {}
    for line in s.get("packages", []):
        words = line.split()
        if len(words) == 2 and words[0] in PACKAGES and words[1][:1].isdigit():
            versions[words[0]] = words[1]
    repo_lines = [ln for ln in s.get("repo", []) if not ln.lstrip().startswith("#")]
    repo_minor = None
    legacy = False
    held: set[str] = set()
    for line in repo_lines:
        m = _PKGS_MINOR_RE.search(line)
        if m and repo_minor is None:
            repo_minor = MinorVersion(int(m.group(1)), int(m.group(2)))
        legacy = legacy or bool(_LEGACY_RE.search(line))
        key, sep, value = line.partition("=")
        if sep and key.strip() in ("exclude", "excludepkgs"):
            held.update(w for w in value.replace(",", " ").split() if w in PACKAGES)
    for line in s.get("holds", []):
        name = line.strip()
        if family is OsFamily.RHEL:
            m = _LOCK_RE.match(name)
            name = m.group(1) if m else ""
        if name in PACKAGES:
            held.add(name)
    kubeadm_lines = [ln.strip() for ln in s.get("kubeadm", []) if ln.strip()]
    return NodePackages(
        os_family=family,
        kubeadm=versions.get("kubeadm"),
        kubelet=versions.get("kubelet"),
        kubectl=versions.get("kubectl"),
        repo_minor=repo_minor,
        repo_legacy=legacy,
        held=tuple(sorted(held)),
        kubeadm_binary=kube_version_or_none(kubeadm_lines[0]) if kubeadm_lines else None,
    )


async def node_facts(runner: NodeRunner, node: NodeState) -> NodePackages:
    """Ask one node; raises what the runner raises (or TimeoutError)."""
    family = os_family(node.os_image)
    _code, out, _err = await asyncio.wait_for(runner.run(node.name, facts_command(family)),
                                              TIMEOUT)
    # The exit code is that of the last command (kubeadm): the sections say what worked.
    return parse_facts(family, out)


async def gather_node_facts(
    runner: NodeRunner, nodes: Iterable[NodeState], concurrency: int = CONCURRENCY
) -> tuple[Mapping[str, NodePackages], Mapping[str, str]]:
    """(node → packages, node → why it could not be asked) for every node."""
    nodes = list(nodes)
    gate = asyncio.Semaphore(concurrency)
    facts: dict[str, NodePackages] = {}
    errors: dict[str, str] = {}

    async def one(node: NodeState) -> None:
        async with gate:
            try:
                facts[node.name] = await node_facts(runner, node)
            except Exception as e:  # one unreachable node must not hide the others
                # (kubehop's own errors are one clear line already; others get their type)
                errors[node.name] = (str(e) if isinstance(e, KubehopError) and str(e)
                                     else f"{type(e).__name__}: {e}" if str(e)
                                     else type(e).__name__)

    await asyncio.gather(*(one(n) for n in nodes))
    return facts, errors
