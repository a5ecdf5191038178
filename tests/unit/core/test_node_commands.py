"""Node package commands as data: exact argv, stdin and file contents for apt and yum."""

import shlex

import pytest

from kubehop.core.node_commands import (
    PKGS,
    NodeCommand,
    PackageSource,
    apt_hold,
    apt_install,
    apt_source_line,
    apt_unhold,
    apt_upgrade,
    package_version,
    switch_apt_repository,
    switch_yum_repository,
    upgrade_packages,
    yum_install,
    yum_repo_file,
)
from kubehop.model.versions import MinorVersion

V129 = MinorVersion(1, 29)
KEEP = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")


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
        "apt-get update",
        "apt-mark unhold kubeadm",
        "apt-get install -y " + shlex.join(KEEP) + " kubeadm=1.29.15-1.1",
        "apt-mark hold kubeadm",
    ]
    assert all(c.sudo for c in cmds)
    assert [c.stdin for c in cmds[1:]] == [None] * 4
    assert [c.description for c in cmds] == [
        "point apt at the Kubernetes 1.29 package repository", "refresh the apt package lists",
        "release the hold on kubeadm", "install kubeadm 1.29.15-1.1",
        "hold kubeadm at this version"]
    patch = apt_upgrade(V129, {"kubelet": "1.29.15-1.1", "kubectl": "1.29.15-1.1"},
                        switch_repository=False)
    assert patch[0].argv == ("apt-get", "update")
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
