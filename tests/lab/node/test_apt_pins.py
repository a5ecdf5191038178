"""The lab's apt honours preferences pins as apt 2.6 does (each behaviour here has a real-apt
twin in tests/integration/apt/test_real_apt_pins.py), and the scenario option that writes
preferences files."""

import pytest

from kubehop.lab.scenarios import load_scenario, parse_text
from kubehop.lab.scenarios.validate import parse_scenario
from kubehop.model.errors import UsageError

N = "oldversion1"
LIST = "/etc/apt/sources.list.d/kubernetes.list"
PREF = "/etc/apt/preferences.d/kubernetes"
COURSE_PIN = "Package: kubectl kubeadm kubelet\nPin: version 1.28.*\nPin-Priority: 1000\n"


async def write(lab, path: str, text: str) -> None:
    escaped = text.replace("\n", "\\n")
    await lab.ok(N, f"printf '{escaped}' | sudo tee {path} >/dev/null")


async def installed(lab, name: str) -> str:
    return await lab.ok(N, f"dpkg-query -W -f='${{Version}}' {name}")


async def test_the_course_pin_keeps_the_minor_until_it_is_removed(lab):
    await lab.ok(N, "sudo apt-mark unhold kubeadm kubelet kubectl")
    await write(lab, PREF, COURSE_PIN)
    await lab.ok(N, f"sudo sed -i s/1.28/1.29/ {LIST} && sudo apt update")
    out = await lab.ok(N, "sudo apt install kubeadm -y")
    assert "kubeadm is already the newest version (1.28.9-1.1).\n" in out
    await lab.ok(N, f"sudo rm {PREF}")
    out = await lab.ok(N, "sudo apt install kubeadm -y")
    assert "Unpacking kubeadm (1.29.15-1.1) over (1.28.9-1.1) ...\n" in out
    assert await installed(lab, "kubeadm") == "1.29.15-1.1"


async def test_etc_apt_preferences_and_a_regex_package_line_count(lab):
    await lab.ok(N, "sudo apt-mark unhold kubelet")
    await write(lab, "/etc/apt/preferences",
                "Package: /^kube(let|adm)$/\nPin: version 1.28.8*\nPin-Priority: 1001\n")
    policy = await lab.ok(N, "apt-cache policy kubelet kubectl")
    assert "kubelet:\n  Installed: 1.28.9-1.1\n  Candidate: 1.28.8-1.1\n" in policy
    assert "     1.28.8-1.1 1001\n" in policy
    assert "kubectl:\n  Installed: 1.28.9-1.1\n  Candidate: 1.28.15-1.1\n" in policy


async def test_a_pin_of_1000_or_more_downgrades_on_upgrade_and_999_does_not(lab):
    await lab.ok(N, "sudo apt-mark unhold kubelet")
    await write(lab, PREF, "Package: kubelet\nPin: version 1.28.8*\nPin-Priority: 999\n")
    assert "Candidate: 1.28.15-1.1" in await lab.ok(N, "apt-cache policy kubelet")
    await write(lab, PREF, "Package: kubelet\nPin: version 1.28.8*\nPin-Priority: 1001\n")
    r = await lab.sh(N, "sudo apt-get upgrade -y")
    assert r.exit_code == 100
    assert "The following packages will be DOWNGRADED:\n  kubelet\n" in r.stdout
    assert r.stderr == "E: Packages were downgraded and -y was used without --allow-downgrades.\n"
    await lab.ok(N, "sudo apt-get upgrade -y --allow-downgrades")
    assert await installed(lab, "kubelet") == "1.28.8-1.1"


async def test_a_negative_pin_is_never_a_candidate_but_pkg_version_still_installs(lab):
    await lab.ok(N, "sudo apt-mark unhold kubectl")
    await write(lab, PREF, "Package: kubectl\nPin: version 1.28.1*\nPin-Priority: -1\n")
    policy = await lab.ok(N, "apt-cache policy kubectl")
    assert "  Candidate: 1.28.9-1.1\n" in policy  # not 1.28.15: -1 never wins
    assert "     1.28.15-1.1 -1\n" in policy
    await lab.ok(N, "sudo apt-get install -y kubectl=1.28.15-1.1")
    assert await installed(lab, "kubectl") == "1.28.15-1.1"


async def test_release_and_origin_pins_match_the_repository(lab):
    await lab.ok(N, "sudo apt-mark unhold kubectl")
    await write(lab, PREF, "Package: kubectl\nPin: release l=isv:kubernetes:core:stable:v1.28\n"
                           "Pin-Priority: 1000\n\n"
                           "Package: kubeadm\nPin: origin pkgs.k8s.io\nPin-Priority: -10\n")
    policy = await lab.ok(N, "apt-cache policy kubectl kubeadm")
    assert "     1.28.15-1.1 1000\n" in policy
    assert "kubeadm:\n  Installed: 1.28.9-1.1\n  Candidate: (none)\n" in policy
    general = await lab.ok(N, "apt-cache policy")
    assert "release o=obs://build.opensuse.org/isv:kubernetes:core:stable:v1.28/deb," \
           "l=isv:kubernetes:core:stable:v1.28,c=\n" in general
    assert "     kubectl -> 1.28.15-1.1 with priority 1000\n" in general


async def test_files_apt_does_not_read_are_ignored(lab):
    await lab.ok(N, "sudo apt-mark unhold kubelet")
    await write(lab, "/etc/apt/preferences.d/kubernetes.txt",
                "Package: kubelet\nPin: version 1.28.8*\nPin-Priority: 1001\n")
    assert "Candidate: 1.28.15-1.1" in await lab.ok(N, "apt-cache policy kubelet")


# --- the scenario option ----------------------------------------------------------------------


def test_the_course_scenario_pins_every_node_without_holds():
    sc = load_scenario("course")
    assert [n.name for n in sc.nodes] == ["oldversion1", "oldversion2", "oldversion3"]
    assert {n.holds for n in sc.nodes} == {()}
    assert {tuple(n.apt_preferences.items()) for n in sc.nodes} == {((PREF, COURSE_PIN),)}
    assert parse_scenario(sc.to_dict(), "again").to_dict() == sc.to_dict()


def test_a_preferences_file_outside_apts_directories_is_refused():
    text = ("name: bad\nnodes:\n  - {name: cp, roles: [control-plane], "
            "aptPreferences: {/etc/apt/pins: 'Package: kubelet'}}\n")
    with pytest.raises(UsageError) as exc:
        parse_text(text, "s.yaml")
    assert "nodes[0].aptPreferences" in str(exc.value)
    assert "not an apt preferences file (/etc/apt/preferences or /etc/apt/preferences.d/NAME)" \
        in str(exc.value)
    assert exc.value.exit_code == 2
