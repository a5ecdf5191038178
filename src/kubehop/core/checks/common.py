"""Helpers shared by the check areas: grouping per-node findings, package versions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from kubehop.model.errors import VersionError
from kubehop.model.findings import Finding, Severity
from kubehop.model.versions import KubeVersion, parse_deb_version

Text = Callable[[str, str], str]  # (nodes text, detail) → one line


def grouped(id_: str, severity: Severity, by_node: Mapping[str, str], message: Text,
            fix: Text) -> list[Finding]:
    """One finding per distinct detail, naming the nodes that share it (a few, then a count):
    5,000 nodes with the same problem make one finding, not 5,000."""
    groups: dict[str, list[str]] = defaultdict(list)
    for node, detail in sorted(by_node.items()):
        groups[detail].append(node)
    out = []
    for detail, nodes in groups.items():
        text = nodes_text(nodes)
        subject = f"node/{nodes[0]}" if len(nodes) == 1 else f"nodes/{len(nodes)}"
        out.append(Finding(id_, severity, subject, message(text, detail), fix(text, detail)))
    return out


def nodes_text(nodes: Sequence[str], shown: int = 5) -> str:
    """`node w1`, `nodes w1, w2`, or `nodes w1, w2, w3, w4, w5 and 7 more`."""
    if len(nodes) == 1:
        return f"node {nodes[0]}"
    head = ", ".join(nodes[:shown])
    more = f" and {len(nodes) - shown} more" if len(nodes) > shown else ""
    return f"nodes {head}{more}"


def package_kube_version(version: str | None) -> KubeVersion | None:
    """The Kubernetes version a deb or rpm package version carries (`1.28.9-1.1`: v1.28.9)."""
    if not version:
        return None
    try:
        return parse_deb_version(version).kube_version()
    except VersionError:
        return None


def capped(findings: list[Finding], limit: int, summary: Callable[[int], Finding]
           ) -> list[Finding]:
    """At most `limit` findings, then one `summary(rest)` saying how many more there are."""
    if len(findings) <= limit:
        return findings
    return [*findings[:limit], summary(len(findings) - limit)]
