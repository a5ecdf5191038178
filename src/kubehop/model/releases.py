"""Release data: what kubehop knows about Kubernetes releases, as frozen dataclasses.

Facts only (dates, versions, image tags); `kubehop.data.loader` builds them from YAML and
`kubehop.core.support` interprets them on a date. Every fact may carry `unsure` (not confirmed
from two sources) and a one-line `note`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import NamedTuple

from kubehop.model.versions import KubeVersion, MinorVersion


class SupportStatus(StrEnum):
    """Where a minor stands in its upstream life cycle on a given date."""

    UNRELEASED = "unreleased"  # in the data, GA still in the future
    SUPPORTED = "supported"  # GA <= date < maintenance start: regular patch releases
    MAINTENANCE = "maintenance"  # maintenance start <= date < end of life: critical fixes only
    END_OF_LIFE = "end-of-life"  # date >= end of life: no more patches
    UNKNOWN_NEWER = "unknown-newer"  # newer than every minor the data knows


class KubeadmComponents(NamedTuple):
    """Image tags kubeadm installs by default, as `kubeadm config images list` prints them."""

    etcd: str
    coredns: str
    pause: str


@dataclass(frozen=True, slots=True)
class KubeadmChange:
    """From patch `since` on, kubeadm of this minor installs `components`."""

    since: KubeVersion
    components: KubeadmComponents


@dataclass(frozen=True, slots=True)
class KubeadmDefaults:
    """kubeadm's default etcd/CoreDNS/pause for one minor: the x.y.0 set, then changes by patch.

    `verified_through` is the newest version whose images were checked; later patches resolve
    to the last known set but are not verified (see `is_verified`).
    """

    ga: KubeadmComponents
    changes: tuple[KubeadmChange, ...]
    verified_through: KubeVersion
    unsure: bool = False
    note: str | None = None

    def components(self, version: KubeVersion) -> KubeadmComponents:
        """The defaults of `version` (a patch of this minor): the last change at or before it."""
        current = self.ga
        for change in self.changes:
            if change.since <= version.base:
                current = change.components
        return current

    def is_verified(self, version: KubeVersion) -> bool:
        """Whether `version`'s images were checked (not just carried over from an older patch)."""
        return version.base <= self.verified_through


@dataclass(frozen=True, slots=True)
class PatchRelease:
    """One patch release and the day it was tagged."""

    version: KubeVersion
    date: date


@dataclass(frozen=True, slots=True)
class MinorRelease:
    """One minor: its life-cycle dates, its patches (oldest first) and kubeadm's defaults.

    `maintenance_start` ends standard support (critical fixes only from then on); `eol` ends
    patch support. `patches` may be empty (a minor announced but not released in the data).
    """

    minor: MinorVersion
    ga: date
    maintenance_start: date
    eol: date
    patches: tuple[PatchRelease, ...]
    kubeadm: KubeadmDefaults | None = None
    unsure: bool = False
    note: str | None = None

    @property
    def latest_patch(self) -> KubeVersion | None:
        return self.patches[-1].version if self.patches else None

    def patches_on(self, day: date) -> tuple[PatchRelease, ...]:
        """The patches tagged on or before `day`."""
        return tuple(p for p in self.patches if p.date <= day)


@dataclass(frozen=True, slots=True)
class RemovedApi:
    """An API version the apiserver stops serving for some kinds.

    `kinds` may be `("*",)` for every kind of the group version; `removed_in` is the first
    minor that no longer serves it (None: deprecated, removal not scheduled).
    """

    api_version: str
    kinds: tuple[str, ...]
    deprecated_in: MinorVersion | None
    removed_in: MinorVersion | None
    replacement: str | None
    replacement_since: MinorVersion | None
    unsure: bool = False
    note: str | None = None

    def covers(self, api_version: str, kind: str) -> bool:
        """Whether this entry is about `kind` in `api_version`."""
        return api_version == self.api_version and ("*" in self.kinds or kind in self.kinds)


@dataclass(frozen=True, slots=True)
class CniRelease:
    """A CNI plugin release line (`3.29`) and the Kubernetes minors it is tested with."""

    version: str
    tested: tuple[MinorVersion, ...] | None  # None: the source did not say
    latest_patch: str | None = None
    unsure: bool = False
    note: str | None = None


@dataclass(frozen=True, slots=True)
class CniSupport:
    """What one CNI plugin declares about Kubernetes versions."""

    name: str
    releases: tuple[CniRelease, ...]
    min_kubernetes: MinorVersion | None = None  # a declared lower bound (flannel: 1.17)
    latest: str | None = None
    note: str | None = None
    notes: tuple[str, ...] = ()

    def release(self, version: str) -> CniRelease | None:
        """The release line of `version` (`v3.29.7`, `3.29`), or None when the data lacks it."""
        parts = version.lstrip("v").split(".")
        line = ".".join(parts[:2])
        return next((r for r in self.releases if r.version == line), None)

    def supports(self, version: str, minor: MinorVersion) -> bool | None:
        """Whether CNI `version` declares support for `minor`; None when the data cannot tell."""
        release = self.release(version)
        if release is not None and release.tested is not None:
            return minor in release.tested
        if self.min_kubernetes is not None:
            return minor >= self.min_kubernetes
        return None


