"""The SSH transport against the lab's per-node SSH endpoints: commands, sudo, stdin, reuse,
kubehop's own package commands, and every way a connection is refused."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncssh
import pytest
import yaml

from kubehop.core.node_commands import upgrade_packages
from kubehop.lab.lab import Lab
from kubehop.model.versions import MinorVersion
from kubehop.shell.transports import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
)
from kubehop.shell.transports.inventory import load_inventory
from kubehop.shell.transports.ssh import SSHTransport

CP, W1, W2 = "oldversion1", "oldversion2", "oldversion3"


@pytest.fixture
async def lab(tmp_path):
    async with Lab("oldversion", time_scale=0.01, state_dir=tmp_path / "lab") as lab:
        yield lab


def transport(inventory: Path, **options) -> SSHTransport:
    return SSHTransport.from_file(inventory, ssh_config=[], **options)


def rewrite(lab: Lab, tmp_path: Path, **changes) -> Path:
    """A copy of the lab's inventory with top-level and per-node changes."""
    doc = yaml.safe_load(lab.inventory_path.read_text())
    per_node = changes.pop("node", {})
    for node in doc["nodes"].values():
        node.update(per_node)
    doc.update(changes)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_runs_commands_with_sudo_stdin_and_exit_codes(lab):
    async with transport(lab.inventory_path) as ssh:
        version = await ssh.run(CP, ["kubeadm", "version", "-o", "short"])
        assert (version.node, version.command, version.exit_code, version.stdout) == \
            (CP, "kubeadm version -o short", 0, "v1.28.9\n")
        assert (await ssh.run(CP, ["whoami"])).stdout == "kubehop\n"
        assert (await ssh.run(CP, ["whoami"], sudo=True)).stdout == "root\n"  # via `sudo -n`
        held = await ssh.run(W1, ["apt-mark", "showhold"])
        assert held.stdout.split() == ["kubeadm", "kubectl", "kubelet"]
        wrote = await ssh.run(W1, ["tee", "/tmp/note"], stdin="a 'quoted' $line\n", sudo=True)
        assert wrote.ok
        assert (await ssh.run(W1, ["cat", "/tmp/note"])).stdout == "a 'quoted' $line\n"
        script = await ssh.run(W2, "echo out && echo err >&2 && exit 3")
        assert (script.exit_code, script.stdout, script.stderr) == (3, "out\n", "err\n")
        denied = await ssh.run(CP, ["apt-get", "update"])  # not root: apt refuses, as on a node
        assert denied.exit_code == 100


async def test_connections_are_reused_and_commands_run_in_parallel(lab):
    async with transport(lab.inventory_path, max_parallel=8, sessions_per_node=3) as ssh:
        results = await asyncio.gather(*(ssh.run(node, ["hostname"])
                                         for node in (CP, W1, W2) * 10))
        assert [r.stdout for r in results[:3]] == [f"{CP}\n", f"{W1}\n", f"{W2}\n"]
        assert all(r.ok for r in results)
        conns = dict(ssh._conns)
        assert sorted(conns) == [CP, W1, W2]
        await ssh.run(CP, ["true"])
        assert ssh._conns[CP] is conns[CP]
        # A connection that went away while idle is replaced transparently.
        conns[CP].close()
        await conns[CP].wait_closed()
        assert (await ssh.run(CP, ["hostname"])).stdout == f"{CP}\n"
        assert ssh._conns[CP] is not conns[CP]


async def test_kubehops_package_commands_upgrade_kubeadm_over_ssh(lab):
    async with transport(lab.inventory_path) as ssh:
        failed = await ssh.run(CP, ["apt-get", "install", "-y", "kubeadm=1.29.15-1.1"], sudo=True)
        assert failed.exit_code == 100
        assert "E: Version '1.29.15-1.1' for 'kubeadm' was not found" in failed.stderr
        for cmd in upgrade_packages("debian", MinorVersion(1, 29), {"kubeadm": "1.29.15-1.1"}):
            (await ssh.run(CP, cmd.argv, sudo=cmd.sudo, stdin=cmd.stdin)).check()
        assert (await ssh.run(CP, ["kubeadm", "version", "-o", "short"])).stdout == "v1.29.15\n"
        assert "kubeadm" in (await ssh.run(CP, ["apt-mark", "showhold"])).stdout.split()
        source = await ssh.run(CP, ["cat", "/etc/apt/sources.list.d/kubernetes.list"])
        assert "https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /" in source.stdout


async def test_timeout_stops_the_command_and_keeps_the_connection(lab):
    async with transport(lab.inventory_path) as ssh:
        with pytest.raises(CommandTimeout) as caught:
            await ssh.run(W1, ["sleep", "100000"], timeout=0.3)
        assert str(caught.value) == ("`sleep 100000` on node oldversion2 did not finish within "
                                     "0.3 s and was stopped; raise the timeout if it needs longer")
        assert caught.value.node == W1
        assert (await ssh.run(W1, ["hostname"], timeout=5)).stdout == f"{W1}\n"


async def test_a_connection_lost_mid_command_is_an_error_not_an_exit_code(lab):
    async with transport(lab.inventory_path) as ssh:
        await ssh.run(W1, ["true"])
        conn = ssh._conns[W1]
        running = asyncio.create_task(ssh.run(W1, ["sleep", "100000"], timeout=30))
        await asyncio.sleep(0.2)
        conn.abort()
        with pytest.raises(ConnectionLost) as caught:
            await running
        assert str(caught.value) == (
            f"connection to node {W1} was lost while `sleep 100000` ran (no exit status "
            "received): it may or may not have completed; check the node before retrying")
        assert (await ssh.run(W1, ["hostname"])).stdout == f"{W1}\n"  # connects afresh


