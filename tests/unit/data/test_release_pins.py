"""The release facts tests pin (tests/release_pins.py) are the shipped release data's."""

from kubehop.data import load_release_data
from kubehop.model.versions import parse_kube_version, parse_minor_version
from tests import release_pins


def test_latest_patches_are_the_shipped_ones():
    data = load_release_data()
    for minor, version in release_pins.LATEST.items():
        assert data.latest_patch(parse_minor_version(minor)) == parse_kube_version(version), minor
    assert data.latest_patch(parse_minor_version(release_pins.PLANNED)) is None
    assert data.all_versions()[-1] == parse_kube_version(release_pins.NEWEST)


def test_snapshot_date_and_planned_minor_are_the_shipped_ones():
    data = load_release_data()
    assert data.data_date == release_pins.GENERATED
    assert data.newest_minor == parse_minor_version(release_pins.PLANNED)
    planned = data.minor(parse_minor_version(release_pins.PLANNED))
    assert planned is not None
    assert planned.ga == release_pins.PLANNED_GA


def test_support_dates_are_the_shipped_ones():
    data = load_release_data()
    for minor, eol in release_pins.EOL.items():
        release = data.minor(parse_minor_version(minor))
        assert release is not None, minor
        assert release.eol == eol, minor
    for minor, start in release_pins.MAINTENANCE.items():
        release = data.minor(parse_minor_version(minor))
        assert release is not None, minor
        assert release.maintenance_start == start, minor
