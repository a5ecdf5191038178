"""Package facts of a node, read over its transport and cached until a command runs there.

One read-only command (`shell.observe.nodes.facts_command`) answers every package key of a
step's `expect` (`repoMinor`, `kubeadm`, `kubeletPackage`, `kubectl`, `aptPins`); the node
command runner (`node_commands`) drops a node's entry before and after each command it runs.
"""

from __future__ import annotations

import fnmatch

from kubehop.model.cluster import NodePackages
from kubehop.model.plan import ExpectValue, Step
from kubehop.shell.observe.nodes import facts_command, os_family, parse_facts
from kubehop.shell.transports import Transport, TransportError

FACTS_TIMEOUT = 60.0
# The package keys whose value is an installed build, as `installed_note` names them.
_BUILDS = {"kubeadm": "kubeadm", "kubeletPackage": "kubelet", "kubectl": "kubectl"}


class NodeFacts:
    """Package facts per node, read over the transport and cached until `invalidate`."""

    def __init__(self, transport: Transport, timeout: float = FACTS_TIMEOUT) -> None:
        self.transport = transport
        self.timeout = timeout
        self._cache: dict[str, NodePackages] = {}
        self.reads = 0

    def invalidate(self, node: str) -> None:
        self._cache.pop(node, None)

    async def get(self, node: str, os_image: str) -> NodePackages:
        cached = self._cache.get(node)
        if cached is not None:
            return cached
        family = os_family(os_image)
        result = await self.transport.run(node, facts_command(family), timeout=self.timeout)
        self.reads += 1
        facts = parse_facts(family, result.stdout)
        self._cache[node] = facts
        return facts


def any_build(want: ExpectValue, got: object) -> bool:
    """Plans name a patch with any build (`1.29.15-*`, as the upstream guide installs it): any
    build of it holds (`1.29.15-1.1`, `1:1.29.15-150500.1.1`)."""
    if isinstance(want, str) and isinstance(got, str):
        return fnmatch.fnmatchcase(got, want) or fnmatch.fnmatchcase(
            got.partition(":")[2] if ":" in got else got, want)
    return got == want


def installed_build(facts: NodePackages, key: str) -> str | None:
    """The installed build a package key reads (`kubeadm`, `kubeletPackage`, `kubectl`)."""
    return getattr(facts, _BUILDS[key])  # type: ignore[no-any-return]


async def installed_note(facts: NodeFacts, step: Step) -> str:
    """`installed kubeadm 1.29.15-1.1`: the builds a package step's globs resolved to (from
    the facts its `expect` was just checked with)."""
    keys = [k for k in _BUILDS if k in step.expect]
    if not keys or step.node is None:
        return ""
    try:
        packages = await facts.get(step.node, "")
    except TransportError:
        return ""
    shown = [f"{_BUILDS[k]} {v}" for k in keys if (v := installed_build(packages, k))]
    return f"installed {', '.join(shown)}" if shown else ""
