"""The rpm half of issue #14 item 1: the Kubernetes key imported into rpm, as read from a node
(`rpm -q gpg-pubkey`, `gpg --show-keys`), reported (`node.repo-key-*`) and replaced by the
repository switch (erase the old gpg-pubkey, import the minor's key: kubernetes/release#3840)."""

from datetime import UTC, date, datetime

import pytest

from kubehop.core.checks.nodes import key_findings
from kubehop.core.node_commands import Packaging, import_rpm_key, repository_commands
from kubehop.core.planner.nodes import packaging
from kubehop.model.cluster import ClusterState, NodePackages, NodeState, OsFamily, RepoSource
from kubehop.model.versions import MinorVersion
from kubehop.shell.observe.nodes import facts_command, parse_facts, parse_rpm_keys

V130 = MinorVersion(1, 30)
OLD = "gpg-pubkey-9a296436-6307a177"  # the key that expired on 2024-11-02 (release#3840)
OWNER = "isv:kubernetes OBS Project <isv:kubernetes@build.opensuse.org>"
KEY_URL = "https://pkgs.k8s.io/core:/stable:/v1.28/rpm/repodata/repomd.xml.key"
REPO = f"""/etc/yum.repos.d/kubernetes.repo:[kubernetes]
/etc/yum.repos.d/kubernetes.repo:name=Kubernetes
/etc/yum.repos.d/kubernetes.repo:baseurl=https://pkgs.k8s.io/core:/stable:/v1.28/rpm/
/etc/yum.repos.d/kubernetes.repo:enabled=1
/etc/yum.repos.d/kubernetes.repo:gpgcheck=1
/etc/yum.repos.d/kubernetes.repo:gpgkey={KEY_URL}
"""


