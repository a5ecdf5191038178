"""The release data's kubelet tables: flags removed per minor and host requirements per minor."""

import pytest

from kubehop.data import load_release_data, parse_release_data
from kubehop.model.errors import UsageError
from kubehop.model.versions import parse_minor_version

M = parse_minor_version
HEAD = """\
apiVersion: kubehop.dev/v1
kind: ReleaseData
generated: 2026-08-22
minors:
  "1.35":
    ga: 2025-12-17
    maintenanceStart: 2026-12-28
    eol: 2027-02-28
    patches: {v1.35.0: 2025-12-17}
"""


def test_kubelet_1_35_removed_the_pod_infra_container_image_flag_and_needs_cgroup_v2():
    data = load_release_data()
    removed = {r.flag: r.removed_in for r in data.kubelet_removed_flags}
    assert removed["--pod-infra-container-image"] == M("1.35")
    assert removed["--container-runtime"] == M("1.27")
    [cgroup] = [r for r in data.host_requirements if r.requirement == "cgroupV2"]
    assert cgroup.since == M("1.35")
    assert "#134298" in cgroup.source


def test_a_user_file_may_add_a_removed_flag():
    data = parse_release_data(HEAD + """\
kubeletRemovedFlags:
  - {flag: "--foo", removedIn: "1.35", fix: "drop it", source: "CHANGELOG-1.35"}
""")
    assert [(r.flag, r.removed_in, r.fix) for r in data.kubelet_removed_flags] == [
        ("--foo", M("1.35"), "drop it")]


@pytest.mark.parametrize(("extra", "expected"), [
    ('kubeletRemovedFlags:\n  - {flag: "--foo=1", removedIn: "1.35", fix: x, source: y}\n',
     "kubeletRemovedFlags[0].flag: expected a flag name like --pod-infra-container-image"),
    ('kubeletRemovedFlags:\n  - {flag: "--foo", removedIn: 1.35, fix: x, source: y}\n',
     "kubeletRemovedFlags[0].removedIn: expected a minor version"),
    ('hostRequirements:\n  - {requirement: selinux, since: "1.35", fix: x, source: y}\n',
     "hostRequirements[0].requirement: expected one of cgroupV2, got 'selinux'"),
    ('hostRequirements:\n  - {requirement: cgroupV2, since: "1.35", fix: x}\n',
     "hostRequirements[0]: missing key 'source'"),
])
def test_a_bad_table_entry_is_one_line_naming_the_place(extra, expected):
    with pytest.raises(UsageError) as e:
        parse_release_data(HEAD + extra, source="f.yaml")
    assert str(e.value).startswith("release data f.yaml: ")
    assert expected in str(e.value)
    assert "\n" not in str(e.value)
