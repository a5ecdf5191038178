"""Node package commands as data: exact argv, stdin and file contents for apt and yum."""

import shlex
from dataclasses import replace
from datetime import date

import pytest

from kubehop.core.checks.nodes import (
    key_findings,
    package_findings,
    source_findings,
    trial_findings,
)
from kubehop.core.node_commands import (
    APT_KEYRING,
    PKGS,
    NodeCommand,
    PackageSource,
    Packaging,
    apt_hold,
    apt_install,
    apt_source_line,
    apt_unhold,
    apt_update,
    apt_upgrade,
    glob_of,
    package_glob,
    package_version,
    repository_commands,
    switch_apt_repository,
    switch_repository,
    switch_yum_repository,
    upgrade_packages,
    yum_install,
    yum_repo_file,
)
from kubehop.model.cluster import (
    ClusterState,
    NodePackages,
    NodeState,
    OsFamily,
    RepoSource,
    RepoTrial,
)
from kubehop.model.findings import Severity
from kubehop.model.versions import MinorVersion, parse_kube_version

V129 = MinorVersion(1, 29)
KEEP = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")
SCOPED = ("-o", "Dir::Etc::sourcelist=/etc/apt/sources.list.d/kubernetes.list",
          "-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0",
          "-o", "APT::Update::Error-Mode=any")


def test_apt_source_line_is_the_upstream_guides():
    assert apt_source_line(V129) == (
        "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
        "https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /\n")
    local = PackageSource(url="file:/srv/repo/v{minor}/", keyring=None, trusted=True)
    assert apt_source_line(MinorVersion(1, 28), local) == \
        "deb [trusted=yes] file:/srv/repo/v1.28/ /\n"
    assert apt_source_line(V129, PackageSource(url="http://mirror/{kind}/{minor}/",
                                               keyring=None)) == "deb http://mirror/deb/1.29/ /\n"


def test_switching_the_apt_repository_writes_the_whole_file_through_tee():
    cmd = switch_apt_repository(V129)
    assert cmd == NodeCommand(("tee", "/etc/apt/sources.list.d/kubernetes.list"),
                              "point apt at the Kubernetes 1.29 package repository",
                              stdin=apt_source_line(V129), sudo=True)
    rooted = switch_apt_repository(V129, root="/tmp/r/")
    assert rooted.argv == ("tee", "/tmp/r/etc/apt/sources.list.d/kubernetes.list")


def test_the_full_apt_upgrade_sequence():
    versions = {"kubeadm": "1.29.15-1.1"}
    cmds = apt_upgrade(V129, versions)
    assert [c.line for c in cmds] == [
        "tee /etc/apt/sources.list.d/kubernetes.list",
        "apt-get update " + shlex.join(SCOPED),
        "apt-mark unhold kubeadm",
        "apt-get install -y " + shlex.join(KEEP) + " kubeadm=1.29.15-1.1",
        "apt-mark hold kubeadm",
    ]
    assert all(c.sudo for c in cmds)
    assert [c.stdin for c in cmds[1:]] == [None] * 4
    assert [c.description for c in cmds] == [
        "point apt at the Kubernetes 1.29 package repository",
        "refresh the package list of the Kubernetes repository",
        "release the hold on kubeadm", "install kubeadm 1.29.15-1.1",
        "hold kubeadm at this version"]
    patch = apt_upgrade(V129, {"kubelet": "1.29.15-1.1", "kubectl": "1.29.15-1.1"},
                        switch_repository=False)
    assert patch[0].argv == ("apt-get", "update", *SCOPED)
    assert patch[1].argv == ("apt-mark", "unhold", "kubelet", "kubectl")
    assert patch[2].argv[-2:] == ("kubelet=1.29.15-1.1", "kubectl=1.29.15-1.1")


def test_apt_pieces():
    assert apt_unhold(["kubelet", "kubectl"]).argv == ("apt-mark", "unhold", "kubelet", "kubectl")
    assert apt_hold(("kubeadm",)).argv == ("apt-mark", "hold", "kubeadm")
    assert apt_install({"kubeadm": "1:1.29.15-1.1"}).argv == \
        ("apt-get", "install", "-y", *KEEP, "kubeadm=1:1.29.15-1.1")


