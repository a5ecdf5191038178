"""What a simulated node is: its OS, installed packages, repository and holds, and lab timing.

`NodeSetup` is the node half of a scenario (DESIGN "Scenario files (v1)": `os`, `packages`,
`repo`, `holds`); `setups_from_store` derives setups from the Node objects of a populated store
for every field a scenario left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubehop.lab.addresses import DEFAULT_NODE_IP
from kubehop.lab.api.store import Store
from kubehop.model.errors import VersionError
from kubehop.model.versions import parse_deb_version, parse_kube_version

KUBE_PACKAGES = ("kubeadm", "kubelet", "kubectl")
RPM_RELEASE = "150500.1.1"  # the release pkgs.k8s.io's OBS builds carry (kubeadm-1.28.9-150500.1.1)
DEB_REVISION = "1.1"
RHEL_WORDS = ("rocky", "red hat", "rhel", "centos", "alma", "fedora", "oracle")
DEFAULT_IMAGE = "Ubuntu 22.04.4 LTS"
DEFAULT_KERNEL = "5.15.0-105-generic"


@dataclass(frozen=True, slots=True)
class NodeSetup:
    """One node as the lab provisions it (package versions in any of `1.28.9`, `1.28.9-1.1`)."""

    name: str
    roles: tuple[str, ...] = ()
    os_family: str = "debian"  # debian | rhel
    os_image: str = DEFAULT_IMAGE
    kernel: str = DEFAULT_KERNEL
    packages: Mapping[str, str] = field(default_factory=dict)
    repo_minor: str | None = None  # default: the kubeadm package's minor
    repo_legacy: bool = False  # the shut-down apt.kubernetes.io / yum.kubernetes.io repository
    holds: tuple[str, ...] = KUBE_PACKAGES
    internal_ip: str = DEFAULT_NODE_IP
    apt_preferences: Mapping[str, str] = field(default_factory=dict)  # file → content

    @property
    def control_plane(self) -> bool:
        return "control-plane" in self.roles or "master" in self.roles

    @property
    def rpm(self) -> bool:
        return self.os_family == "rhel"

    def package_version(self, name: str) -> str | None:
        """The installed version of `name` in this node's package format, or None."""
        raw = self.packages.get(name)
        return None if raw is None else distro_version(raw, self.os_family)

    @staticmethod
    def from_scenario(entry: Mapping[str, Any]) -> list[NodeSetup]:
        """Setups from one scenario `nodes[]` entry (a `count` > 1 makes `name-1` … `name-N`)."""
        os_ = entry.get("os") or {}
        repo = entry.get("repo") or {}
        count = int(entry.get("count") or 1)
        names = [entry["name"]] if count <= 1 else [f"{entry['name']}-{i}"
                                                     for i in range(1, count + 1)]
        return [NodeSetup(
            name=n,
            roles=tuple(entry.get("roles") or ()),
            os_family=os_.get("family", "debian"),
            os_image=os_.get("image") or ("Rocky Linux 9.3 (Blue Onyx)"
                                          if os_.get("family") == "rhel" else "Ubuntu 22.04.4 LTS"),
            kernel=os_.get("kernel", "5.15.0-105-generic"),
            packages=dict(entry.get("packages") or {}),
            repo_minor=str(repo["minor"]) if repo.get("minor") is not None else None,
            repo_legacy=bool(repo.get("legacy", False)),
            holds=tuple(entry.get("holds", KUBE_PACKAGES)),
            apt_preferences=dict(entry.get("aptPreferences") or {}),
        ) for n in names]


def distro_version(raw: str, family: str) -> str:
    """`1.28.9` / `1.28.9-1.1` / `1.28.9-150500.1.1` in the node's format (deb or rpm)."""
    raw = raw.strip().lstrip("v")
    upstream, _, revision = raw.partition("-")
    if family == "rhel":
        return f"{upstream}-{revision if revision and revision != DEB_REVISION else RPM_RELEASE}"
    return f"{upstream}-{revision if revision and revision != RPM_RELEASE else DEB_REVISION}"


def kube_version_of(package_version: str | None) -> str | None:
    """`1.29.15-1.1` → `v1.29.15` (None when absent or not a Kubernetes version)."""
    if not package_version:
        return None
    try:
        return str(parse_deb_version(package_version).kube_version())
    except VersionError:
        return None


def _family(os_image: str) -> str:
    low = os_image.lower()
    return "rhel" if any(w in low for w in RHEL_WORDS) else "debian"


def setups_from_store(store: Store, overrides: Iterable[NodeSetup] = ()) -> list[NodeSetup]:
    """One setup per Node in `store`; an override with the same name fills in the rest."""
    given = {s.name: s for s in overrides}
    out: list[NodeSetup] = []
    for node in sorted(store.iter("nodes"), key=lambda n: n["metadata"]["name"]):
        name = node["metadata"]["name"]
        labels = node["metadata"].get("labels") or {}
        roles = tuple(sorted(k.split("/", 1)[1] for k in labels
                             if k.startswith("node-role.kubernetes.io/")))
        info = node.get("status", {}).get("nodeInfo", {})
        ip = next((a["address"] for a in node.get("status", {}).get("addresses", [])
                   if a.get("type") == "InternalIP"), DEFAULT_NODE_IP)
        kubelet = info.get("kubeletVersion") or "v1.28.9"
        try:
            plain = parse_kube_version(kubelet).plain
        except VersionError:
            plain = "1.28.9"
        image = info.get("osImage") or "Ubuntu 22.04.4 LTS"
        base = NodeSetup(name=name, roles=roles, os_family=_family(image), os_image=image,
                         kernel=info.get("kernelVersion") or "5.15.0-105-generic",
                         packages={p: plain for p in KUBE_PACKAGES}, internal_ip=ip)
        o = given.pop(name, None)
        if o is not None:
            base = NodeSetup(
                name=name, roles=o.roles or base.roles, os_family=o.os_family,
                os_image=o.os_image if o.os_image != DEFAULT_IMAGE else base.os_image,
                kernel=o.kernel if o.kernel != DEFAULT_KERNEL else base.kernel,
                packages={**base.packages, **o.packages}, repo_minor=o.repo_minor,
                repo_legacy=o.repo_legacy, holds=o.holds, internal_ip=base.internal_ip,
                apt_preferences=o.apt_preferences)
        out.append(base)
    out.extend(given.values())  # nodes the store does not have yet
    return out


@dataclass(frozen=True, slots=True)
class NodeTiming:
    """Lab seconds for node-side work (DESIGN scenario `timing`)."""

    kubelet_restart: float = 10.0
    static_pod_restart: float = 20.0
    package_install: float = 8.0

    @staticmethod
    def of(timing: Any) -> NodeTiming:
        """From a mapping or object with camelCase (`kubeletRestart`) or snake_case fields."""
        if timing is None or isinstance(timing, NodeTiming):
            return timing or NodeTiming()

        def get(camel: str, snake: str, default: float) -> float:
            for key in (camel, snake):
                if isinstance(timing, Mapping) and key in timing:
                    return float(timing[key])
                if not isinstance(timing, Mapping) and hasattr(timing, key):
                    return float(getattr(timing, key))
            return default

        return NodeTiming(get("kubeletRestart", "kubelet_restart", 10.0),
                          get("staticPodRestart", "static_pod_restart", 20.0),
                          get("packageInstall", "package_install", 8.0))
