"""Node setups from scenario entries and Node objects; package versions per distribution."""

from kubehop.lab.api.store import Store
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.fixtures.specs import oldversion_spec
from kubehop.lab.node.config import NodeSetup, NodeTiming, distro_version, setups_from_store
from kubehop.lab.node.repos import repo_for


def test_scenario_entries_expand_count_and_keep_their_fields():
    entry = {"name": "w", "count": 2, "os": {"family": "rhel"}, "repo": {"minor": "1.27"},
             "packages": {"kubelet": "1.27.16-1.1"}, "holds": ["kubelet"]}
    setups = NodeSetup.from_scenario(entry)
    assert [s.name for s in setups] == ["w-1", "w-2"]
    assert setups[0].rpm
    assert setups[0].package_version("kubelet") == "1.27.16-150500.1.1"
    assert setups[0].repo_minor == "1.27"
    assert setups[0].holds == ("kubelet",)


def test_versions_follow_the_distribution():
    assert distro_version("v1.29.3", "debian") == "1.29.3-1.1"
    assert distro_version("1.29.3-150500.1.1", "debian") == "1.29.3-1.1"
    assert distro_version("1.29.3-1.1", "rhel") == "1.29.3-150500.1.1"


def test_setups_from_store_take_roles_versions_and_overrides():
    store = Store()
    populate(oldversion_spec(), store)
    override = NodeSetup("oldversion3", os_family="rhel", os_image="Rocky Linux 9.3")
    setups = {s.name: s for s in setups_from_store(store, [override])}
    assert setups["oldversion1"].control_plane
    assert setups["oldversion2"].packages["kubeadm"] == "1.28.9"
    assert setups["oldversion3"].rpm


def test_timing_from_camel_or_snake_case():
    assert NodeTiming.of({"kubeletRestart": 3}).kubelet_restart == 3.0
    assert NodeTiming.of({"static_pod_restart": 4}).static_pod_restart == 4.0
    assert NodeTiming.of(None) == NodeTiming()


def test_repositories_exist_per_minor_only_on_pkgs_k8s_io():
    repo = repo_for("https://pkgs.k8s.io/core:/stable:/v1.29/deb/", "deb")
    assert repo is not None
    assert "1.29.15-1.1" in repo.packages()["kubeadm"]
    assert repo.packages()["cri-tools"] == ["1.29.0-1.1"]
    assert repo_for("https://pkgs.k8s.io/core:/stable:/v1.23/deb/", "deb") is None
    assert repo_for("https://apt.kubernetes.io/", "deb") is None
    assert repo_for("https://pkgs.k8s.io/core:/stable:/v1.29/deb/", "rpm") is None