def test_yum_repo_file_is_the_upstream_guides():
    assert yum_repo_file(V129) == (
        "[kubernetes]\nname=Kubernetes\n"
        "baseurl=https://pkgs.k8s.io/core:/stable:/v1.29/rpm/\nenabled=1\ngpgcheck=1\n"
        "gpgkey=https://pkgs.k8s.io/core:/stable:/v1.29/rpm/repodata/repomd.xml.key\n"
        "exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n")
    unsigned = yum_repo_file(V129, PackageSource(url="file:///srv/v{minor}", gpgcheck=False))
    assert "baseurl=file:///srv/v1.29\n" in unsigned
    assert "gpgcheck=0\n" in unsigned
    assert "gpgkey" not in unsigned


def test_yum_switch_and_install():
    switch = switch_yum_repository(V129, root="/r")
    assert switch.argv == ("tee", "/r/etc/yum.repos.d/kubernetes.repo")
    assert switch.stdin == yum_repo_file(V129)
    install = yum_install({"kubeadm": "1.29.15-150500.1.1"})
    assert install.line == \
        "yum install -y kubeadm-1.29.15-150500.1.1 --disableexcludes=kubernetes"
    assert yum_install({"kubelet": "1.29.15-150500.1.1"}, tool="dnf").argv[0] == "dnf"
    cmds = upgrade_packages("rhel", V129, {"kubeadm": "1.29.15-150500.1.1"})
    assert [c.argv[0] for c in cmds] == ["tee", "yum"]


@pytest.mark.parametrize(("family", "tool"), [
    ("debian", "apt-get"), ("Ubuntu", "apt-get"), ("rhel", "yum"), ("rocky", "yum")])
def test_upgrade_packages_picks_the_tool_by_os_family(family, tool):
    cmds = upgrade_packages(family, V129, {"kubeadm": package_version("v1.29.15", family)})
    assert tool in {c.argv[0] for c in cmds}


def test_package_versions_of_pkgs_k8s_io():
    assert package_version("v1.29.15", "debian") == "1.29.15-1.1"
    assert package_version("1.28.9", "rhel") == "1.28.9-150500.1.1"
    with pytest.raises(ValueError, match="not a Kubernetes release version"):
        package_version("v1.29", "debian")
    with pytest.raises(ValueError, match="unknown OS family"):
        package_version("v1.29.15", "windows")


@pytest.mark.parametrize(("call", "message"), [
    (lambda: apt_install({"kubeadm": "1.29.15-1.1; reboot"}), "not a package version"),
    (lambda: apt_install({"kube adm": "1.29.15-1.1"}), "not a package name"),
    (lambda: apt_hold([]), "no packages given"),
    (lambda: yum_install({"kubeadm": "1"}, tool="rpm"), "not a package tool"),
    (lambda: upgrade_packages("windows", V129, {"kubeadm": "1"}), "unknown OS family"),
])
def test_malformed_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_value_is_quoted_in_the_line():
    hostile = PackageSource(url="file:/tmp/my repo/v{minor}/", keyring=None)
    cmd = switch_apt_repository(V129, source=hostile, root="/tmp/a b")
    assert shlex.split(cmd.line) == list(cmd.argv)
    assert cmd.line == "tee '/tmp/a b/etc/apt/sources.list.d/kubernetes.list'"
    assert PKGS.url.format(minor="1.30", kind="deb") == \
        "https://pkgs.k8s.io/core:/stable:/v1.30/deb/"


# --- issue #14: scoped update, the node's own source file and keyring, build globs, dnf5 ---


def test_the_update_reads_only_the_kubernetes_source_and_fails_on_its_errors():
    # A bare `apt-get update` fails on any broken source and passes when pkgs.k8s.io is down.
    cmd = apt_update("/etc/apt/sources.list.d/pkgs_k8s_io.sources")
    assert cmd.argv == ("apt-get", "update", "-o",
                        "Dir::Etc::sourcelist=/etc/apt/sources.list.d/pkgs_k8s_io.sources",
                        *SCOPED[2:])
    assert apt_update(root="/tmp/r").argv[3] == \
        "Dir::Etc::sourcelist=/tmp/r/etc/apt/sources.list.d/kubernetes.list"


