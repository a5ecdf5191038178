"""The package-manager hazards of issue #14 on lab nodes, answered as apt 2.6 and dnf answer:
a broken vendor source, pkgs.k8s.io unreachable, the dpkg lock held, conflicting Signed-By,
dnf 5 and versionlocks; and what kubehop's scoped update does about them."""

from kubehop.core.node_commands import apt_update, fetch_apt_key
from kubehop.lab.node import package_faults
from kubehop.model.cluster import OsFamily
from kubehop.model.versions import MinorVersion
from kubehop.shell.observe.nodes import facts_command, parse_facts, parse_trial, trial_command

N = "oldversion1"
LIST = "/etc/apt/sources.list.d/kubernetes.list"
SCOPED = apt_update().line


def inject(lab, kind: str, node: str = N, **options: str) -> None:
    lab.agents.cluster.inject(kind, node, options)
    package_faults.seed(lab.agents.host(node), kind, options)


async def test_a_broken_vendor_source_fails_a_bare_update_but_not_the_scoped_one(lab):
    inject(lab, "apt-source-broken")
    await lab.ok(N, f"sudo sed -i 's/v1.28/v1.29/' {LIST}")
    bare = await lab.sh(N, "sudo apt-get update")
    assert bare.exit_code == 100
    assert "EXPKEYSIG 8B48AD6246925553" in bare.stderr
    assert "E: The repository 'https://download.vendor.example/apt stable InRelease' is not " \
           "signed." in bare.stderr
    scoped = await lab.sh(N, f"sudo {SCOPED}")
    assert (scoped.exit_code, scoped.stderr) == (0, "")
    assert "vendor" not in scoped.stdout
    assert "1.29.15-1.1" in await lab.ok(N, "apt-cache madison kubeadm")


async def test_an_unreachable_repository_is_a_warning_for_apt_and_an_error_for_kubehop(lab):
    inject(lab, "package-repo-unreachable")
    await lab.ok(N, f"sudo sed -i 's/v1.28/v1.29/' {LIST}")
    bare = await lab.sh(N, "sudo apt-get update")
    assert bare.exit_code == 0  # apt's default: warnings only
    assert bare.stderr.startswith("W: Failed to fetch https://prod-cdn.packages.k8s.io/")
    assert "W: Some index files failed to download." in bare.stderr
    install = await lab.sh(N, "sudo apt-get install -y kubeadm='1.29.15-*'")
    assert install.stderr == "E: Version '1.29.15-*' for 'kubeadm' was not found\n"
    strict = await lab.sh(N, f"sudo {SCOPED}")
    assert strict.exit_code == 100
    assert strict.stderr.startswith("E: Failed to fetch https://prod-cdn.packages.k8s.io/")
    assert (await lab.sh(N, "sudo apt-get update --error-on=any")).exit_code == 100


async def test_the_held_dpkg_lock_fails_apt_mark_and_apt_get_waits_when_asked(lab):
    inject(lab, "package-lock-held", seconds="30")
    mark = await lab.sh(N, "sudo apt-mark unhold kubeadm")
    assert mark.exit_code == 100
    assert mark.stderr.startswith(
        "dpkg: error: dpkg frontend lock was locked by another process with pid 2718\n")
    assert mark.stderr.endswith("E: Executing dpkg failed. Are you root?\n")
    assert await lab.ok(N, "ps -o comm= -p 2718") == "unattended-upgr\n"
    await lab.ok(N, "sudo apt-mark unhold kubeadm || true")
    now = await lab.sh(N, "sudo apt-get install -y --allow-downgrades "
                          "--allow-change-held-packages kubeadm='1.28.8-*'")
    assert now.exit_code == 100
    assert "It is held by process 2718 (unattended-upgr)" in now.stderr
    waited = await lab.sh(N, "sudo apt-get -o DPkg::Lock::Timeout=60 install -y "
                             "--allow-downgrades --allow-change-held-packages kubeadm='1.28.8-*'")
    assert waited.exit_code == 0, waited.stderr
    assert waited.stderr.startswith("Waiting for cache lock: Could not get lock")
    assert (await lab.sh(N, "ps -o comm= -p 2718")).exit_code == 1  # let go
    assert (await lab.sh(N, "sudo apt-mark hold kubeadm")).exit_code == 0


async def test_one_repository_with_two_signed_by_values_breaks_every_apt_command(lab):
    line = await lab.ok(N, f"cat {LIST}")
    await lab.ok(N, "echo '" + line.strip().replace("kubernetes-apt-keyring", "other") +
                 "' | sudo tee /etc/apt/sources.list.d/copy.list")
    r = await lab.sh(N, "sudo apt-get update")
    assert r.exit_code == 100
    assert r.stderr.startswith("E: Conflicting values set for option Signed-By regarding "
                               "source https://pkgs.k8s.io/core:/stable:/v1.28/deb/ /: ")
    assert r.stderr.endswith("E: The list of sources could not be read.\n")
    assert (await lab.sh(N, "sudo apt-get install -y kubeadm")).exit_code == 100