@dataclass(frozen=True, slots=True)
class CnpgRelease:
    """A CloudNativePG release line and the Kubernetes minors it supports."""

    version: str
    supported: tuple[MinorVersion, ...]
    tested_not_supported: tuple[MinorVersion, ...]
    released: date | None = None
    eol: date | None = None


@dataclass(frozen=True, slots=True)
class CnpgSupport:
    """CloudNativePG facts: release support matrix and the taints that trigger a switchover."""

    checked_release: str
    drain_taints: tuple[str, ...]
    releases: tuple[CnpgRelease, ...]


@dataclass(frozen=True, slots=True)
class KubeletFlagRemoval:
    """A kubelet command-line flag the kubelet of `removed_in` and later no longer accepts: a
    kubelet started with it exits, so the node never comes back after its upgrade."""

    flag: str  # `--pod-infra-container-image`
    removed_in: MinorVersion
    fix: str  # one line: what to do instead
    source: str  # where the removal is announced (changelog and pull request)
    unsure: bool = False


@dataclass(frozen=True, slots=True)
class HostRequirement:
    """Something the kubelet of `since` and later needs from its host. `requirement` is one of
    `HOST_REQUIREMENTS` (the checks know how to test each)."""

    requirement: str
    since: MinorVersion
    fix: str
    source: str
    unsure: bool = False


# Host requirements the checks can test, by the name the release data uses.
HOST_REQUIREMENTS = ("cgroupV2",)


@dataclass(frozen=True, slots=True)
class MinorSupport:
    """One minor as seen on a given day: its dates, newest patch released by then, status."""

    minor: MinorVersion
    ga: date
    maintenance_start: date
    eol: date
    latest_patch: KubeVersion | None
    status: SupportStatus
    unsure: bool = False
    note: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The machine-readable shape (`releases -o json`): camelCase, ISO dates, `v1.28.15`."""
        return {
            "minor": str(self.minor),
            "ga": self.ga.isoformat(),
            "maintenanceStart": self.maintenance_start.isoformat(),
            "eol": self.eol.isoformat(),
            "latestPatch": str(self.latest_patch) if self.latest_patch else None,
            "status": str(self.status),
            "unsure": self.unsure,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class ReleaseData:
    """Everything kubehop knows about releases, as of `data_date`.

    `releases` is sorted oldest first; `source` names where it came from (for messages).
    """

    data_date: date
    releases: tuple[MinorRelease, ...]
    removed_apis: tuple[RemovedApi, ...] = ()
    cni_support: tuple[CniSupport, ...] = ()
    cnpg: CnpgSupport | None = None
    sources: tuple[str, ...] = ()
    source: str = "shipped release data"
    kubelet_removed_flags: tuple[KubeletFlagRemoval, ...] = ()
    host_requirements: tuple[HostRequirement, ...] = ()

    def minors(self) -> list[MinorVersion]:
        """Every known minor, oldest first."""
        return [r.minor for r in self.releases]

    def minor(self, minor: MinorVersion) -> MinorRelease | None:
        """The release record of `minor`, or None when the data does not know it."""
        return next((r for r in self.releases if r.minor == minor), None)

    @property
    def oldest_minor(self) -> MinorVersion:
        return self.releases[0].minor

    @property
    def newest_minor(self) -> MinorVersion:
        return self.releases[-1].minor

    def patches(self, minor: MinorVersion) -> list[KubeVersion]:
        """Every known patch of `minor`, oldest first (empty when unknown or unreleased)."""
        release = self.minor(minor)
        return [p.version for p in release.patches] if release else []

    def all_versions(self) -> list[KubeVersion]:
        """Every known patch of every minor, sorted."""
        return sorted(p.version for r in self.releases for p in r.patches)

    def latest_patch(self, minor: MinorVersion) -> KubeVersion | None:
        """The newest known patch of `minor`, or None."""
        release = self.minor(minor)
        return release.latest_patch if release else None

    def patch_date(self, version: KubeVersion) -> date | None:
        """The day `version` was tagged, or None when it is not a known patch."""
        release = self.minor(version.minor_version)
        if release is None:
            return None
        return next((p.date for p in release.patches if p.version == version.base), None)

    def is_known(self, version: KubeVersion) -> bool:
        """Whether `version` (vendor suffixes ignored) is a released patch in the data."""
        return self.patch_date(version) is not None

    def kubeadm_components(self, version: KubeVersion) -> KubeadmComponents | None:
        """The etcd/CoreDNS/pause tags kubeadm `version` installs; None for an unknown minor."""
        release = self.minor(version.minor_version)
        if release is None or release.kubeadm is None:
            return None
        return release.kubeadm.components(version)

    def cni(self, name: str) -> CniSupport | None:
        """The support facts of CNI plugin `name` (`calico`, `cilium`, `flannel`), or None."""
        return next((c for c in self.cni_support if c.name == name.lower()), None)

    def removed_for(self, api_version: str, kind: str) -> RemovedApi | None:
        """The removal record of `kind` in `api_version`, or None when it is not removed."""
        return next((r for r in self.removed_apis if r.covers(api_version, kind)), None)
