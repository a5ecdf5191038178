"""The node shell: lists, pipes, redirections, sudo, and bash's failure messages."""

import pytest

from kubehop.lab.node.shell import ShellSyntaxError, parse

N = "oldversion1"


def test_parse_splits_lists_pipes_and_redirections():
    pipelines = parse("a x && b | c 2>&1 > /tmp/f; d || e")
    assert [p.connector for p in pipelines] == ["", "&&", ";", "||"]
    assert [c.words for c in pipelines[1].commands] == [["b"], ["c"]]
    assert pipelines[1].commands[1].redirects == [(2, ">&", "1"), (1, ">", "/tmp/f")]
    assert parse("apt-get install -y kubeadm='1.29.15-*'")[0].commands[0].words[-1] == (
        "kubeadm=1.29.15-*")


def test_parse_rejects_what_bash_rejects():
    for line in ("&& a", "a |", "echo 'open"):
        with pytest.raises(ShellSyntaxError):
            parse(line)


async def test_unknown_commands_exit_127_like_bash(lab):
    r = await lab.sh(N, "helm upgrade")
    assert (r.exit_code, r.stderr) == (127, "bash: line 1: helm: command not found\n")
    r = await lab.sh(N, "sudo helm upgrade")
    assert (r.exit_code, r.stderr) == (1, "sudo: helm: command not found\n")


async def test_and_or_and_errexit(lab):
    assert (await lab.sh(N, "false && echo no || echo yes")).stdout == "yes\n"
    assert (await lab.sh(N, "false; echo still")).stdout == "still\n"
    r = await lab.sh(N, "set -e; false; echo never")
    assert (r.exit_code, r.stdout) == (1, "")


async def test_pipes_feed_stdin_and_sudo_tee_writes_root_files(lab):
    line = "deb [signed-by=/k.gpg] https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /"
    r = await lab.sh(N, f"echo '{line}' | sudo tee /etc/apt/sources.list.d/kubernetes.list")
    assert (r.exit_code, r.stdout) == (0, line + "\n")
    assert await lab.ok(N, "cat /etc/apt/sources.list.d/kubernetes.list") == line + "\n"
    assert await lab.ok(N, "cat /etc/os-release | grep -c VERSION_ID") == "1\n"


async def test_redirections_are_opened_by_the_unprivileged_shell(lab):
    r = await lab.sh(N, "sudo echo x > /etc/apt/sources.list.d/kubernetes.list")
    assert r.exit_code == 1
    assert r.stderr == "bash: line 1: /etc/apt/sources.list.d/kubernetes.list: Permission denied\n"
    r = await lab.sh(N, "echo x | tee /etc/apt/sources.list.d/kubernetes.list")
    assert r.stderr == "tee: /etc/apt/sources.list.d/kubernetes.list: Permission denied\n"
    assert await lab.ok(N, "echo hi > /tmp/f && echo more >> /tmp/f && cat /tmp/f") == "hi\nmore\n"
    assert (await lab.sh(N, "cat /nope 2>/dev/null")).stderr == ""
    assert (await lab.sh(N, "cat /nope 2>&1")).stdout == "cat: /nope: No such file or directory\n"


async def test_root_only_files_and_sh_c(lab):
    path = "/etc/kubernetes/manifests/kube-apiserver.yaml"
    r = await lab.sh(N, f"cat {path}")
    assert r.stderr == f"cat: {path}: Permission denied\n"
    assert "image: registry.k8s.io/kube-apiserver:v1.28.9" in await lab.ok(N, f"sudo cat {path}")
    assert await lab.ok(N, "sudo -n sh -c 'id -u && whoami'") == "0\nroot\n"
    assert await lab.ok(N, "DEBIAN_FRONTEND=noninteractive id -un") == "kubehop\n"


async def test_sed_in_place_edits_like_gnu_sed(lab):
    f = "/etc/apt/sources.list.d/kubernetes.list"
    r = await lab.sh(N, f"sed -i 's/v1.28/v1.29/' {f}")
    assert (r.exit_code, r.stderr) == (
        4, "sed: couldn't open temporary file /etc/apt/sources.list.d/sedAbC123: "
           "Permission denied\n")
    await lab.ok(N, f"sudo sed -i.bak -e 's|v1\\.28|v1.29|g' {f}")
    assert "/v1.29/deb/" in await lab.ok(N, f"cat {f}")
    assert "/v1.28/deb/" in await lab.ok(N, f"cat {f}.bak")
    assert await lab.ok(N, "echo abc | sed -E 's/(b)(c)/\\2\\1/'") == "acb\n"
    assert await lab.ok(N, "echo abc | sed 's/\\(a\\)b/[&]/'") == "[ab]c\n"


async def test_file_utilities(lab):
    assert await lab.ok(N, "sudo mkdir -p /etc/x/y && sudo touch /etc/x/y/z && ls /etc/x/y") == (
        "z\n")
    assert (await lab.sh(N, "test -f /etc/x/y/z && [ -d /etc/x ]")).exit_code == 0
    assert (await lab.sh(N, "test -f /etc/x/nope")).exit_code == 1
    r = await lab.sh(N, "sudo rm /etc/x/nope")
    assert r.stderr == "rm: cannot remove '/etc/x/nope': No such file or directory\n"
    assert (await lab.sh(N, "sudo rm -f /etc/x/nope")).exit_code == 0
    assert await lab.ok(N, "uname -r; hostname") == "5.15.0-105-generic\noldversion1\n"
    assert await lab.ok(N, "which kubeadm") == "/usr/bin/kubeadm\n"


async def test_printf_reuses_its_format_like_bash(lab):
    assert (await lab.sh(N, "printf '[%s]' a b c")).stdout == "[a][b][c]"
    assert (await lab.sh(N, "printf '%s=%d\\n' x 1 y")).stdout == "x=1\ny=0\n"
    assert (await lab.sh(N, "printf '100%% %s\\n' done")).stdout == "100% done\n"
    assert (await lab.sh(N, "printf 'none\\n' extra")).stdout == "none\n"
