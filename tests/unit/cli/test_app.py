"""The CLI's conventions: --version, exit codes, one-line errors without tracebacks."""

import asyncio
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


@pytest.mark.parametrize(
    ("error", "code"),
    [(UsageError("bad --to 'banana'"), 2), (OperationError("refusing to plan"), 1),
     (HaltedError("halted at step 1.29/w1/drain"), 3), (RuntimeError("boom"), 1)],
)
def test_verbose_adds_the_traceback_and_keeps_the_exit_code(monkeypatch, capsys, error, code):
    @click.command("explode")
    def explode() -> None:
        raise error

    monkeypatch.setitem(app.cli.commands, "explode", explode)
    with pytest.raises(SystemExit) as exc:
        app.main(["-v", "explode"])
    assert exc.value.code == code
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].endswith(str(error))


def test_verbose_usage_error_of_click_keeps_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        app.main(["-v", "versions", "-o", "banana"])
    assert exc.value.code == 2
    assert "Invalid value" in capsys.readouterr().err


def test_an_error_inside_a_task_group_is_reported_by_its_own_line(monkeypatch, capsys):
    async def fail() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(asyncio.sleep(1))
            tg.create_task(_raise(OperationError("cannot reach the Kubernetes API at x")))

    @click.command("explode")
    def explode() -> None:
        asyncio.run(fail())

    monkeypatch.setitem(app.cli.commands, "explode", explode)
    with pytest.raises(SystemExit) as exc:
        app.main(["explode"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err == "kubehop: cannot reach the Kubernetes API at x\n"


async def _raise(error: Exception) -> None:
    raise error


def test_verbose_after_other_global_options_still_counts(monkeypatch, capsys):
    @click.command("explode")
    def explode() -> None:
        raise RuntimeError("boom")

    monkeypatch.setitem(app.cli.commands, "explode", explode)
    with pytest.raises(SystemExit) as exc:
        app.main(["--context", "prod", "-vv", "explode"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.endswith("kubehop: internal error: RuntimeError: boom\n")