def test_the_switch_edits_the_nodes_own_file_in_its_format_keeping_its_keyring():
    deb822 = Packaging("debian", "/etc/apt/sources.list.d/k8s.sources", "/usr/share/keyrings/k.gpg")
    cmd = switch_repository(deb822, V129)
    assert cmd.argv == ("tee", "/etc/apt/sources.list.d/k8s.sources")
    assert cmd.stdin == ("Types: deb\nURIs: https://pkgs.k8s.io/core:/stable:/v1.29/deb/\n"
                         "Suites: /\nSigned-By: /usr/share/keyrings/k.gpg\n")
    one_line = Packaging("debian", "/etc/apt/sources.list.d/k8s-1.28.list", "/etc/apt/k.gpg")
    cmd = switch_repository(one_line, V129)
    assert cmd.argv == ("tee", "/etc/apt/sources.list.d/k8s-1.28.list")
    assert cmd.stdin == ("deb [signed-by=/etc/apt/k.gpg] "
                         "https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /\n")
    cmds = upgrade_packages(one_line, V129, {"kubeadm": "1.29.15-*"}, switch_repository=False)
    assert cmds[0].argv[3] == "Dir::Etc::sourcelist=/etc/apt/sources.list.d/k8s-1.28.list"
    rpm = switch_repository(Packaging("rocky", "/etc/yum.repos.d/k8s.repo"), V129)
    assert rpm.argv == ("tee", "/etc/yum.repos.d/k8s.repo")
    with pytest.raises(ValueError, match="not a file path"):
        switch_repository(Packaging("debian", "/etc/apt/x.list; reboot"), V129)


def test_plans_name_a_patch_with_any_build():
    assert package_glob("v1.29.15") == "1.29.15-*"
    assert glob_of("1.29.15-1.1") == glob_of("1:1.29.15-150500.1.1") == "1.29.15-*"
    assert glob_of(None) is None
    assert glob_of("1.29.15") == "1.29.15"  # another shape: unchanged
    apt = upgrade_packages("debian", V129, {"kubeadm": "1.29.15-*"}, switch_repository=False)
    assert apt[2].line == "apt-get install -y " + shlex.join(KEEP) + " 'kubeadm=1.29.15-*'"
    yum = upgrade_packages("rhel", V129, {"kubeadm": "1.29.15-*"}, switch_repository=False)
    assert yum[0].line == "yum install -y 'kubeadm-1.29.15-*' --disableexcludes=kubernetes"


def test_dnf5_spells_disable_excludes_as_a_setopt_and_versionlocks_are_lifted_and_restored():
    node = Packaging("rhel", dnf5=True, locked=("kubeadm", "kubelet"))
    cmds = upgrade_packages(node, V129, {"kubeadm": "1.29.15-*", "kubectl": "1.29.15-*"},
                            switch_repository=False)
    assert [c.line for c in cmds] == [
        "dnf versionlock delete kubeadm",
        "dnf install -y 'kubeadm-1.29.15-*' 'kubectl-1.29.15-*' "
        "--setopt=disable_excludes=kubernetes",
        "dnf versionlock add kubeadm"]



def test_a_held_or_versionlocked_dependency_is_released_around_the_install_and_kept_after():
    """pkgs.k8s.io's kubeadm 1.30 requires cri-tools >= 1.30.0: a node that holds cri-tools
    (apt) or versionlocks it (dnf) could not install it otherwise."""
    apt = Packaging("debian", held=("cri-tools",))
    lines = [c.line for c in upgrade_packages(apt, MinorVersion(1, 30),
                                              {"kubeadm": "1.30.14-*", "kubectl": "1.30.14-*"},
                                              switch_repository=False)]
    assert lines[1] == "apt-mark unhold kubeadm kubectl cri-tools"
    assert lines[-1] == "apt-mark hold kubeadm kubectl cri-tools"
    assert "cri-tools" not in lines[2]  # apt moves the dependency itself
    rpm = Packaging("rhel", locked=("kubeadm", "cri-tools"))
    lines = [c.line for c in upgrade_packages(rpm, MinorVersion(1, 30),
                                              {"kubeadm": "1.30.14-*"}, switch_repository=False)]
    assert (lines[0], lines[-1]) == ("dnf versionlock delete kubeadm cri-tools",
                                     "dnf versionlock add kubeadm cri-tools")

# --- the checks on what the nodes' package sources, keys and trial refreshes show -----------


def _state(**packages: object) -> ClusterState:
    src = RepoSource("/etc/apt/sources.list.d/kubernetes.list",
                     "https://pkgs.k8s.io/core:/stable:/v1.28/deb/", APT_KEYRING)
    fields = {"repo_minor": MinorVersion(1, 28), "repo_sources": (src,), **packages}
    return ClusterState(nodes=(NodeState("w1", packages=NodePackages(OsFamily.DEBIAN,
                                                                     **fields)),),
                        nodes_observed=True)


