"""A node's package database and service state, kept as JSON beside its file tree.

What dpkg/rpm and apt/dnf remember between commands: installed packages and versions, apt
holds, dnf versionlocks, the package lists `apt-get update` fetched, and what the kubelet runs
(its version, the version whose configuration kubeadm last wrote, whether the unit is active).
Saved after every change, so a restarted lab process finds the node as it was.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class PackageState:
    """Everything a node remembers outside its files: its package database, holds and locks,
    fetched lists, and its kubelet's state (not `model.cluster.NodeState`, what kubehop
    observes of a node)."""

    installed: dict[str, str] = field(default_factory=dict)  # package → version (deb or rpm)
    holds: list[str] = field(default_factory=list)  # apt-mark holds
    versionlocks: list[str] = field(default_factory=list)  # dnf versionlock entries
    apt_lists: list[str] = field(default_factory=list)  # source URIs whose lists were fetched
    kubelet_running: str | None = None  # version of the running kubelet (`v1.28.9`)
    kubelet_config: str | None = None  # version whose kubelet config kubeadm last wrote
    kubelet_active: bool = True

    @staticmethod
    def load(path: Path) -> PackageState | None:
        """The saved state, or None when there is none yet."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        known = PackageState.__dataclass_fields__
        return PackageState(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        """Write atomically (a crash never leaves half a database)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)


class PackageDB:
    """The state of one node bound to its file; every mutator saves."""

    def __init__(self, path: Path, state: PackageState) -> None:
        self.path = path
        self.state = state

    def save(self) -> None:
        self.state.save(self.path)

    def version(self, name: str) -> str | None:
        return self.state.installed.get(name)

    def install(self, name: str, version: str) -> None:
        self.state.installed[name] = version
        self.save()

    def remove(self, name: str) -> None:
        self.state.installed.pop(name, None)
        self.save()

    def held(self, name: str) -> bool:
        return name in self.state.holds

    def set_hold(self, name: str, on: bool) -> bool:
        """Hold or release `name`; False when it already was in that state."""
        if (name in self.state.holds) == on:
            return False
        if on:
            self.state.holds = sorted({*self.state.holds, name})
        else:
            self.state.holds = [h for h in self.state.holds if h != name]
        self.save()
        return True
