"""A composed lab (`kubehop.lab.lab.Lab`) served from a background thread, so tests can run the
kubehop CLI (its own event loop) and real kubectl (blocking processes) against it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubehop.lab.lab import Lab
from tests.integration import kubectl_bin

T = TypeVar("T")
SCALE = 0.01


class LabThread:
    """A Lab running on its own event loop in a daemon thread."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="lab", daemon=True)

    def __enter__(self) -> LabThread:
        self.thread.start()
        self.wait(self.lab.start(), timeout=300)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.wait(self.lab.stop(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()

    def wait(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run `coro` on the lab's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def node_run(self, node: str, line: str, *, root: bool = True) -> Any:
        """A command on a lab node, as over SSH (the lab's interpreter)."""
        return self.wait(self.lab.agents.run(node, line, root=root))


@pytest.fixture
def lab_factory(tmp_path: Path) -> Iterator[Any]:
    """`lab_factory(scenario, ssh=False)` starts a lab that is stopped after the test."""
    running: list[LabThread] = []

    def start(scenario: str, *, ssh: bool = False) -> LabThread:
        lt = LabThread(Lab(scenario, time_scale=SCALE, ssh=ssh,
                           state_dir=tmp_path / f"lab-{len(running)}"))
        lt.__enter__()
        running.append(lt)
        return lt

    yield start
    for lt in reversed(running):
        lt.__exit__(None, None, None)


def kubectl_130() -> Path:
    binary = kubectl_bin.kubectl(30)
    if binary is None:
        pytest.skip(kubectl_bin.skip_reason(30))
    return binary


def kubectl_json(lab: Lab, home: Path, *args: str) -> Any:
    """Real kubectl 1.30's `-o json` output for the lab, parsed."""
    import json

    env = {"HOME": str(home), "KUBECONFIG": str(lab.kubeconfig_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(kubectl_130()), "--cache-dir", str(home / "cache"), *args,
                           "-o", "json"], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A PATH whose kubectl is 1.30 (the client version `versions` reports), no colour."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl").symlink_to(kubectl_130())
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KUBEHOP_SSH_INVENTORY", raising=False)
    monkeypatch.delenv("KUBEHOP_RELEASE_DATA", raising=False)
    return bindir
