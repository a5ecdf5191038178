"""What the SSH inventory and the nodes' host keys say beside the package facts: inventory
entries for nodes the cluster does not have, and host keys that changed.

A changed host key is recorded as it happens (`HostKeyWatch`), so `kubehop check` can report it
as blocking: `upgrade` refuses such a node (OpenSSH's rule: a changed key is never accepted,
whatever StrictHostKeyChecking says), and `check` must not call the cluster ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kubehop.model.findings import Finding, Severity
from kubehop.shell.observe.nodes import TransportRunner
from kubehop.shell.transports import HostKeyChanged, Transport

HOST_KEY_CHANGED = "node.host-key-changed"


def entries_without_node(inventory_nodes: Iterable[str], cluster_nodes: Iterable[str]
                         ) -> list[str]:
    """Names the inventory lists that are no node of the cluster (a typo, or a removed node),
    sorted."""
    return sorted(set(inventory_nodes) - set(cluster_nodes))


def host_key_findings(changed: Mapping[str, str]) -> list[Finding]:
    """One blocking finding per node whose SSH host key differs from the recorded one."""
    return [Finding(
        HOST_KEY_CHANGED, Severity.BLOCKING, f"node/{node}",
        f"the SSH host key of node {node} changed: {why}",
        "verify the node's new key out of band; if it was reinstalled, replace its line in "
        "known_hosts (ssh-keygen -R HOST), then check again",
    ) for node, why in sorted(changed.items())]


class HostKeyWatch(TransportRunner):
    """A TransportRunner that remembers the nodes whose host key changed (`changed`: node →
    the transport's one-line message)."""

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.changed: dict[str, str] = {}

    async def run(self, node: str, command: str) -> tuple[int, str, str]:
        try:
            return await super().run(node, command)
        except HostKeyChanged as e:
            self.changed[node] = str(e)
            raise
