"""The shipped release data and its loader: facts resolve, bad files fail in one line."""

import dataclasses
from datetime import date
from importlib import resources

import pytest

from kubehop.data import load_release_data, parse_release_data
from kubehop.model.errors import UsageError
from kubehop.model.releases import KubeadmComponents
from kubehop.model.versions import MinorVersion, parse_kube_version, parse_minor_version
from tests.release_pins import GENERATED, NEWEST, PLANNED, PLANNED_GA, latest

V = parse_kube_version
M = parse_minor_version

MINIMAL = """\
apiVersion: kubehop.dev/v1
kind: ReleaseData
generated: 2026-08-22
minors:
  "1.30":
    ga: 2024-04-17
    maintenanceStart: 2025-04-28
    eol: 2025-07-15
    patches: {v1.30.0: 2024-04-17, v1.30.1: 2024-05-14}
    kubeadm:
      ga: {etcd: "3.5.12-0", coredns: "v1.11.1", pause: "3.9"}
      changes:
        - {from: v1.30.1, etcd: "3.5.15-0", coredns: "v1.11.3", pause: "3.9"}
      verifiedThrough: v1.30.1
"""


@pytest.fixture(scope="module")
def data():
    return load_release_data()


def test_the_data_file_ships_inside_the_package():
    assert resources.files("kubehop.data").joinpath("releases.yaml").is_file()


def test_shipped_data_has_its_snapshot_date_and_every_minor_from_1_19_to_1_37(data):
    assert data.data_date == GENERATED
    newest = M(PLANNED)
    assert data.minors() == [MinorVersion(1, n) for n in range(19, newest.minor + 1)]
    assert (data.oldest_minor, data.newest_minor) == (M("1.19"), newest)
    assert data.source.startswith("shipped release data")


def test_every_patch_of_1_28_is_present_with_its_date(data):
    assert data.patches(M("1.28")) == [V(f"v1.28.{n}") for n in range(16)]
    assert data.patch_date(V("v1.28.9")) == date(2024, 4, 16)
    assert data.patch_date(V("v1.28.15")) == date(2024, 10, 22)
    assert data.is_known(V("v1.28.9-eks-8cb36c9"))
    assert not data.is_known(V("v1.28.16"))


def test_latest_patches(data):
    assert data.latest_patch(M("1.29")) == V("v1.29.15")
    assert data.latest_patch(M("1.36")) == V(latest("1.36"))
    assert data.latest_patch(M("1.18")) is None


def test_1_37_is_announced_but_has_no_patch_and_says_it_is_unsure(data):
    release = data.minor(M(PLANNED))
    assert release.ga == PLANNED_GA
    assert release.patches == ()
    assert data.latest_patch(M(PLANNED)) is None
    assert release.unsure
    assert "not GA" in release.note


def test_all_versions_lists_every_patch_once_in_order(data):
    versions = data.all_versions()
    assert versions == sorted(set(versions))
    assert (versions[0], versions[-1]) == (V("v1.19.0"), V(NEWEST))
    assert len(versions) == sum(len(data.patches(m)) for m in data.minors())


def test_lifecycle_dates_are_ordered_and_patches_start_at_ga(data):
    for release in data.releases:
        assert release.ga <= release.maintenance_start <= release.eol
        if release.patches:
            assert release.patches[0].version == V(f"v{release.minor}.0")
            assert release.patches[0].date == release.ga


@pytest.mark.parametrize(
    ("version", "etcd", "coredns", "pause"),
    [
        ("v1.28.0", "3.5.9-0", "v1.10.1", "3.9"),
        ("v1.28.9", "3.5.12-0", "v1.10.1", "3.9"),
        ("v1.28.15", "3.5.15-0", "v1.10.1", "3.9"),
        ("v1.30.4", "3.5.12-0", "v1.11.1", "3.9"),
        ("v1.30.5", "3.5.15-0", "v1.11.3", "3.9"),
        ("v1.31.0", "3.5.15-0", "v1.11.1", "3.10"),
        ("v1.19.0", "3.4.9-1", "1.7.0", "3.2"),
        ("v1.36.4", "3.6.8-0", "v1.14.2", "3.10.2"),
        ("v1.37.0-rc.0", "3.7.0-0", "v1.14.6", "3.10.2"),
        ("v1.28.9-eks-8cb36c9", "3.5.12-0", "v1.10.1", "3.9"),
    ],
)
def test_kubeadm_components_resolve_for_any_patch(data, version, etcd, coredns, pause):
    assert data.kubeadm_components(V(version)) == KubeadmComponents(etcd, coredns, pause)


def test_kubeadm_components_of_every_known_patch_resolve(data):
    assert all(data.kubeadm_components(v) is not None for v in data.all_versions())
    assert data.kubeadm_components(V("v1.18.20")) is None


def test_kubeadm_components_after_the_checked_patches_are_not_verified(data):
    kubeadm = data.minor(M("1.34")).kubeadm
    assert kubeadm.is_verified(V("v1.34.10"))
    assert not kubeadm.is_verified(V("v1.34.11"))
    assert kubeadm.unsure
    assert "3.6.9-0" in kubeadm.note
    assert not data.minor(M("1.37")).kubeadm.is_verified(V("v1.37.0"))


def test_removed_apis(data):
    pdb = data.removed_for("policy/v1beta1", "PodDisruptionBudget")
    assert (pdb.deprecated_in, pdb.removed_in) == (M("1.21"), M("1.25"))
    assert pdb.replacement == "policy/v1"
    psp = data.removed_for("policy/v1beta1", "PodSecurityPolicy")
    assert psp.replacement is None
    assert psp.note
    assert data.removed_for("resource.k8s.io/v1alpha2", "ResourceClaim").removed_in == M("1.31")
    assert data.removed_for("apps/v1", "Deployment") is None
    assert data.removed_for("networking.k8s.io/v1beta1", "ServiceCIDR").unsure


