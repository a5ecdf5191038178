"""Every `kubehop` command the README shows in a console example runs as printed, against the
lab the README's examples use (`oldversion`), and prints what the README shows first."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from kubehop.lab.lab import Lab

README = Path(__file__).resolve().parents[2] / "README.md"
KUBEHOP = str(Path(sys.executable).parent / "kubehop")
# Long-running or machine-changing commands are tested on their own elsewhere.
NOT_HERE = ("kubehop lab up", "kubehop demo")


def console_examples() -> list[tuple[str, list[str]]]:
    """(command line, the output lines the README shows for it) for each `$ kubehop ...`."""
    examples: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(), re.S):
        current: tuple[str, list[str]] | None = None
        for line in block.splitlines():
            if line.startswith("$ "):
                current = (line[2:], [])
                if line[2:].startswith("kubehop ") and not line[2:].startswith(NOT_HERE):
                    examples.append(current)
            elif current is not None:
                current[1].append(line)
    return examples


EXAMPLES = console_examples()


def test_the_readme_has_examples_of_every_command_family():
    families = {shlex.split(cmd)[1] for cmd, _ in EXAMPLES}
    assert {"versions", "check", "plan", "drain", "releases"} <= families


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory):
    """The oldversion lab on its own thread-free loop, for the module's subprocess commands."""
    state = tmp_path_factory.mktemp("readme-lab")
    loop = asyncio.new_event_loop()
    lab = Lab("oldversion", time_scale=0.01, state_dir=state / "lab")
    loop.run_until_complete(lab.start())
    env = dict(os.environ, KUBECONFIG=str(lab.kubeconfig_path),
               KUBEHOP_SSH_INVENTORY=str(lab.inventory_path),
               KUBEHOP_STATE_DIR=str(state / "kubehop"), NO_COLOR="1")
    yield loop, env
    loop.run_until_complete(lab.stop())
    loop.close()


def normalise(line: str) -> str:
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
    line = re.sub(r"-[a-z0-9]{5}\b", "-XXXXX", line)  # generated pod name suffixes
    return " ".join(line.split())


@pytest.mark.parametrize(("command", "shown"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example_runs_as_printed(lab_env, command, shown):
    loop, env = lab_env
    argv = shlex.split(command)

    async def run() -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            KUBEHOP, *argv[1:], env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        return proc.returncode or 0, out.decode()

    code, out = loop.run_until_complete(run())
    assert code == 0, f"{command} exited {code}:\n{out}"
    got = {normalise(line) for line in out.splitlines()}
    first = next((s for s in shown if s.strip() and not s.startswith(("kubehop: warning",
                                                                      "..."))), None)
    if first is not None:
        assert normalise(first) in got, f"{command}: README shows {first!r}; got:\n{out}"
