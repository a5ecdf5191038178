"""The CLI's conventions: --version, exit codes, one-line errors without tracebacks."""

import subprocess
import sys

import click
import pytest

from kubehop.cli import app
from kubehop.model.errors import HaltedError, OperationError, UsageError


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubehop", *args], capture_output=True, text=True)


def test_version_prints_name_and_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip().startswith("kubehop 0.")


def test_unknown_command_is_a_usage_error():
    result = run("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [(UsageError("bad flag --x"), 2), (OperationError("drain failed"), 1),
     (HaltedError("halted at step 1.29/w1/drain"), 3), (RuntimeError("boom"), 1)],
)
def test_errors_become_one_line_and_an_exit_code(monkeypatch, capsys, error, code):
    @click.command("explode")
    def explode() -> None:
        raise error

    monkeypatch.setitem(app.cli.commands, "explode", explode)
    with pytest.raises(SystemExit) as exc:
        app.main(["explode"])
    assert exc.value.code == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(error) in err
    assert "Traceback" not in err


def test_verbose_shows_the_traceback(monkeypatch):
    @click.command("explode")
    def explode() -> None:
        raise OperationError("drain failed")

    monkeypatch.setitem(app.cli.commands, "explode", explode)
    with pytest.raises(OperationError):
        app.main(["-v", "explode"])
