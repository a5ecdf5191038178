"""`kubehop upgrade --to 1.30 --yes` with every node command passing through a real OpenSSH
sshd (its ForceCommand relays to the lab's node agents), judged from the lab's history, what
`kubehop versions` shows, what the nodes answer over that sshd, and sshd's own log."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess

import pytest

from kubehop.lab.history import check_history
from kubehop.shell.transports.ssh import SSHTransport
from tests.integration.openssh_apply.conftest import OpenSSHLab
from tests.integration.ssh.conftest import SSH_KEYGEN
from tests.integration.upgrade.conftest import TODAY, final_versions
from tests.integration.upgrade.test_upgrade import (
    assert_primary_switched_over_before_its_node_drained,
    assert_upgraded,
)

TARGET = "v1.30.14"
NODES = ("oldversion1", "oldversion2", "oldversion3")


async def _on_every_node(lab: OpenSSHLab, command: list[str]) -> dict[str, tuple[int, str]]:
    async with SSHTransport.from_file(lab.inventory, ssh_config=[]) as ssh:
        results = await asyncio.gather(*(ssh.run(node, command) for node in NODES))
    return {r.node: (r.exit_code, r.stdout) for r in results}


def host_fingerprint(lab: OpenSSHLab) -> str:
    """`SHA256:…` of the sshd's host key, as `ssh-keygen -l` shows it."""
    listed = subprocess.run([str(SSH_KEYGEN), "-l", "-E", "sha256", "-f", "-"], check=True,
                            input=lab.host_public_key, capture_output=True, text=True)
    return listed.stdout.split()[1]


def on_every_node(lab: OpenSSHLab, *command: str) -> dict[str, tuple[int, str]]:
    """(exit code, stdout) of `command` on each node, over the real sshd."""
    return asyncio.run(_on_every_node(lab, list(command)))


def assert_every_command_came_through_sshd(lab: OpenSSHLab) -> None:
    """sshd accepted public-key logins on each node's address and started one relay session per
    command the lab's node agents got, each relaying to the node whose address it came in on."""
    logins = lab.logins_by_address()
    for node in NODES:
        assert logins.get(lab.addresses[node][0], 0) >= 1, (node, logins)
    relayed: dict[tuple[str, str], int] = {}
    for call in lab.relay.calls:
        key = (call.node, call.local_address)
        relayed[key] = relayed.get(key, 0) + 1
    assert set(relayed) == {(node, lab.addresses[node][0]) for node in NODES}
    assert lab.sessions() == relayed


async def _relayed_io(lab: OpenSSHLab) -> list[tuple[int, str, str]]:
    text = "".join(f"line {i} 'quoted' $HOME\n" for i in range(2000))
    async with SSHTransport.from_file(lab.inventory, ssh_config=[]) as ssh:
        results = [await ssh.run("oldversion2", ["cat"], stdin=text),
                   await ssh.run("oldversion2", "kubeadm upgrade bogus"),
                   await ssh.run("oldversion2", ["echo", "a  b", "'; id", "$HOME", "*"])]
    assert results[0].stdout == text
    return [(r.exit_code, r.stdout, r.stderr) for r in results[1:]]


def test_the_relay_reaches_each_node_through_its_own_address(openssh_lab):
    lab = openssh_lab("oldversion")
    assert on_every_node(lab, "kubeadm", "version", "-o", "short") == {
        node: (0, "v1.28.9\n") for node in NODES}
    assert_every_command_came_through_sshd(lab)
    assert sum(lab.sessions().values()) == 3
    # stdin, stdout, stderr, exit codes and quoting pass through sshd and the relay unchanged.
    bogus, printed = asyncio.run(_relayed_io(lab))
    assert bogus[0] != 0
    assert "bogus" in bogus[2]
    assert printed == (0, "a  b '; id $HOME *\n", "")


@pytest.mark.slow
def test_oldversion_from_128_to_130_through_real_openssh(openssh_lab):
    lab = openssh_lab("oldversion")
    up = lab.up
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "finished:" in done.stdout
    assert "no package facts" not in done.stdout  # the plan saw the nodes' packages over SSH

    # The lab's own record: every component at the target, no invariant broken, nothing
    # cordoned, the lock released, the database primary switched over first.
    events = assert_upgraded(up)
    assert_primary_switched_over_before_its_node_drained(events, "oldversion2")
    versions = final_versions(events)
    assert {versions[(node, "kubeadm")] for node in NODES} == {TARGET}

    # Every node command went through OpenSSH, to the right node.
    assert_every_command_came_through_sshd(lab)
    lines = [c.command for c in lab.relay.calls]
    assert any("kubeadm upgrade apply -y v1.30.14" in line for line in lines)
    assert any("tee /etc/apt/sources.list.d/kubernetes.list" in line for line in lines)
    assert {e["node"] for e in events if e["type"] == "command"} == set(NODES)

    # What a user sees: `kubehop versions`, and the nodes' own kubeadm over the real sshd.
    shown = up.kubehop("versions", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert {a["version"] for a in doc["apiservers"]} == {TARGET}
    assert {n["name"]: n["kubelet"] for n in doc["nodes"]} == dict.fromkeys(NODES, TARGET)
    assert all(n["schedulable"] for n in doc["nodes"])
    (cp,) = [n["controlPlane"] for n in doc["nodes"] if n["name"] == "oldversion1"]
    assert {cp[c] for c in ("kube-apiserver", "kube-controller-manager",
                            "kube-scheduler")} == {TARGET}
    assert doc["kubeadm"]["kubernetesVersion"] == TARGET
    assert on_every_node(lab, "kubeadm", "version", "-o", "short") == {
        node: (0, f"{TARGET}\n") for node in NODES}


def test_an_unknown_host_key_stops_the_run_before_anything_changes(openssh_lab):
    lab = openssh_lab("oldversion", trust_host_key=False)
    up = lab.up
    before = final_versions(up.lt.events())
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY, timeout=120)
    # Refused before planning: a plan on guessed packages and OS families would be wrong.
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Plan saved" not in done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    found = re.search(r"host key of node (\S+) at \S+@(127\.0\.0\.\d+):(\d+) is not in "
                      + re.escape(str(lab.known_hosts)) + r": verify its fingerprint (\S+) ",
                      last)
    assert last.startswith("kubehop: "), last
    assert found, last
    node, address, port, fingerprint = found.groups()
    assert lab.addresses[node] == (address, int(port))
    assert fingerprint == host_fingerprint(lab)  # the real sshd's key, for the user to verify

    # Nothing reached a node, nothing was cordoned, evicted or changed.
    events = up.lt.events()
    assert check_history(events, max_unavailable=1) == []
    assert final_versions(events) == before
    assert not [e for e in events if e["type"] == "command"]
    assert not [e for e in events if e["type"] == "node" and not e["schedulable"]]
    assert not [e for e in events if e["type"] == "pod" and e["event"] == "deleted"]
    assert all(not n["spec"].get("unschedulable") for n in up.lt.nodes())
    assert lab.relay.calls == []
    assert "Accepted publickey" not in lab.log_text()  # refused before logging in
