"""The local transport: argv without a shell, scripts under sh -c, stdin, timeouts."""

import os
import time

import pytest

from kubehop.shell.transports import CommandTimeout, HostUnreachable
from kubehop.shell.transports.local import LocalTransport

HOSTILE = "'; rm -rf /tmp/x"


async def test_argv_arrives_literally_and_exit_codes_are_kept(tmp_path):
    async with LocalTransport() as local:
        result = await local.run("here", ["printf", "%s|", HOSTILE, "$HOME", "a b"])
        assert result.stdout == f"{HOSTILE}|$HOME|a b|"
        assert result.command == "printf '%s|' ''\"'\"'; rm -rf /tmp/x' '$HOME' 'a b'"
        failed = await local.run("here", "echo out; echo err >&2; exit 3")
        assert (failed.exit_code, failed.stdout, failed.stderr) == (3, "out\n", "err\n")
        assert failed.duration >= 0


async def test_stdin_is_fed_and_absent_stdin_reads_nothing(tmp_path):
    async with LocalTransport(env={"KUBEHOP_TEST": "yes"}, cwd=str(tmp_path)) as local:
        assert (await local.run("here", ["cat"], stdin="line 1\nline 2\n")).stdout == \
            "line 1\nline 2\n"
        assert (await local.run("here", ["cat"])).stdout == ""
        assert (await local.run("here", "echo $KUBEHOP_TEST; pwd")).stdout == \
            f"yes\n{tmp_path}\n"


async def test_missing_program_is_exit_127():
    async with LocalTransport() as local:
        result = await local.run("here", ["/nonexistent/kubeadm", "version"])
        assert result.exit_code == 127
        assert "No such file or directory" in result.stderr


async def test_timeout_stops_the_whole_process_group(tmp_path):
    marker = tmp_path / "survived"
    async with LocalTransport() as local:
        started = time.monotonic()
        with pytest.raises(CommandTimeout) as caught:
            await local.run("w1", f"echo partial; (sleep 1; touch {marker}) & sleep 30",
                            timeout=0.5)
        assert time.monotonic() - started < 5
    message = str(caught.value)
    assert message.startswith("`echo partial; (sleep 1; touch")
    assert "on node w1 did not finish within 0.5 s and was stopped" in message
    assert caught.value.stdout == "partial\n"
    time.sleep(1.5)
    assert not marker.exists()  # the background child was killed with its group


async def test_sudo_prefix_only_when_not_root():
    local = LocalTransport()
    argv = local._argv(["apt-get", "update"], True)
    if os.geteuid() == 0:
        assert argv == ["apt-get", "update"]
    else:
        assert argv == ["sudo", "-n", "apt-get", "update"]
    assert LocalTransport(sudo=False)._argv(["id"], True) == ["id"]
    assert local._argv("a && b", False) == ["sh", "-c", "a && b"]


async def test_nodes_other_than_this_machine_are_refused():
    async with LocalTransport(nodes=frozenset({"solo"})) as local:
        assert (await local.run("solo", ["true"])).ok
        with pytest.raises(HostUnreachable, match="node w1 is not this machine"):
            await local.run("w1", ["true"])