async def test_dnf5_refuses_disableexcludes_and_takes_the_setopt(rpm_lab):
    inject(rpm_lab, "dnf5", "cp1")
    assert (await rpm_lab.ok("cp1", "dnf --version")).startswith("dnf5 version 5.")
    await rpm_lab.ok("cp1", "sudo sed -i 's/v1.28/v1.29/g' /etc/yum.repos.d/kubernetes.repo")
    old = await rpm_lab.sh("cp1", "sudo dnf install -y kubeadm-'1.29.15-*' "
                                  "--disableexcludes=kubernetes")
    assert old.exit_code == 2
    assert old.stderr.startswith('Unknown argument "--disableexcludes=kubernetes" for command '
                                 '"install".')
    new = await rpm_lab.sh("cp1", "sudo dnf install -y kubeadm-'1.29.15-*' "
                                  "--setopt=disable_excludes=kubernetes")
    assert new.exit_code == 0, new.stderr


async def test_versionlocks_hide_other_versions_until_deleted(rpm_lab):
    inject(rpm_lab, "versionlock", "cp1")
    inject(rpm_lab, "dnf5", "cp1")
    listing = await rpm_lab.ok("cp1", "dnf versionlock list")
    assert "Package name: kubeadm\nevr = 1.28.9-150500.1.1\n" in listing
    locked = await rpm_lab.sh("cp1", "sudo dnf install -y kubeadm-'1.28.15-*' "
                                     "--setopt=disable_excludes=kubernetes")
    assert locked.exit_code == 1
    await rpm_lab.ok("cp1", "sudo dnf versionlock delete kubeadm")
    await rpm_lab.ok("cp1", "sudo dnf install -y kubeadm-'1.28.15-*' "
                            "--setopt=disable_excludes=kubernetes")
    assert await rpm_lab.ok("cp1", "rpm -q kubeadm") == "kubeadm-1.28.15-150500.1.1.x86_64\n"


async def test_an_expired_repository_key_fails_the_update_until_kubehop_fetches_the_new_one(lab):
    package_faults.provision_keyring(lab.agents.host(N))
    inject(lab, "repo-key", state="expired")
    listing = await lab.ok(N, facts_command(OsFamily.DEBIAN))
    facts = parse_facts(OsFamily.DEBIAN, listing)
    assert (facts.key_found, facts.key_expired) == (True, True)
    r = await lab.sh(N, f"sudo {SCOPED}")
    assert r.exit_code == 100
    assert "EXPKEYSIG 234654DA9A296436" in r.stderr
    for cmd in fetch_apt_key(MinorVersion(1, 28), "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"):
        await lab.ok(N, ("sudo " if cmd.sudo else "") + cmd.line)
    assert (await lab.sh(N, f"sudo {SCOPED}")).exit_code == 0
    facts = parse_facts(OsFamily.DEBIAN, await lab.ok(N, facts_command(OsFamily.DEBIAN)))
    assert (facts.key_found, facts.key_expired, facts.key_expires) == (True, False, "2029-08-08")


async def test_a_missing_repository_key_is_no_pubkey(lab):
    inject(lab, "repo-key", state="missing")
    facts = parse_facts(OsFamily.DEBIAN, await lab.ok(N, facts_command(OsFamily.DEBIAN)))
    assert facts.key_found is False
    r = await lab.sh(N, f"sudo {SCOPED}")
    assert r.exit_code == 100
    assert "NO_PUBKEY 234654DA9A296436" in r.stderr


async def test_the_trial_refresh_of_the_next_minor_leaves_the_nodes_lists_alone(lab):
    facts = parse_facts(OsFamily.DEBIAN, await lab.ok(N, facts_command(OsFamily.DEBIAN)))
    before = await lab.ok(N, "apt-cache madison kubeadm")
    out = await lab.ok(N, trial_command(facts, MinorVersion(1, 29)))  # as the login user
    trial = parse_trial(MinorVersion(1, 29), out)
    assert trial.ok
    assert trial.offered[:2] == ("1.29.15-1.1", "1.29.14-1.1")
    assert await lab.ok(N, "apt-cache madison kubeadm") == before  # still 1.28's lists
    assert (await lab.sh(N, "ls /tmp/kubehop-trial")).exit_code == 2  # cleaned up


async def test_a_trial_refresh_that_fails_says_why(lab):
    inject(lab, "package-repo-unreachable")
    facts = parse_facts(OsFamily.DEBIAN, await lab.ok(N, facts_command(OsFamily.DEBIAN)))
    trial = parse_trial(MinorVersion(1, 29), await lab.ok(N, trial_command(
        facts, MinorVersion(1, 29))))
    assert not trial.ok
    assert trial.error.startswith("E: Failed to fetch https://prod-cdn.packages.k8s.io/")
