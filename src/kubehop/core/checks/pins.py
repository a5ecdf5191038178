"""Checks of apt preferences pins on the Kubernetes packages (`packages.pin-*`, `node.apt-pin`).

An operator may pin kubeadm, kubelet and kubectl with an apt preferences file instead of
`apt-mark hold` (the upgrade course's `/etc/apt/preferences.d/kubernetes`: `Pin: version 1.28.*`,
`Pin-Priority: 1000`). apt_preferences(5): a priority of 1000 or more lets apt downgrade to the
pinned version, one below 0 forbids the version, and one above a repository's 500 keeps a package
from moving to a newer version of another source.
"""

from __future__ import annotations

from kubehop.core import apt_preferences as ap
from kubehop.core.checks.common import grouped
from kubehop.core.node_commands import DEB_REVISION
from kubehop.model.cluster import ClusterState, NodePackages
from kubehop.model.findings import Finding, Severity
from kubehop.model.versions import KubeVersion, parse_deb_version

PACKAGES = ("kubeadm", "kubelet", "kubectl")


def _minor(version: str) -> tuple[int, int] | None:
    try:
        v = parse_deb_version(version).kube_version()
    except ValueError:
        return None
    return (v.major, v.minor)


def pin_findings(state: ClusterState, target: KubeVersion | None) -> list[Finding]:
    """Per node: how its pins behave now and for `target` (grouped by what they say)."""
    managed: dict[str, str] = {}
    blocks: dict[str, str] = {}
    stale: dict[str, str] = {}
    downgrade: dict[str, str] = {}
    mixed: dict[str, str] = {}
    for n in state.nodes:
        p = n.packages
        if p is None or not p.pins:
            continue
        owned = ap.managed_pins(p.pins)
        if owned:
            first = owned[0]
            managed[n.name] = (f"{', '.join(p.pinned)}|{first.file}|{first.pin}|"
                               f"{first.priority}")
        if len(p.pin_methods) > 1:
            mixed[n.name] = " and ".join(p.pin_methods)
        if target is not None:
            blocks_here = _blocking(p, target)
            if blocks_here:
                blocks[n.name] = blocks_here
        risky: dict[str, list[str]] = {}
        loose: dict[str, list[str]] = {}
        for name in PACKAGES:
            installed = getattr(p, name)
            if not installed:
                continue
            pin = next((x for x in p.pins if name in x.applies and x.priority >= 0
                        and ap.version_matches(x.pin, installed) is False), None)
            if pin is None or ap.held_back(p.pins, name, installed) is not None:
                continue
            pinned_minor, have = ap.pin_minor(pin), _minor(installed)
            where = f"{pin.file}|{pin.pin}|{pin.priority}"
            if pin.priority >= 1000 and pinned_minor and have and \
                    (pinned_minor.major, pinned_minor.minor) < have:
                offered = p.repo_minor is not None and p.repo_minor == pinned_minor
                risky.setdefault(where + ("|now" if offered else "|"), []).append(
                    f"{name} {installed}")
            else:
                loose.setdefault(where, []).append(f"{name} {installed}")
        for where, names in risky.items():  # (one pin per node in practice)
            downgrade[n.name] = f"{', '.join(names)}|{where}"
        for where, names in loose.items():
            stale[n.name] = f"{', '.join(names)}|{where}"
    out = grouped(
        "node.apt-pin", Severity.INFO, managed,
        lambda nodes, d: f"{d.split('|')[0]} on {nodes} {_are(d.split('|')[0])} pinned by "
                         f"{d.split('|')[1]} ({d.split('|')[2]}, priority {d.split('|')[3]}) "
                         f"instead of apt-mark hold",
        lambda nodes, _d: "nothing to do: kubehop rewrites that pin to each new minor around "
                          "each install (same file, same priority) and adds no holds",
    )
    out += grouped(
        "packages.pin-blocks-target", Severity.BLOCKING, blocks,
        lambda nodes, d: f"an apt pin on {nodes} forbids the target: {d.split('|')[0]} "
                         f"(priority {d.split('|')[1]} in {d.split('|')[2]}) matches "
                         f"{d.split('|')[3]}",
        lambda nodes, d: f"remove or change that stanza of {d.split('|')[2]} on {nodes} if the "
                         f"upgrade is intended, then check again",
    )
    out += grouped(
        "packages.pin-downgrade-risk", Severity.WARNING, downgrade,
        lambda nodes, d: f"{d.split('|')[2]} at priority {d.split('|')[3]} in "
                         f"{d.split('|')[1]} on {nodes} no longer matches the installed "
                         f"{d.split('|')[0]}; a priority of 1000 or more lets apt downgrade to "
                         f"it " + ("on the next apt-get upgrade (the configured repository "
                                   "offers it)" if d.endswith("|now") else
                                   "as soon as that minor's repository is configured again"),
        lambda nodes, d: f"pin the packages to their installed minor in {d.split('|')[1]} on "
                         f"{nodes} (kubehop's upgrade does so for the packages it installs)",
    )
    out += grouped(
        "packages.pin-stale", Severity.WARNING, stale,
        lambda nodes, d: f"{d.split('|')[2]} in {d.split('|')[1]} on {nodes} no longer matches "
                         f"the installed {d.split('|')[0]}: it holds nothing back",
        lambda nodes, d: f"update the pin in {d.split('|')[1]} on {nodes} to the installed "
                         f"minor, or remove it",
    )
    out += grouped(
        "packages.mixed-pin-methods", Severity.INFO, mixed,
        lambda nodes, d: f"{nodes} keep their Kubernetes packages with both {d}",
        lambda nodes, _d: "nothing to do: kubehop keeps each method as it finds it; one method "
                          "per node is easier to reason about",
    )
    return out


def _blocking(p: NodePackages, target: KubeVersion) -> str:
    """`Pin|priority|file|package version` of a stanza below 0 that decides the target
    version of a Kubernetes package (apt never picks it), or ""."""
    version = f"{target.plain}-{DEB_REVISION}"
    for name in PACKAGES:
        if not getattr(p, name):
            continue
        pin = ap.held_back(p.pins, name, version)
        if pin is not None and pin.priority < 0:
            return f"{pin.pin}|{pin.priority}|{pin.file}|{name} {version}"
    return ""


def _are(names: str) -> str:
    return "is" if "," not in names else "are"
