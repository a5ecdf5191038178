"""The node shell behaves as the node's OS does for what kubehop's checks read: which commands
exist, special parameters, the kubelet's environment file, the cgroup file system, and the
install guide's `curl | gpg --dearmor` — plus the host facts kubehop parses from all that."""

from datetime import date

from kubehop.lab.node.gpg_curl import DEFAULT_KEY, LabKey, armor, downloads, release_key_url
from kubehop.model.cluster import NodeState, OsFamily
from kubehop.shell.observe.nodes import facts_command, node_facts

N = "oldversion1"
KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"


# --- which commands exist --------------------------------------------------------------------


async def test_which_and_command_v_find_only_the_package_tools_of_the_nodes_os(lab, rpm_lab):
    r = await lab.sh(N, "which dnf yum")
    assert (r.exit_code, r.stdout) == (1, "")
    assert await lab.ok(N, "which apt-get dpkg") == "/usr/bin/apt-get\n/usr/bin/dpkg\n"
    assert await lab.ok(N, "command -v dnf || echo no-dnf") == "no-dnf\n"
    assert await rpm_lab.ok("cp1", "which dnf rpm") == "/usr/bin/dnf\n/usr/bin/rpm\n"
    r = await rpm_lab.sh("cp1", "command -v apt-get")
    assert (r.exit_code, r.stdout) == (1, "")


async def test_a_command_the_os_does_not_ship_is_not_found(lab):
    r = await lab.sh(N, "dnf --version")
    assert (r.exit_code, r.stderr) == (127, "bash: line 1: dnf: command not found\n")
    r = await lab.sh(N, "sudo yum install -y kubeadm")
    assert (r.exit_code, r.stderr) == (1, "sudo: yum: command not found\n")


async def test_command_v_names_builtins_and_files_and_command_runs_one(lab):
    assert await lab.ok(N, "command -v cd echo sudo curl gpg stat") == (
        "cd\necho\n/usr/bin/sudo\n/usr/bin/curl\n/usr/bin/gpg\n/usr/bin/stat\n")
    assert await lab.ok(N, "command echo hi") == "hi\n"


# --- special parameters ----------------------------------------------------------------------


async def test_special_parameters_expand_outside_single_quotes(lab):
    assert await lab.ok(N, 'false; echo "status=$?"') == "status=1\n"
    assert await lab.ok(N, "true && echo $? ${?}") == "0 0\n"
    assert await lab.ok(N, "echo '$?' \\$?") == "$? $?\n"
    assert await lab.ok(N, 'echo "$0 $#"') == "bash 0\n"
    assert await lab.ok(N, "false; sh -c 'echo inner=$?'; echo outer=$?") == (
        "inner=0\nouter=0\n")
    assert await lab.ok(N, "dpkg-query -W -f '${Package}\\n' kubeadm") == "kubeadm\n"


# --- the kubelet's environment file and cgroups ----------------------------------------------