def test_cni_support(data):
    calico, cilium, flannel = data.cni("calico"), data.cni("Cilium"), data.cni("flannel")
    assert calico.supports("v3.29.7", M("1.30")) is True
    assert calico.supports("v3.29.7", M("1.33")) is False
    assert calico.release("3.33").unsure
    assert cilium.supports("1.20.0", M("1.35")) is None  # the source did not say
    assert cilium.supports("1.99.0", M("1.35")) is None  # a release the data lacks
    assert flannel.supports("v0.28.9", M("1.30")) is True  # declared lower bound 1.17
    assert flannel.supports("v0.28.9", M("1.16")) is False
    assert data.cni("weave") is None


def test_cnpg_support(data):
    assert data.cnpg.checked_release == "v1.30.0"
    assert "node.kubernetes.io/unschedulable" in data.cnpg.drain_taints
    assert data.cnpg.releases[0].supported == (M("1.34"), M("1.35"), M("1.36"))


def test_a_user_file_in_the_shipped_format_loads_the_same(data, tmp_path):
    shipped = resources.files("kubehop.data").joinpath("releases.yaml").read_text("utf-8")
    path = tmp_path / "releases.yaml"
    path.write_text(shipped)
    assert load_release_data(str(path)) == dataclasses.replace(data, source=str(path))


def test_minimal_file_loads_with_optional_sections_empty(tmp_path):
    path = tmp_path / "mini.yaml"
    path.write_text(MINIMAL)
    mini = load_release_data(str(path))
    assert mini.minors() == [M("1.30")]
    assert mini.kubeadm_components(V("v1.30.1")).coredns == "v1.11.3"
    assert (mini.removed_apis, mini.cni_support, mini.cnpg) == ((), (), None)


CHANGE = '{from: v1.30.1, etcd: "3.5.16-0", coredns: "v1.11.3", pause: "3.9"}'


def _fails(text: str, source: str = "f.yaml") -> str:
    with pytest.raises(UsageError) as exc:
        parse_release_data(text, source=source)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"release data {source}: ")
    return message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("minors:", "minors: [", "not valid YAML"),
        ("kubehop.dev/v1", "kubehop.dev/v2", "apiVersion: expected 'kubehop.dev/v1'"),
        ("kind: ReleaseData", "kind: Other", "kind: expected 'ReleaseData'"),
        ("generated: 2026-08-22", "generated: soon", "generated: expected a date like 2026-08-22"),
        ("generated: 2026-08-22", "generated: 2026-08-22T10:00:00", "generated: expected a date"),
        ("generated: 2026-08-22", "created: 2026-08-22", "missing key 'generated'"),
        ("kind: ReleaseData", "kind: ReleaseData\nextra: 1", "unknown key 'extra'"),
        ('"1.30":', "1.30:", 'a number: quote it, e.g. "1.30"'),
        ('"1.30":', '"one.thirty":', "not a Kubernetes minor version"),
        ("eol: 2025-07-15", "eol: 2025-02-30", 'minors["1.30"].eol: expected a date'),
        ("eol: 2025-07-15", "eol: 2024-01-01", "dates out of order"),
        ("v1.30.1: 2024-05-14", "v1.31.1: 2024-05-14", "v1.31.1 is not a patch of 1.30"),
        ("v1.30.1: 2024-05-14", "v1.30.x: 2024-05-14", "not a Kubernetes version"),
        ("v1.30.1: 2024-05-14", "v1.30.0: 2024-05-14", "duplicate key 'v1.30.0'"),
        ("v1.30.1: 2024-05-14", "1.30.0: 2024-05-14", "v1.30.0 appears twice"),
        ("v1.30.1: 2024-05-14", "v1.30.1-rc.0: 2024-05-14", "not an upstream release"),
        ('pause: "3.9"}\n      changes', "pause: 3.10}\n      changes", "ga.pause: expected"),
        ('"v1.11.3", pause: "3.9"}', '"v1.11.3", pause: "3.9"}\n        - ' + CHANGE,
         "from v1.30.1 is not after v1.30.1"),
        ('"v1.11.3", pause: "3.9"}', '"v1.11.3", pause: "3.9", image: x}', "unknown key 'image'"),
        ("verifiedThrough: v1.30.1", "verifiedThrough: v1.29.1", "not a patch of 1.30"),
        ("    patches: {", "    unsure: maybe\n    patches: {", "unsure: expected true or false"),
    ],
)
def test_malformed_data_is_one_line_naming_file_and_problem(old, new, expected):
    assert old in MINIMAL
    assert expected in _fails(MINIMAL.replace(old, new, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "document: expected a mapping, got nothing"),
        ("- 1\n- 2\n", "document: expected a mapping, got a list"),
        (MINIMAL.split("minors:")[0] + "minors: {}\n", "minors: empty"),
        (MINIMAL + "removedApis:\n  - {apiVersion: v1, kinds: []}\n", "missing key 'removedIn'"),
        (MINIMAL + "cni: {calico: {releases: [{version: '3.1', testedKubernetes: [1.3]}]}}\n",
         "cni.calico.releases[0].testedKubernetes: expected a minor version"),
    ],
)
def test_malformed_documents(text, expected):
    assert expected in _fails(text)


def test_unreadable_files_are_usage_errors_naming_the_file(tmp_path):
    with pytest.raises(UsageError, match=r"missing\.yaml: no such file"):
        load_release_data(str(tmp_path / "missing.yaml"))
    with pytest.raises(UsageError, match="is a directory"):
        load_release_data(str(tmp_path))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_release_data(str(binary))
