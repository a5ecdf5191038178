"""Command rendering, sudo wrapping, results and one-line errors."""

import pytest

from kubehop.model.errors import OperationError
from kubehop.shell.transports import CommandFailed, CommandResult, render_command
from kubehop.shell.transports.base import privileged_line
from kubehop.shell.transports.errors import short_command, tail

HOSTILE = "'; rm -rf /tmp/x"


@pytest.mark.parametrize(("command", "line"), [
    (["kubeadm", "version", "-o", "short"], "kubeadm version -o short"),
    (["echo", HOSTILE], "echo ''\"'\"'; rm -rf /tmp/x'"),
    (["apt-get", "install", "-y", "kubeadm=1.29.15-1.1"], "apt-get install -y kubeadm=1.29.15-1.1"),
    (["printf", "%s", ""], "printf %s ''"),
    ("systemctl daemon-reload && systemctl restart kubelet",
     "systemctl daemon-reload && systemctl restart kubelet"),
])
def test_render_command_quotes_every_argv_element(command, line):
    assert render_command(command) == line


@pytest.mark.parametrize("command", [[], "", "   ", ()])
def test_empty_commands_are_refused(command):
    with pytest.raises(ValueError, match="empty"):
        render_command(command)


@pytest.mark.parametrize(("command", "use_sudo", "line"), [
    (["apt-mark", "hold", "kubeadm"], True, "sudo -n apt-mark hold kubeadm"),
    (["apt-mark", "hold", "kubeadm"], False, "apt-mark hold kubeadm"),
    ("a && b 'c d'", True, "sudo -n sh -c 'a && b '\"'\"'c d'\"'\"''"),
    ("a && b", False, "a && b"),
])
def test_privileged_line_wraps_in_sudo_n(command, use_sudo, line):
    assert privileged_line(command, use_sudo=use_sudo) == line


def test_check_returns_a_successful_result():
    result = CommandResult("w1", "true", 0, "", "", 0.1)
    assert result.check() is result
    assert result.ok


def test_check_raises_one_line_naming_node_command_code_and_stderr_tail():
    stderr = "x" * 1000 + "\nE: Held packages were changed and -y was used without " \
                          "--allow-change-held-packages.\n"
    result = CommandResult("w1", "apt-get install -y kubeadm=1.29.15-1.1", 100, "", stderr, 1.0)
    with pytest.raises(CommandFailed) as caught:
        result.check()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("`apt-get install -y kubeadm=1.29.15-1.1` failed on node w1 "
                              "with exit code 100: …")
    assert message.endswith("--allow-change-held-packages.")
    assert len(message) < 450
    assert caught.value.result is result
    assert isinstance(caught.value, OperationError)


def test_tail_joins_lines_and_keeps_the_end():
    assert tail("a\n\n b \nc\n") == "a | b | c"
    assert tail("0123456789", 5) == "…6789"


def test_short_command_masks_credentials_and_cuts():
    line = "kubeadm join 127.77.0.1:6443 --token abcdef.0123456789abcdef " \
           "--discovery-token-ca-cert-hash sha256:ff --certificate-key=deadbeef"
    short = short_command(line, 500)
    assert "abcdef.0123456789abcdef" not in short
    assert "deadbeef" not in short
    assert "sha256:ff" not in short
    assert short.startswith("kubeadm join 127.77.0.1:6443 --token ***")
    assert short_command("x" * 200).endswith("…")
    assert len(short_command("x" * 200)) == 120
