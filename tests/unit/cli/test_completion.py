"""Shell completion scripts, and that they complete kubehop's own commands."""

import os
import shutil
import subprocess
import sys

import pytest

from kubehop.cli import app


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o nosort -F _kubehop_completion kubehop"),
    ("zsh", "#compdef kubehop"),
    ("fish", "complete --no-files --command kubehop"),
])
def test_completion_scripts_name_kubehop(capsys, shell, marker):
    with pytest.raises(SystemExit) as exc:
        app.main(["completion", shell])
    assert exc.value.code == 0
    assert marker in capsys.readouterr().out


def test_unknown_shell_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        app.main(["completion", "tcsh"])
    assert exc.value.code == 2


def test_bash_completes_subcommands():
    kubehop = shutil.which("kubehop", path=os.path.dirname(sys.executable))
    assert kubehop
    env = dict(os.environ, _KUBEHOP_COMPLETE="bash_complete", COMP_WORDS="kubehop dr",
               COMP_CWORD="1")
    out = subprocess.run([kubehop], env=env, capture_output=True, text=True).stdout
    assert "plain,drain" in out.splitlines()