async def test_the_kubelet_package_environment_file_exists_per_package_format(lab, rpm_lab):
    assert await lab.ok(N, "cat /etc/default/kubelet") == "KUBELET_EXTRA_ARGS=\n"
    assert "EnvironmentFile=-/etc/default/kubelet" in await lab.ok(
        N, "cat /etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
    assert await rpm_lab.ok("cp1", "cat /etc/sysconfig/kubelet") == "KUBELET_EXTRA_ARGS=\n"
    assert (await rpm_lab.sh("cp1", "test -f /etc/default/kubelet")).exit_code == 1


async def test_stat_reports_cgroup_v2_unless_the_node_boots_cgroup_v1(lab):
    assert await lab.ok(N, "stat -fc %T /sys/fs/cgroup") == "cgroup2fs\n"
    lab.agents.cluster.inject("cgroup-v1", N)
    assert await lab.ok(N, "stat -fc %T /sys/fs/cgroup") == "tmpfs\n"
    assert await lab.ok("oldversion2", "stat -f -c %T /sys/fs/cgroup") == "cgroup2fs\n"
    assert await lab.ok(N, "stat -c '%n %a %F' /etc/default/kubelet") == (
        "/etc/default/kubelet 644 regular file\n")
    r = await lab.sh(N, "stat -fc %T /nonexistent")
    assert (r.exit_code, r.stderr) == (
        1, "stat: cannot read file system information for '/nonexistent': No such file or "
           "directory\n")


async def test_a_kubelet_extra_args_fault_writes_the_environment_file_once(lab):
    lab.agents.cluster.inject("kubelet-extra-args", N,
                              {"args": "--pod-infra-container-image=registry.k8s.io/pause:3.9"})
    assert await lab.ok(N, "cat /etc/default/kubelet") == (
        "KUBELET_EXTRA_ARGS=--pod-infra-container-image=registry.k8s.io/pause:3.9\n")
    await lab.ok(N, "echo KUBELET_EXTRA_ARGS= | sudo tee /etc/default/kubelet")
    assert await lab.ok(N, "cat /etc/default/kubelet") == "KUBELET_EXTRA_ARGS=\n"  # fix stays


# --- curl and gpg ----------------------------------------------------------------------------


GUIDE = (f"curl -fsSL {release_key_url('1.30')} | sudo gpg --dearmor -o {KEYRING}")


async def test_the_guides_curl_gpg_pipeline_writes_a_binary_keyring_gpg_can_show(lab):
    await lab.ok(N, f"sudo rm -f {KEYRING}")
    await lab.ok(N, GUIDE)
    raw = lab.agents.host(N).fs.read_bytes(KEYRING)
    assert raw[0] == 0x99
    assert b"BEGIN PGP" not in raw
    shown = await lab.ok(N, f"gpg --show-keys {KEYRING}")
    assert DEFAULT_KEY.fingerprint in shown
    assert f"[expires: {DEFAULT_KEY.expires}]" in shown
    colons = await lab.ok(N, f"gpg --show-keys --with-colons {KEYRING}")
    assert colons.startswith(f"pub:-:2048:1:{DEFAULT_KEY.key_id}:")


async def test_gpg_dearmor_does_not_overwrite_without_yes_over_ssh(lab):
    await lab.ok(N, f"sudo rm -f {KEYRING}")
    await lab.ok(N, GUIDE)
    r = await lab.sh(N, GUIDE)
    assert r.exit_code == 2
    assert "no terminal at all requested" in r.stderr
    await lab.ok(N, GUIDE.replace("--dearmor", "--yes --dearmor"))


async def test_curl_serves_only_the_labs_downloads(lab):
    r = await lab.sh(N, "curl -fsSL https://example.com/install.sh")
    assert (r.exit_code, r.stderr) == (6, "curl: (6) Could not resolve host: example.com\n")
    r = await lab.sh(N, "curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.99/deb/Release.key")
    assert (r.exit_code, r.stderr) == (22, "curl: (22) The requested URL returned error: 404\n")
    r = await lab.sh(N, "curl -s https://example.com/")
    assert (r.exit_code, r.stderr) == (6, "")
    rpm_key = await lab.ok(N, f"curl -fsSL {release_key_url('1.29', rpm=True)}")
    assert rpm_key.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")


async def test_a_served_key_replaces_the_default_and_its_expiry_shows(lab):
    old = LabKey(DEFAULT_KEY.fingerprint, DEFAULT_KEY.uid, date(2022, 8, 25), date(2024, 11, 2))
    downloads(lab.agents.cluster)[release_key_url("1.27")] = armor(old).encode()
    out = await lab.ok(N, f"curl -fsSL {release_key_url('1.27')} | gpg --show-keys")
    assert "pub   rsa2048 2022-08-25 [SC] [expired: 2024-11-02]" in out


async def test_curl_output_files_follow_the_users_permissions(lab):
    r = await lab.sh(N, f"curl -fsSLo /etc/k.key {release_key_url('1.30')}")
    assert r.exit_code == 23
    assert "Permission denied" in r.stderr
    await lab.ok(N, f"curl -fsSL -o /tmp/k.key {release_key_url('1.30')}")
    assert "BEGIN PGP" in await lab.ok(N, "cat /tmp/k.key")


# --- what kubehop reads ------------------------------------------------------------------------


class _Runner:
    def __init__(self, lab) -> None:
        self.lab = lab

    async def run(self, node: str, command: str) -> tuple[int, str, str]:
        r = await self.lab.sh(node, command)
        return r.exit_code, r.stdout, r.stderr


async def test_the_facts_command_reads_extra_args_and_cgroup_version_from_a_lab_node(lab):
    lab.agents.cluster.inject("cgroup-v1", N)
    lab.agents.cluster.inject("kubelet-extra-args", N,
                              {"args": "--v=2 --pod-infra-container-image=registry.k8s.io/p:3"})
    facts = await node_facts(_Runner(lab), NodeState(N, os_image="Ubuntu 22.04.4 LTS"))
    assert facts.host is not None
    assert facts.host.extra_args == ("--v=2", "--pod-infra-container-image=registry.k8s.io/p:3")
    assert facts.host.extra_args_file == "/etc/default/kubelet"
    assert (facts.host.cgroup_fs, facts.host.cgroup_v1) == ("tmpfs", True)
    other = await node_facts(_Runner(lab), NodeState("oldversion2", os_image="Ubuntu"))
    assert other.host is not None
    assert other.host.cgroup_v1 is False
    assert other.host.extra_args == ()
    assert "stat -fc %T /sys/fs/cgroup" in facts_command(OsFamily.RHEL)
