"""Support status on a date (boundaries belong to the later phase) and data staleness."""

from datetime import date, timedelta

import pytest

from kubehop.core.support import (
    STALE_AFTER_DAYS,
    data_age_days,
    is_stale,
    latest_patch_on,
    latest_version_on,
    minor_status,
    staleness_finding,
    staleness_warning,
    support_status,
    support_table,
    supported_minors,
)
from kubehop.data import load_release_data
from kubehop.model.findings import Severity
from kubehop.model.releases import MinorRelease, SupportStatus
from kubehop.model.versions import parse_kube_version, parse_minor_version
from tests.release_pins import (
    EOL,
    GENERATED,
    MAINTENANCE,
    NEWEST,
    PLANNED,
    PLANNED_GA,
    SUPPORTED_AT_GENERATED,
)

V = parse_kube_version
M = parse_minor_version
S = SupportStatus
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def data():
    return load_release_data()


RELEASE = MinorRelease(
    minor=M("1.40"),
    ga=date(2027, 4, 20),
    maintenance_start=date(2028, 4, 28),
    eol=date(2028, 6, 28),
    patches=(),
)


@pytest.mark.parametrize(
    ("day", "status"),
    [
        (RELEASE.ga - DAY, S.UNRELEASED),
        (RELEASE.ga, S.SUPPORTED),
        (RELEASE.maintenance_start - DAY, S.SUPPORTED),
        (RELEASE.maintenance_start, S.MAINTENANCE),
        (RELEASE.eol - DAY, S.MAINTENANCE),
        (RELEASE.eol, S.END_OF_LIFE),
        (RELEASE.eol + 1000 * DAY, S.END_OF_LIFE),
    ],
)
def test_status_at_the_boundaries(day, status):
    assert minor_status(RELEASE, day) is status


@pytest.mark.parametrize(
    ("minor", "day", "status"),
    [
        *[row for m in ("1.34", "1.35") for row in (
            (m, MAINTENANCE[m] - DAY, S.SUPPORTED), (m, MAINTENANCE[m], S.MAINTENANCE),
            (m, EOL[m] - DAY, S.MAINTENANCE), (m, EOL[m], S.END_OF_LIFE))],
        (PLANNED, PLANNED_GA - DAY, S.UNRELEASED),
        (PLANNED, PLANNED_GA, S.SUPPORTED),
        ("1.38", date(2026, 11, 25), S.UNKNOWN_NEWER),
        ("1.18", date(2026, 11, 25), S.END_OF_LIFE),
    ],
)
def test_status_of_shipped_minors(data, minor, day, status):
    assert support_status(data, M(minor), day) is status


def test_latest_patch_on_a_day_ignores_later_patches(data):
    assert latest_patch_on(data, M("1.28"), date(2024, 4, 15)) == V("v1.28.8")
    assert latest_patch_on(data, M("1.28"), date(2024, 4, 16)) == V("v1.28.9")
    assert latest_patch_on(data, M("1.28"), date(2023, 1, 1)) is None
    assert latest_patch_on(data, M("1.37"), date(2026, 11, 25)) is None
    assert latest_patch_on(data, M("1.50"), date(2026, 11, 25)) is None


def test_latest_version_on_a_day(data):
    assert latest_version_on(data, date(2026, 11, 25)) == V(NEWEST)
    assert latest_version_on(data, date(2024, 4, 16)) == V("v1.29.4")
    assert latest_version_on(data, date(2019, 1, 1)) is None


def test_supported_minors(data):
    assert supported_minors(data, GENERATED) == [M(m) for m in SUPPORTED_AT_GENERATED]
    assert supported_minors(data, date(2026, 11, 25)) == [M("1.35"), M("1.36"), M("1.37")]


def test_support_table_is_newest_first_unless_asked(data):
    day = date(2026, 11, 25)
    rows = support_table(data, day)
    assert [r.minor for r in rows] == data.minors()[::-1]
    assert [r.minor for r in support_table(data, day, newest_first=False)] == data.minors()
    by_minor = {str(r.minor): r for r in rows}
    assert by_minor["1.28"].to_dict() == {
        "minor": "1.28", "ga": "2023-08-15", "maintenanceStart": "2024-08-28",
        "eol": "2024-10-28", "latestPatch": "v1.28.15", "status": "end-of-life",
        "unsure": False, "note": None,
    }
    assert by_minor["1.37"].latest_patch is None
    assert by_minor["1.37"].unsure


def test_staleness_starts_after_60_days(data):
    assert STALE_AFTER_DAYS == 60
    fresh = data.data_date + timedelta(days=60)
    stale = fresh + DAY
    assert data_age_days(data, fresh) == 60
    assert not is_stale(data, fresh)
    assert staleness_warning(data, fresh) is None
    assert staleness_finding(data, fresh) is None
    assert is_stale(data, stale)
    warning = staleness_warning(data, stale)
    assert "61 days old" in warning
    assert GENERATED.isoformat() in warning
    assert "--release-data FILE" in warning
    assert "\n" not in warning


def test_a_day_before_the_snapshot_is_not_stale(data):
    assert data_age_days(data, date(2026, 1, 1)) < 0
    assert not is_stale(data, date(2026, 1, 1))


def test_staleness_finding_for_check(data):
    finding = staleness_finding(data, date(2026, 11, 25))
    assert (finding.id, finding.severity, finding.subject) == ("data.stale", Severity.WARNING,
                                                              "release-data")
    assert "95 days old" in finding.message
    assert "--release-data" in finding.fix
    assert staleness_finding(data, date(2026, 11, 25), max_age_days=100) is None
