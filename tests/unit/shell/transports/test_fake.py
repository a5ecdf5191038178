"""The recording fake: scripted answers by pattern, every call recorded."""

import re

import pytest

from kubehop.shell.transports import CommandTimeout
from kubehop.shell.transports.fake import Answer, Call, FakeTransport


async def test_records_calls_and_answers_by_glob():
    fake = FakeTransport().on("kubeadm version*", stdout="v1.28.9\n")
    result = await fake.run("cp1", ["kubeadm", "version", "-o", "short"], timeout=5)
    assert (result.node, result.command, result.exit_code, result.stdout) == \
        ("cp1", "kubeadm version -o short", 0, "v1.28.9\n")
    other = await fake.run("w1", "uname -r", sudo=True, stdin="x")
    assert (other.exit_code, other.stdout) == (0, "")
    assert fake.calls == [
        Call("cp1", "kubeadm version -o short", False, 5, None,
             ("kubeadm", "version", "-o", "short")),
        Call("w1", "uname -r", True, 300.0, "x", None),
    ]
    assert fake.commands("w1") == ["uname -r"]


async def test_latest_matching_answer_wins_and_node_and_times_narrow_it():
    fake = FakeTransport()
    fake.on(re.compile(r"^apt-get install "), exit_code=100, stderr="E: held\n")
    fake.on("apt-get install *", node="w2", stdout="ok\n")
    fake.on("apt-get install *", node="w1", exit_code=1, times=1)
    argv = ["apt-get", "install", "-y", "kubeadm=1.29.15-1.1"]
    assert (await fake.run("w1", argv)).exit_code == 1
    assert (await fake.run("w1", argv)).exit_code == 100  # the one-time answer is used up
    assert (await fake.run("w2", argv)).stdout == "ok\n"


async def test_answers_can_raise_or_be_computed():
    fake = FakeTransport()
    fake.on("sleep *", raises=CommandTimeout("too slow", node="w1"))
    fake.on("echo *", reply=lambda call: Answer(stdout=" ".join(call.argv[1:]) + "\n"))
    with pytest.raises(CommandTimeout):
        await fake.run("w1", ["sleep", "9"])
    assert (await fake.run("w1", ["echo", "a", "b"])).stdout == "a b\n"
    assert len(fake.calls) == 2


async def test_strict_fake_refuses_unscripted_commands_and_close_is_recorded():
    async with FakeTransport(strict=True) as fake:
        with pytest.raises(LookupError, match="no answer for `reboot` on w1"):
            await fake.run("w1", ["reboot"])
    assert fake.closed