async def test_unknown_host_is_refused_then_accepted_when_asked(lab, tmp_path):
    known = tmp_path / "known_hosts"
    inventory = rewrite(lab, tmp_path, knownHosts=str(known))
    async with transport(inventory) as ssh:
        with pytest.raises(HostKeyUnknown) as caught:
            await ssh.run(CP, ["true"])
    message = str(caught.value)
    port = lab.ssh_ports[CP]
    assert message.startswith(f"host key of node {CP} at kubehop@127.0.0.1:{port} is not in "
                              f"{known}: verify its fingerprint SHA256:")
    assert "\n" not in message
    assert not known.exists()

    async with transport(inventory, accept_new_host_keys=True) as ssh:
        assert (await ssh.run(CP, ["hostname"])).ok
        assert (await ssh.run(W1, ["hostname"])).ok
    lines = known.read_text().splitlines()
    assert [line.split()[0] for line in lines] == \
        [f"[127.0.0.1]:{port}", f"[127.0.0.1]:{lab.ssh_ports[W1]}"]
    assert all(line.split()[1] == "ssh-ed25519" for line in lines)
    async with transport(inventory) as ssh:  # now known: no accept-new needed
        assert (await ssh.run(CP, ["hostname"])).stdout == f"{CP}\n"


async def test_a_changed_host_key_is_always_refused(lab, tmp_path):
    # Record oldversion2's key under oldversion1's address: as if oldversion1 were replaced.
    lines = {line.split()[0]: line.split(maxsplit=1)[1]
             for line in lab.known_hosts_path.read_text().splitlines()}
    cp, w1 = (f"[127.0.0.1]:{lab.ssh_ports[n]}" for n in (CP, W1))
    known = tmp_path / "known_hosts"
    known.write_text(f"{cp} {lines[w1]}\n")
    inventory = rewrite(lab, tmp_path, knownHosts=str(known))
    async with transport(inventory, accept_new_host_keys=True) as ssh:
        with pytest.raises(HostKeyChanged) as caught:
            await ssh.run(CP, ["true"])
    message = str(caught.value)
    assert message.startswith(f"host key of node {CP} at kubehop@127.0.0.1:{lab.ssh_ports[CP]} ")
    assert f"does not match the one recorded in {known}" in message
    assert f"ssh-keygen -R '{cp}' -f {known}" in message
    assert known.read_text() == f"{cp} {lines[w1]}\n"  # never rewritten


async def test_wrong_key_or_user_is_an_authentication_failure(lab, tmp_path):
    other = tmp_path / "other_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
    inventory = rewrite(lab, tmp_path, node={"identityFile": str(other)})
    async with transport(inventory) as ssh:
        with pytest.raises(AuthenticationFailed) as caught:
            await ssh.run(W2, ["true"])
    assert str(caught.value).startswith(
        f"cannot log in to node {W2} at kubehop@127.0.0.1:{lab.ssh_ports[W2]}: the server "
        f"refused identity file {other}; check user and identityFile in the SSH inventory")
    inventory = rewrite(lab, tmp_path, node={"user": "admin"})
    async with transport(inventory) as ssh:
        with pytest.raises(AuthenticationFailed, match=f"cannot log in to node {W2} at admin@"):
            await ssh.run(W2, ["true"])


async def test_a_closed_port_is_unreachable(lab, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inventory = rewrite(lab, tmp_path, node={"port": port})
    async with transport(inventory) as ssh:
        with pytest.raises(HostUnreachable) as caught:
            await ssh.run(CP, ["true"])
    assert str(caught.value).startswith(f"cannot reach node {CP} at kubehop@127.0.0.1:{port}: ")
    assert "check the host and port in the SSH inventory" in str(caught.value)


async def test_nodes_missing_from_the_inventory_use_the_callers_address(lab, tmp_path):
    doc = yaml.safe_load(lab.inventory_path.read_text())
    entry = doc["nodes"].pop(CP)
    doc["defaults"] = {"user": entry["user"], "identityFile": entry["identityFile"],
                       "port": entry["port"]}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert CP not in load_inventory(path).nodes
    async with transport(path, addresses={CP: "127.0.0.1"}) as ssh:
        assert ssh.endpoint(CP).host == "127.0.0.1"
        assert (await ssh.run(CP, ["hostname"])).stdout == f"{CP}\n"


async def test_openssh_config_is_honoured(lab, tmp_path):
    doc = yaml.safe_load(lab.inventory_path.read_text())
    entry = doc["nodes"][CP]
    config = tmp_path / "ssh_config"
    config.write_text(f"Host cp-alias\n  HostName 127.0.0.1\n  Port {entry['port']}\n"
                      f"  User {entry['user']}\n  IdentityFile {entry['identityFile']}\n"
                      "  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n")
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"knownHosts": doc["knownHosts"]}))
    # Host, port, user and key come from the config; its attempt to switch host key checking
    # off is ignored: the inventory's known_hosts still decides.
    async with SSHTransport.from_file(path, addresses={CP: "cp-alias"},
                                      ssh_config=[str(config)]) as ssh:
        assert (await ssh.run(CP, ["hostname"])).stdout == f"{CP}\n"
    (tmp_path / "empty_known_hosts").write_text("")
    path.write_text(yaml.safe_dump({"knownHosts": str(tmp_path / "empty_known_hosts")}))
    async with SSHTransport.from_file(path, addresses={CP: "cp-alias"},
                                      ssh_config=[str(config)]) as ssh:
        with pytest.raises(HostKeyUnknown):
            await ssh.run(CP, ["hostname"])
