"""Common mistakes end in one line naming the file or server, and the documented exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubehop.cli import app
from tests.release_pins import FRESH

GOOD_USER = "users:\n- name: u\n  user: {token: abc}\n"
KUBECONFIGS = {
    "empty": ("", "is empty"),
    "not-yaml": ("apiVersion: v1\nclusters: [\n  - {{ bad\n", "is not valid YAML at line 3"),
    "list": ("- a\n- b\n", "is a YAML list, not a kubeconfig"),
    "missing-clusters": (
        "contexts:\n- name: c\n  context: {cluster: x, user: u}\ncurrent-context: c\n"
        + GOOD_USER, "context 'c' names cluster 'x', which kubeconfig"),
    "context-names-missing-cluster": (
        "clusters:\n- name: y\n  cluster: {server: 'http://127.0.0.1:1'}\n"
        "contexts:\n- name: c\n  context: {cluster: x, user: u}\ncurrent-context: c\n"
        + GOOD_USER, "(clusters: y)"),
    "no-current-context": (
        "clusters:\n- name: y\n  cluster: {server: 'http://127.0.0.1:1'}\n"
        "contexts:\n- name: c\n  context: {cluster: y, user: u}\n" + GOOD_USER,
        "no current-context in kubeconfig"),
    "clusters-not-a-list": ("clusters: {y: 1}\n", "clusters must be a list of entries"),
}
COMMANDS = [["versions"], ["check", "--today", str(FRESH)],
            ["plan", "--to", "1.30", "--today", str(FRESH)]]


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        app.main(list(args))
    code = exc.value.code
    return code if isinstance(code, int) else 1, capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("name", sorted(KUBECONFIGS))
def test_a_malformed_kubeconfig_is_one_line_naming_the_file_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
        command: list[str]) -> None:
    text, says = KUBECONFIGS[name]
    path = tmp_path / "config"
    path.write_text(text)
    code, err = main(capsys, "--kubeconfig", str(path), *command)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0]
    assert says in lines[0]
    assert "internal error" not in err


def test_an_unreadable_kubeconfig_exits_2(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"\xff\xfe not text")
    code, err = main(capsys, "--kubeconfig", str(path), "versions")
    assert code == 2
    assert err.startswith(f"kubehop: cannot read kubeconfig {path}")


def test_context_flag_is_checked_against_the_files(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config"
    path.write_text("clusters:\n- name: y\n  cluster: {server: 'http://127.0.0.1:1'}\n"
                    "contexts:\n- name: c\n  context: {cluster: y, user: u}\n" + GOOD_USER)
    code, err = main(capsys, "--kubeconfig", str(path), "--context", "prod", "versions")
    assert code == 2
    assert err == f"kubehop: context 'prod' is not in kubeconfig {path} (contexts: c)\n"


def test_first_file_of_kubeconfig_sets_the_current_context(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """kubectl merges $KUBECONFIG files first-wins; the client library takes the last
    current-context, so kubehop resolves the context itself."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("current-context: broken\ncontexts:\n- name: broken\n"
                     "  context: {cluster: nowhere, user: u}\n")
    second.write_text("clusters:\n- name: y\n  cluster: {server: 'http://127.0.0.1:1'}\n"
                      "contexts:\n- name: c\n  context: {cluster: y, user: u}\n"
                      "current-context: c\n" + GOOD_USER)
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    code, err = main(capsys, "versions")
    assert code == 2
    assert "context 'broken' names cluster 'nowhere'" in err
