"""The SSH transport against a real OpenSSH server: argv quoting, stdin, exit codes, sudo as
root, timeouts, host keys and authentication as sshd enforces them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
from pathlib import Path

import asyncssh
import pytest
import yaml

from kubehop.shell.transports import AuthenticationFailed, CommandTimeout, HostKeyChanged
from kubehop.shell.transports.ssh import SSHTransport


def transport(server, **options) -> SSHTransport:
    return SSHTransport.from_file(server.inventory, ssh_config=[], **options)


async def test_hostile_arguments_arrive_as_one_literal_argument(openssh, tmp_path):
    victim = tmp_path / "x"
    victim.mkdir()
    hostile = f"'; rm -rf {victim}"
    async with transport(openssh) as ssh:
        result = await ssh.run("real", ["printf", "[%s]\\n", hostile, "$HOME", "a  b", "`id`",
                                        "", "*"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"[{hostile}]\n[$HOME]\n[a  b]\n[`id`]\n[]\n[*]\n"
    assert victim.is_dir()


async def test_stdin_exit_codes_and_scripts(openssh):
    payload = "".join(f"line {i} 'quoted' \"and\" $not_expanded\n" for i in range(20000))
    async with transport(openssh) as ssh:
        digest = await ssh.run("real", ["sha256sum"], stdin=payload)
        assert digest.stdout.split()[0] == hashlib.sha256(payload.encode()).hexdigest()
        assert (await ssh.run("real", ["cat"])).stdout == ""  # no stdin: EOF at once
        failed = await ssh.run("real", ["sh", "-c", "echo out; echo err >&2; exit 7"])
        assert (failed.exit_code, failed.stdout, failed.stderr) == (7, "out\n", "err\n")
        script = await ssh.run("real", "false || { echo fallback; exit 3; }")
        assert (script.exit_code, script.stdout) == (3, "fallback\n")
        missing = await ssh.run("real", ["/nonexistent/kubeadm"])
        assert missing.exit_code == 127


async def test_sudo_is_not_prefixed_for_root_and_commands_run_in_parallel(openssh):
    if openssh.user != "root":
        pytest.skip("sudo as root only: the test sshd runs as the current user")
    async with transport(openssh) as ssh:
        assert (await ssh.run("real", ["id", "-u"], sudo=True)).stdout == "0\n"
        results = await asyncio.gather(*(ssh.run("real", ["echo", str(i)]) for i in range(12)))
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(12)]
        assert len(ssh._conns) == 1


async def test_timeout_stops_waiting_and_signals_the_remote_command(openssh):
    async with transport(openssh) as ssh:
        await ssh.run("real", ["true"])  # connected first: the timeout covers the command only
        # 3 s: time for the echo to come back even with the suite's other workers busy
        with pytest.raises(CommandTimeout, match="did not finish within 3 s") as caught:
            await ssh.run("real", "echo $$ && exec sleep 60", timeout=3)
        assert (await ssh.run("real", ["echo", "still usable"])).stdout == "still usable\n"
    pid = int(caught.value.stdout.split()[0])  # the partial output is kept
    try:
        if openssh.user == "root":
            # sshd refuses the "signal" request in root sessions ("session signalling requires
            # privilege separation"): the command outlives the channel, as with `ssh -T`.
            return
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the remote command outlived its timeout and the TERM signal")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_real_sshd_refuses_a_wrong_key_and_a_changed_host_key(openssh, tmp_path):
    other = tmp_path / "other"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
    doc = yaml.safe_load(openssh.inventory.read_text())
    doc["nodes"]["real"]["identityFile"] = str(other)
    wrong_key = tmp_path / "wrong-key.yaml"
    wrong_key.write_text(yaml.safe_dump(doc))
    async with SSHTransport.from_file(wrong_key, ssh_config=[]) as ssh:
        with pytest.raises(AuthenticationFailed, match="cannot log in to node real at "):
            await ssh.run("real", ["true"])

    imposter = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    openssh.known_hosts.write_text(f"[127.0.0.1]:{openssh.port} {imposter}")
    async with transport(openssh, accept_new_host_keys=True) as ssh:
        with pytest.raises(HostKeyChanged, match=f"recorded in {openssh.known_hosts}"):
            await ssh.run("real", ["true"])


async def test_through_a_jump_host(openssh, tmp_path):
    doc = yaml.safe_load(openssh.inventory.read_text())
    doc["nodes"]["real"]["jumpHost"] = f"{openssh.user}@127.0.0.1:{openssh.port}"
    jumped = tmp_path / "jump.yaml"
    jumped.write_text(yaml.safe_dump(doc))
    async with SSHTransport.from_file(jumped, ssh_config=[]) as ssh:
        result = await ssh.run("real", ["sh", "-c", "echo $SSH_CONNECTION"])
        assert result.exit_code == 0, result.stderr
        assert len(ssh._jumps) == 1
    # The second hop comes from sshd itself (forwarded from 127.0.0.1 to 127.0.0.1).
    assert result.stdout.split()[2:] == ["127.0.0.1", str(openssh.port)]