def _epoch(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def _colons(validity: str, key_id: str, created: int, expires: int) -> list[str]:
    """`gpg --show-keys --with-colons` records of one key (gnupg doc/DETAILS)."""
    return [f"pub:{validity}:2048:1:{key_id}:{created}:{expires}::-:::scESC::::::23::0:",
            f"fpr:::::::::DE15B14486CD377B9E876E1A{key_id}:",
            f"uid:{validity}::::{created}::::{OWNER}::::::::::0:"]


def _listing(keys: str, info: list[str], repo: str = REPO) -> str:
    return (f"kubeadm 1.28.9-150500.1.1\n@@kubehop:repo\n{repo}@@kubehop:holds\n"
            f"@@kubehop:dnf\n4.14.0\n@@kubehop:rpmkeys\n{keys}@@kubehop:rpmkeyinfo\n"
            + "".join(line + "\n" for line in info) + "@@kubehop:kubeadm\nv1.28.9\n")


def test_the_facts_command_reads_rpms_keys_and_their_expiry_with_gpg():
    line = facts_command(OsFamily.RHEL)
    assert ("rpm -q gpg-pubkey --qf '%{NAME}-%{VERSION}-%{RELEASE}\\t%{PACKAGER}\\n'"
            in line)
    assert ("rpm -q gpg-pubkey --qf '%{DESCRIPTION}\\n' | gpg --show-keys --with-colons"
            in line)
    assert "gpg-pubkey" not in facts_command(OsFamily.DEBIAN)


def test_an_expired_imported_key_is_found_by_its_id_and_creation_time():
    created = 0x6307a177
    info = [  # another vendor's valid key first: it must not count
        *_colons("-", "0123456789ABCDEF", 1600000000, 0)[:1],
        *_colons("e", "234654DA9A296436", created, _epoch("2024-11-02"))]
    keys = (f"gpg-pubkey-89abcdef-5f5e1000\tVendor <v@example.com>\n{OLD}\t{OWNER}\n")
    facts = parse_facts(OsFamily.RHEL, _listing(keys, info))
    assert (facts.rpm_keys, facts.key_found, facts.key_expired, facts.key_expires) == \
        ((OLD,), True, True, "2024-11-02")
    assert facts.key_url == KEY_URL


def test_no_imported_key_is_missing_and_gpgcheck_off_reads_nothing():
    facts = parse_facts(OsFamily.RHEL, _listing("package gpg-pubkey is not installed\n", []))
    assert (facts.key_found, facts.rpm_keys) == (False, ())
    off = REPO.replace("gpgcheck=1", "gpgcheck=0")
    facts = parse_facts(OsFamily.RHEL, _listing(f"{OLD}\t{OWNER}\n", [], repo=off))
    assert (facts.key_found, facts.key_url) == (None, None)


def test_a_key_without_gpg_output_is_found_with_its_expiry_unknown():
    assert parse_rpm_keys([f"{OLD}\t{OWNER}"], []) == ((OLD,), True, False, None)


def _state(**packages: object) -> ClusterState:
    pk = NodePackages(os_family=OsFamily.RHEL, repo_minor=MinorVersion(1, 28),
                      repo_sources=(RepoSource("/etc/yum.repos.d/kubernetes.repo",
                                               "https://pkgs.k8s.io/core:/stable:/v1.28/rpm/",
                                               None, "kubernetes"),),
                      key_url=KEY_URL, **packages)  # type: ignore[arg-type]
    return ClusterState(nodes=(NodeState("rocky2", packages=pk),), nodes_observed=True)


def test_rpm_keys_are_reported_with_dnfs_refusal_and_the_upstream_remedy():
    today = date(2026, 9, 1)
    (expired,) = key_findings(_state(key_found=True, key_expired=True, key_expires="2024-11-02",
                                     rpm_keys=(OLD,)), today)
    assert expired.id == "node.repo-key-expired"
    assert expired.message == (f"the repository key imported into rpm ({OLD}) on node rocky2 "
                               "expired on 2024-11-02: dnf refuses the repository's packages "
                               "(GPG check FAILED)")
    assert expired.fix.endswith(f"by hand: sudo rpm -e {OLD}; sudo rpm --import https://"
                                "pkgs.k8s.io/core:/stable:/v1.NN/rpm/repodata/repomd.xml.key")
    (missing,) = key_findings(_state(key_found=False), today)
    assert (missing.id, missing.subject) == ("node.repo-key-missing", "node/rocky2")
    assert "rpm has no Kubernetes repository key imported" in missing.message
    (soon,) = key_findings(_state(key_found=True, key_expires="2026-09-11", rpm_keys=(OLD,)),
                           today)
    assert soon.id == "node.repo-key-expiring"
    assert "dnf refuses" in soon.message
    assert key_findings(_state(key_found=True, key_expires="2029-08-08", rpm_keys=(OLD,)),
                        today) == []


def test_the_switch_erases_the_expired_key_then_imports_the_minors():
    stale = repository_commands(Packaging("rhel", refresh_key=True, rpm_keys=(OLD,)), V130)
    assert [c.line for c in stale[:2]] == [
        f"sh -c 'rpm -q --quiet {OLD} || exit 0; rpm -e {OLD}'",
        "rpm --import https://pkgs.k8s.io/core:/stable:/v1.30/rpm/repodata/repomd.xml.key"]
    assert all(c.sudo for c in stale)
    assert stale[2].argv == ("tee", "/etc/yum.repos.d/kubernetes.repo")
    assert ("gpgkey=https://pkgs.k8s.io/core:/stable:/v1.30/rpm/repodata/repomd.xml.key\n"
            in (stale[2].stdin or ""))
    fresh = repository_commands(Packaging("rhel", rpm_keys=(OLD,)), V130)
    assert [c.argv[0] for c in fresh] == ["tee"]


def test_the_planner_asks_for_the_key_step_on_rpm_nodes_too():
    pk = _state(key_found=True, key_expired=True, rpm_keys=(OLD,)).nodes[0].packages
    assert pk is not None
    found = packaging(pk)
    assert (found.refresh_key, found.rpm_keys) == (True, (OLD,))
    ok = packaging(_state(key_found=True, rpm_keys=(OLD,)).nodes[0].packages)
    assert (ok.refresh_key, ok.rpm_keys) == (False, ())


def test_a_key_name_that_is_not_a_gpg_pubkey_is_refused():
    with pytest.raises(ValueError, match="not an rpm public key package"):
        import_rpm_key(V130, ["gpg-pubkey-x; rm -rf /"])
