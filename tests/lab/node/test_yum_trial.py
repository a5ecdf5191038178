"""`check --to`'s trial of the target minor's repository on dnf nodes: the command kubehop
sends, dnf 4 and dnf 5 listings parsed, and the lab's dnf answering it as a login user, with
the node's own repositories, cache and versionlocks left alone."""

import shlex

from kubehop.lab.node import package_faults
from kubehop.model.cluster import NodePackages, OsFamily
from kubehop.model.versions import MinorVersion
from kubehop.shell.observe.nodes import facts_command, parse_facts, parse_trial, trial_command

N = "cp1"
REPO = "/etc/yum.repos.d/kubernetes.repo"
V130 = MinorVersion(1, 30)
URL = "https://pkgs.k8s.io/core:/stable:/v1.30/rpm/"

# dnf 4.14 (Rocky 9), a login user, `dnf list --showduplicates kubeadm 2>&1` with the trial
# repository beside an installed kubeadm.
DNF4_OK = """\
Added kubehop-trial repo from https://pkgs.k8s.io/core:/stable:/v1.30/rpm/
kubehop-trial                                    41 kB/s |  17 kB     00:00
Last metadata expiration check: 0:00:01 ago on Mon 01 Jan 2024 12:00:00 PM UTC.
Installed Packages
kubeadm.x86_64                   1.29.4-150500.1.1                  @kubernetes
Available Packages
kubeadm.x86_64                   1.30.0-150500.1.1                  kubehop-trial
kubeadm.x86_64                   1.30.1-150500.1.1                  kubehop-trial
kubeadm.x86_64                   1.30.2-150500.1.1                  kubehop-trial
@@kubehop:ok
"""
# dnf 5.2: lowercase headings, the epoch-less EVR, the repository loading on stderr.
DNF5_OK = """\
Updating and loading repositories:
 kubehop-trial                          100% |  35.0 KiB/s |  17.4 KiB |  00m00s
Repositories loaded.
Installed packages
kubeadm.x86_64 1.30.2-150500.1.1 kubernetes
Available packages
kubeadm.x86_64 1.30.0-150500.1.1 kubehop-trial
kubeadm.x86_64 1.30.1-150500.1.1 kubehop-trial
@@kubehop:ok
"""
DNF4_TIMEOUT = """\
kubehop-trial                                    0.0  B/s |   0  B     00:30
Errors during downloading metadata for repository 'kubehop-trial':
  - Curl error (28): Timeout was reached for https://pkgs.k8s.io/core:/stable:/v1.30/rpm/repodata/repomd.xml [Connection timed out after 30000 milliseconds]
Error: Failed to download metadata for repo 'kubehop-trial': Cannot download repomd.xml: Cannot download repodata/repomd.xml: All mirrors were tried
@@kubehop:failed
"""  # noqa: E501


def rpm_packages() -> NodePackages:
    return NodePackages(os_family=OsFamily.RHEL, kubeadm="1.29.4-150500.1.1")


def test_the_rpm_trial_adds_the_minors_repository_for_one_run_in_a_throwaway_cache():
    line = trial_command(rpm_packages(), V130)
    steps = line.split("; ")
    assert steps[0] == steps[-1] == "rm -rf /tmp/kubehop-trial"
    argv = shlex.split(steps[2].split(" 2>&1")[0])
    assert argv[0] == "dnf"
    assert argv[-3:] == ["list", "--showduplicates", "kubeadm"]
    assert f"--repofrompath=kubehop-trial,{URL}" in argv
    assert "--repo=kubehop-trial" in argv  # only that repository: the node's own stay off
    assert "--setopt=cachedir=/tmp/kubehop-trial/dnf" in argv  # not /var/cache/dnf
    assert "--setopt=kubehop-trial.gpgkey=https://pkgs.k8s.io/core:/stable:/v1.30/rpm/" \
           "repodata/repomd.xml.key" in argv
    assert "--setopt=kubehop-trial.skip_if_unavailable=0" in argv
    assert "--disableplugin=versionlock" in argv
    assert not any(a.startswith("--disableexcludes") for a in argv)  # dnf 5 has no such flag


def test_dnf4_and_dnf5_listings_give_the_trial_repositorys_versions_newest_first():
    four = parse_trial(V130, DNF4_OK)
    assert four.ok
    assert four.offered == ("1.30.2-150500.1.1", "1.30.1-150500.1.1", "1.30.0-150500.1.1")
    five = parse_trial(V130, DNF5_OK)
    assert five.ok
    # the installed 1.30.2 counts: this node needs nothing more of that kubeadm
    assert five.offered == ("1.30.2-150500.1.1", "1.30.1-150500.1.1", "1.30.0-150500.1.1")


def test_a_dnf_trial_that_times_out_says_why():
    trial = parse_trial(V130, DNF4_TIMEOUT)
    assert not trial.ok
    assert trial.offered == ()
    assert trial.error.startswith("Curl error (28): Timeout was reached for https://pkgs.k8s.io/")
    assert "Error: Failed to download metadata for repo 'kubehop-trial'" in trial.error


def inject(lab, kind: str, node: str = N, **options: str) -> None:
    lab.agents.cluster.inject(kind, node, options)
    package_faults.seed(lab.agents.host(node), kind, options)


async def trial_on(lab, minor: MinorVersion):
    facts = parse_facts(OsFamily.RHEL, await lab.ok(N, facts_command(OsFamily.RHEL)))
    return parse_trial(minor, await lab.ok(N, trial_command(facts, minor)))


async def test_the_lab_answers_the_trial_as_a_login_user_and_leaves_the_node_alone(rpm_lab):
    repo_before = await rpm_lab.ok(N, f"cat {REPO}")
    trial = await trial_on(rpm_lab, V130)
    assert trial.ok, trial
    assert trial.offered[:2] == ("1.30.14-150500.1.1", "1.30.13-150500.1.1")
    assert all(v.startswith("1.30.") for v in trial.offered)
    assert await rpm_lab.ok(N, f"cat {REPO}") == repo_before
    assert (await rpm_lab.sh(N, "ls /tmp/kubehop-trial")).exit_code == 2  # cleaned up
    assert (await rpm_lab.sh(N, "ls /var/cache/dnf")).exit_code == 2  # never touched


async def test_an_unreachable_repository_fails_the_trial_with_dnfs_timeout(rpm_lab):
    inject(rpm_lab, "package-repo-unreachable")
    trial = await trial_on(rpm_lab, V130)
    assert not trial.ok
    assert "Curl error (28): Timeout was reached for https://pkgs.k8s.io/core:/stable:/v1.30/" \
           "rpm/repodata/repomd.xml" in trial.error
    install = await rpm_lab.sh(N, "sudo dnf install -y kubeadm --disableexcludes=kubernetes")
    assert install.exit_code == 1  # the node's own repository does not answer either
    assert "Error: Failed to download metadata for repo 'kubernetes'" in install.stderr


async def test_the_trial_sees_past_versionlocks_and_works_with_dnf5(rpm_lab):
    inject(rpm_lab, "versionlock")
    inject(rpm_lab, "dnf5")
    trial = await trial_on(rpm_lab, MinorVersion(1, 28))
    assert trial.ok, trial
    assert "1.28.15-150500.1.1" in trial.offered  # the lock pins 1.28.9, the trial still sees
    assert "1.28.9-150500.1.1" in trial.offered  # installed, from the 1.28 repository
