"""rpm's imported repository keys on a lab RHEL node (issue #14 item 1, the rpm half): what
kubehop reads of them, how dnf fails an expired one, and the remedy kubehop sends
(kubernetes/release#3840: erase the old gpg-pubkey, import the minor's repomd.xml.key)."""

from kubehop.core.node_commands import Packaging, repository_commands
from kubehop.lab.node import package_faults
from kubehop.model.cluster import OsFamily
from kubehop.model.plan import Command
from kubehop.model.versions import MinorVersion
from kubehop.shell.observe.nodes import facts_command, parse_facts

N = "cp1"
INSTALL = "sudo dnf install -y kubeadm-'1.28.15-*' --disableexcludes=kubernetes"
KEY_URL = "https://pkgs.k8s.io/core:/stable:/v1.28/rpm/repodata/repomd.xml.key"


def inject(lab, state: str) -> None:
    package_faults.provision_keyring(lab.agents.host(N))
    lab.agents.cluster.inject("repo-key", N, {"state": state})
    package_faults.seed(lab.agents.host(N), "repo-key", {"state": state})


async def facts(lab):
    return parse_facts(OsFamily.RHEL, await lab.ok(N, facts_command(OsFamily.RHEL)))


async def run(lab, commands) -> None:
    for cmd in commands:  # as the plan writes them (stdin as a printf pipe)
        await lab.ok(N, Command(cmd.argv, cmd.stdin, cmd.sudo).line)


async def test_the_provisioned_key_is_read_from_rpm_with_its_expiry(rpm_lab):
    package_faults.provision_keyring(rpm_lab.agents.host(N))
    listing = await rpm_lab.ok(N, "rpm -q gpg-pubkey --qf "
                                  "'%{NAME}-%{VERSION}-%{RELEASE}\\t%{PACKAGER}\\n'")
    assert listing == ("gpg-pubkey-9a296436-64d18580\tisv:kubernetes OBS Project "
                       "<isv:kubernetes@build.opensuse.org>\n")
    got = await facts(rpm_lab)
    assert (got.key_found, got.key_expired, got.key_expires) == (True, False, "2029-08-08")
    assert got.rpm_keys == ("gpg-pubkey-9a296436-64d18580",)
    assert got.key_url == KEY_URL


async def test_an_expired_key_fails_dnf_and_a_plain_import_does_not_replace_it(rpm_lab):
    inject(rpm_lab, "expired")
    got = await facts(rpm_lab)
    assert (got.key_found, got.key_expired) == (True, True)
    r = await rpm_lab.sh(N, INSTALL)
    assert r.exit_code == 1
    assert r.stderr.endswith("Error: GPG check FAILED\n")
    assert ('The GPG keys listed for the "Kubernetes" repository are already installed but '
            'they are not correct for this package.') in r.stderr
    assert f"GPG key at {KEY_URL} (0x9A296436) is already installed" in r.stdout
    assert await rpm_lab.ok(N, "rpm -q kubeadm") == "kubeadm-1.28.9-150500.1.1.x86_64\n"
    # rpm keeps the key whose id it has: importing the re-issued key changes nothing.
    await rpm_lab.ok(N, f"sudo rpm --import {KEY_URL}")
    assert (await rpm_lab.sh(N, INSTALL)).exit_code == 1


async def test_kubehops_key_step_replaces_the_expired_key_and_dnf_installs_again(rpm_lab):
    inject(rpm_lab, "expired")
    old = (await facts(rpm_lab)).rpm_keys
    packaging = Packaging("rhel", refresh_key=True, rpm_keys=old)
    commands = repository_commands(packaging, MinorVersion(1, 28))
    await run(rpm_lab, commands)
    await run(rpm_lab, commands)  # a re-run (resume after a halt) finds the old key gone
    got = await facts(rpm_lab)
    assert (got.key_found, got.key_expired, got.key_expires) == (True, False, "2029-08-08")
    out = await rpm_lab.ok(N, INSTALL)
    assert out.endswith("Complete!\n")
    assert await rpm_lab.ok(N, "rpm -q kubeadm") == "kubeadm-1.28.15-150500.1.1.x86_64\n"


async def test_a_missing_key_is_reported_and_dnf_imports_it_from_gpgkey(rpm_lab):
    inject(rpm_lab, "missing")
    got = await facts(rpm_lab)
    assert (got.key_found, got.rpm_keys) == (False, ())
    out = await rpm_lab.ok(N, INSTALL)
    assert "Importing GPG key 0x9A296436:\n" in out
    assert f" From       : {KEY_URL}\nKey imported successfully\n" in out
    assert (await facts(rpm_lab)).key_found is True


async def test_rpm_refuses_key_changes_without_root_and_names_a_missing_key(rpm_lab):
    package_faults.provision_keyring(rpm_lab.agents.host(N))
    r = await rpm_lab.sh(N, "rpm -e gpg-pubkey-9a296436-64d18580")
    assert (r.exit_code, r.stderr) == (1, "error: can't create transaction lock on "
                                          "/var/lib/rpm/.rpm.lock (Permission denied)\n")
    r = await rpm_lab.sh(N, "sudo rpm -e gpg-pubkey-00000000-1")
    assert (r.exit_code, r.stderr) == (1, "error: package gpg-pubkey-00000000-1 is not "
                                          "installed\n")
    r = await rpm_lab.sh(N, "sudo rpm --import https://pkgs.k8s.io/core:/stable:/v1.99/rpm/"
                            "repodata/repomd.xml.key")
    assert r.exit_code == 1
    assert "import read failed" in r.stderr
