"""Support status of Kubernetes minors on a date, latest patches, and how old the data is.

Pure: the day is always an argument (`today`), never read from the clock.

Statuses (upstream's patch-release policy, dates from the release data):
- `unreleased`     the data knows the minor but its GA is after `today`;
- `supported`      GA <= today < maintenance start: regular monthly patches;
- `maintenance`    maintenance start <= today < end of life: critical fixes only;
- `end-of-life`    today >= end of life (also minors older than the data: it starts at 1.19);
- `unknown-newer`  newer than every minor in the data: it cannot tell, the data is too old.
"""

from __future__ import annotations

from datetime import date

from kubehop.model.findings import Finding, Severity
from kubehop.model.releases import MinorRelease, MinorSupport, ReleaseData, SupportStatus
from kubehop.model.versions import KubeVersion, MinorVersion

# Release data older than this warns: upstream tags patches monthly, so two months of age
# means at least two patch rounds (and possibly a minor) are missing.
STALE_AFTER_DAYS = 60


def minor_status(release: MinorRelease, today: date) -> SupportStatus:
    """The status of a minor the data knows, on `today` (boundaries belong to the later phase)."""
    if today < release.ga:
        return SupportStatus.UNRELEASED
    if today < release.maintenance_start:
        return SupportStatus.SUPPORTED
    if today < release.eol:
        return SupportStatus.MAINTENANCE
    return SupportStatus.END_OF_LIFE


def support_status(data: ReleaseData, minor: MinorVersion, today: date) -> SupportStatus:
    """The status of any minor on `today`, including minors the data does not know."""
    release = data.minor(minor)
    if release is not None:
        return minor_status(release, today)
    if minor > data.newest_minor:
        return SupportStatus.UNKNOWN_NEWER
    return SupportStatus.END_OF_LIFE


def latest_patch_on(data: ReleaseData, minor: MinorVersion, today: date) -> KubeVersion | None:
    """The newest patch of `minor` tagged on or before `today`, or None."""
    release = data.minor(minor)
    if release is None:
        return None
    patches = release.patches_on(today)
    return patches[-1].version if patches else None


def latest_version_on(data: ReleaseData, today: date) -> KubeVersion | None:
    """The newest patch of any minor tagged on or before `today`, or None."""
    versions = [p.version for r in data.releases for p in r.patches_on(today)]
    return max(versions, default=None)


def supported_minors(data: ReleaseData, today: date) -> list[MinorVersion]:
    """Minors still receiving patches (supported or in maintenance) on `today`, oldest first."""
    receiving = (SupportStatus.SUPPORTED, SupportStatus.MAINTENANCE)
    return [r.minor for r in data.releases if minor_status(r, today) in receiving]


def support_table(data: ReleaseData, today: date, newest_first: bool = True) -> list[MinorSupport]:
    """Every minor of the data as seen on `today`: dates, latest patch by then, status."""
    rows = [
        MinorSupport(
            minor=r.minor,
            ga=r.ga,
            maintenance_start=r.maintenance_start,
            eol=r.eol,
            latest_patch=latest_patch_on(data, r.minor, today),
            status=minor_status(r, today),
            unsure=r.unsure,
            note=r.note,
        )
        for r in data.releases
    ]
    return rows[::-1] if newest_first else rows


def data_age_days(data: ReleaseData, today: date) -> int:
    """Days from the data's snapshot date to `today` (negative when `today` is earlier)."""
    return (today - data.data_date).days


def is_stale(data: ReleaseData, today: date, max_age_days: int = STALE_AFTER_DAYS) -> bool:
    """Whether the data is more than `max_age_days` old on `today`."""
    return data_age_days(data, today) > max_age_days


def staleness_warning(
    data: ReleaseData, today: date, max_age_days: int = STALE_AFTER_DAYS
) -> str | None:
    """One line saying how old the data is and how to refresh it; None while it is fresh."""
    if not is_stale(data, today, max_age_days):
        return None
    return (
        f"release data is {data_age_days(data, today)} days old (from {data.data_date}, "
        f"warning after {max_age_days} days): newer patches, minors and end-of-life dates may be "
        "missing; pass fresh data with --release-data FILE or upgrade kubehop"
    )


def staleness_finding(
    data: ReleaseData, today: date, max_age_days: int = STALE_AFTER_DAYS
) -> Finding | None:
    """The `data.stale` warning finding for `check`, or None while the data is fresh."""
    if not is_stale(data, today, max_age_days):
        return None
    return Finding(
        id="data.stale",
        severity=Severity.WARNING,
        subject="release-data",
        message=(
            f"release data is {data_age_days(data, today)} days old (from {data.data_date}); "
            "newer patches, minors and end-of-life dates may be missing"
        ),
        fix="pass fresh data with --release-data FILE or upgrade kubehop",
    )