def test_keys_missing_expired_and_expiring_are_reported_with_their_date():
    today = date(2026, 9, 1)
    assert [f.id for f in key_findings(_state(key_found=False), today)] == \
        ["node.repo-key-missing"]
    (expired,) = key_findings(_state(key_found=True, key_expired=True,
                                     key_expires="2024-11-02"), today)
    assert expired.message == (f"the repository key in {APT_KEYRING} on node w1 expired on "
                               "2024-11-02: apt refuses the repository (EXPKEYSIG)")
    (soon,) = key_findings(_state(key_found=True, key_expires="2026-09-20"), today)
    assert (soon.id, soon.severity) == ("node.repo-key-expiring", Severity.WARNING)
    assert key_findings(_state(key_found=True, key_expires="2029-08-08"), today) == []
    assert key_findings(_state(), today) == []  # not read: nothing said


def test_the_plan_fetches_the_key_only_where_it_is_missing_or_expired():
    fresh = repository_commands(Packaging("debian", keyring="/k.gpg"), V129)
    assert [c.argv[0] for c in fresh] == ["tee"]
    stale = repository_commands(Packaging("debian", keyring="/etc/k/k.gpg", refresh_key=True),
                                V129)
    assert [c.line for c in stale[:3]] == [
        "mkdir -p -m 0755 /etc/k",
        "curl -fsSL -o /tmp/kubehop-Release.key "
        "https://pkgs.k8s.io/core:/stable:/v1.29/deb/Release.key",
        "gpg --batch --yes --dearmor -o /etc/k/k.gpg /tmp/kubehop-Release.key"]
    assert [c.sudo for c in stale] == [True, False, True, True]


def test_two_kubernetes_sources_and_conflicting_keyrings_block():
    copy = RepoSource("/etc/apt/sources.list.d/kubernetes-1.29.list",
                      "https://pkgs.k8s.io/core:/stable:/v1.29/deb/", APT_KEYRING)
    state = _state()
    p = state.nodes[0].packages
    two = replace(state, nodes=(replace(state.nodes[0], packages=replace(
        p, repo_sources=(*p.repo_sources, copy))),))
    (dup,) = source_findings(two)
    assert (dup.id, dup.severity) == ("node.repo-duplicate", Severity.BLOCKING)
    assert "kubernetes.list (v1.28); /etc/apt/sources.list.d/kubernetes-1.29.list (v1.29)" \
        in dup.message
    clash = RepoSource("/etc/apt/sources.list.d/k8s.list", p.repo_sources[0].uri, "/other.gpg")
    conflict = replace(state, nodes=(replace(state.nodes[0], packages=replace(
        p, repo_sources=(*p.repo_sources, clash))),))
    assert [f.id for f in source_findings(conflict)] == ["node.repo-signed-by-conflict",
                                                         "node.repo-duplicate"]


def test_a_trial_that_fails_or_lacks_the_patch_blocks_naming_what_is_offered():
    target = parse_kube_version("v1.29.15")
    ok = RepoTrial(V129, True, ("1.29.15-1.1", "1.29.14-1.1"))
    assert trial_findings(_state(trial=ok), target) == []
    behind = RepoTrial(V129, True, ("1.29.14-1.1", "1.29.13-1.1"))
    (missing,) = trial_findings(_state(trial=behind), target)
    assert missing.message == ("the Kubernetes 1.29 repository seen from node w1 does not "
                               "offer kubeadm 1.29.15; it offers 1.29.14-1.1, 1.29.13-1.1")
    down = RepoTrial(V129, False, (), "E: Failed to fetch https://pkgs.k8s.io/x")
    (failed,) = trial_findings(_state(trial=down), target)
    assert (failed.id, failed.severity) == ("node.repo-trial-failed", Severity.BLOCKING)
    # An expired key is the key step's to fix (a warning), not a blocker.
    keyed = RepoTrial(V129, False, (), "W: GPG error: … EXPKEYSIG 234654DA9A296436")
    assert trial_findings(_state(trial=keyed, key_found=True, key_expired=True), target) == []


def test_dnf5_and_versionlocked_nodes_are_said_once_with_what_kubehop_does():
    rpm = NodePackages(OsFamily.RHEL, dnf5=True, locked=("kubeadm", "kubelet"))
    state = ClusterState(nodes=(NodeState("r1", packages=rpm), NodeState("r2", packages=rpm)),
                         nodes_observed=True)
    found = {f.id: f for f in package_findings(state)}
    assert found["node.dnf5"].message == "nodes r1, r2 run dnf 5, which has no --disableexcludes"
    assert found["node.versionlock"].severity is Severity.INFO
    assert found["node.versionlock"].fix.startswith("nothing to do: kubehop deletes the "
                                                    "versionlock")
